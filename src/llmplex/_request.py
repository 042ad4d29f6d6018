"""Turning a caller's ``completion(...)`` arguments into a resolved call: pure, no I/O.

Splits call settings (key, base URL, timeouts, retries) from OpenAI parameters and provider
extras, validates messages, resolves the model and endpoint, and enforces ``drop_params``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llmplex.config import ClientConfig
from llmplex.exceptions import AuthenticationError, BadRequestError, Timeout, UnsupportedParamsError
from llmplex.providers import get_adapter, resolve_model
from llmplex.providers.base import OPENAI_PARAMS, CompletionRequest, Endpoint, ProviderAdapter

__all__ = [
    "CALL_SETTINGS",
    "PreparedCall",
    "ResolvedCall",
    "prepare_call",
    "resolve_call",
    "resolve_prepared",
    "validate_messages",
]

# Keywords that steer the call and are never sent upstream.
CALL_SETTINGS: frozenset[str] = frozenset(
    {
        "api_key",
        "api_base",
        "base_url",
        "api_version",
        "timeout",
        "request_timeout",
        "num_retries",
        "max_retries",
        "drop_params",
        "mock_response",
        "mock_delay",
        "custom_llm_provider",
        "extra_headers",
        "headers",
        "stream_first_token_timeout",
        "stream_timeout",  # LiteLLM's name for the first-token timeout
        "stream_idle_timeout",
        "metadata",
        "litellm_logging_obj",
        # LiteLLM's per-request controls (``request_controls`` in the router, ``client_fallbacks`` here)
        "fallbacks",
        "context_window_fallbacks",
        "content_policy_fallbacks",
        "disable_fallbacks",
        "mock_timeout",
        "mock_testing_fallbacks",
        "mock_testing_context_fallbacks",
        "mock_testing_content_policy_fallbacks",
        "mock_testing_rate_limit_error",
        "priority",
    }
)

_VALID_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


@dataclass(slots=True)
class ResolvedCall:
    """Everything needed to send one completion; built without I/O."""

    label: str  # the model string the caller gave
    adapter: ProviderAdapter
    request: CompletionRequest
    endpoint: Endpoint | None
    timeout: float
    num_retries: int
    first_token_timeout: float
    idle_timeout: float
    mock_response: Any = None
    mock_delay: float = 0.0
    hidden: dict[str, Any] = field(default_factory=dict)


def validate_messages(messages: Any) -> list[dict[str, Any]]:
    if not isinstance(messages, list) or not messages:
        raise BadRequestError("messages must be a non-empty list of message objects", param="messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise BadRequestError(f"messages[{i}] must be an object with 'role' and 'content'", param="messages")
        role = message.get("role")
        if role not in _VALID_ROLES:
            raise BadRequestError(
                f"messages[{i}].role must be one of {sorted(_VALID_ROLES)}, got {role!r}", param="messages"
            )
    return messages


def resolve_call(model: str, messages: Any, options: dict[str, Any], config: ClientConfig) -> ResolvedCall:
    """Validate and resolve one call. Raises typed errors before any network activity."""
    messages = validate_messages(messages)
    provider, model_id = resolve_model(model, custom_llm_provider=options.get("custom_llm_provider"))
    adapter = get_adapter(provider)
    stream = bool(options.get("stream"))
    drop = options.get("drop_params")
    drop_params = config.drop_params if drop is None else bool(drop)

    params, extra = _split_options(adapter, model_id, options, drop_params)
    if stream and not adapter.supports_streaming:
        raise UnsupportedParamsError(
            f"{adapter.name} does not support streaming", provider=adapter.name, param="stream"
        )

    timeout = _number(options.get("timeout"), options.get("request_timeout"), default=config.timeout)
    retries = options.get("num_retries", options.get("max_retries"))
    num_retries = config.num_retries if retries is None else int(retries)
    first_token = _number(
        options.get("stream_first_token_timeout"),
        options.get("stream_timeout"),
        config.stream_first_token_timeout,
        default=timeout,
    )
    idle = _number(options.get("stream_idle_timeout"), default=config.stream_idle_timeout)
    request = CompletionRequest(model=model_id, messages=messages, stream=stream, params=params, extra=extra)

    mock = options.get("mock_response")
    mock_delay = float(options.get("mock_delay") or 0.0)
    if options.get("mock_timeout") is True:  # LiteLLM's: wait out the call's timeout, then fail with Timeout
        mock = Timeout(f"This is a mock timeout error (after {timeout:g}s)", provider=adapter.name, model=model_id)
        mock_delay = timeout
    endpoint = None if mock is not None else _endpoint(adapter, model_id, options, config)
    return ResolvedCall(
        label=model,
        adapter=adapter,
        request=request,
        endpoint=endpoint,
        timeout=timeout,
        num_retries=max(num_retries, 0),
        first_token_timeout=first_token,
        idle_timeout=idle,
        mock_response=mock,
        mock_delay=mock_delay,
        hidden={"custom_llm_provider": adapter.name, "model": model_id},
    )


def _split_options(
    adapter: ProviderAdapter, model_id: str, options: Mapping[str, Any], drop_params: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(params, extra)``: the OpenAI parameters the provider takes, and provider-specific fields."""
    params: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    supported = adapter.supported_params
    for key, value in options.items():
        if value is None or key == "stream" or key in CALL_SETTINGS:
            continue
        if key == "extra_body":  # the openai SDK's name for fields added to the body as given
            if not isinstance(value, dict):
                raise BadRequestError("extra_body must be a dict", param="extra_body")
            extra.update(value)
            continue
        if key in OPENAI_PARAMS:
            if key not in supported:
                if drop_params or (key == "n" and value == 1):  # n=1 is every provider's default
                    continue
                raise UnsupportedParamsError(
                    f"{adapter.name} does not support parameter '{key}'. Pass drop_params=True to drop it.",
                    provider=adapter.name,
                    model=model_id,
                    param=key,
                )
            params[key] = value
        else:
            extra[key] = value
    return params, extra


@dataclass(frozen=True, slots=True)
class PreparedCall:
    """``resolve_call`` done once for fixed settings (a proxy deployment's ``litellm_params``)."""

    model: str
    settings: dict[str, Any]
    call: ResolvedCall  # resolved with a placeholder message
    drop_params: bool


def prepare_call(model: str, settings: Mapping[str, Any], config: ClientConfig) -> PreparedCall:
    """Resolve ``model`` with ``settings`` now; raises what ``resolve_call`` would."""
    call = resolve_call(model, [{"role": "user", "content": ""}], dict(settings), config)
    drop = settings.get("drop_params")
    return PreparedCall(model, dict(settings), call, config.drop_params if drop is None else bool(drop))


def resolve_prepared(
    prepared: PreparedCall, messages: Any, options: Mapping[str, Any], config: ClientConfig
) -> ResolvedCall:
    """``resolve_call(model, messages, {**settings, **options})``, without redoing the settings' part.

    Options that could change what was resolved (call settings, ``None`` overrides, ``extra_body``, a key
    the settings also set) take the full path.
    """
    settings = prepared.settings
    for key, value in options.items():
        if value is None or key in CALL_SETTINGS or key == "extra_body" or key in settings:
            return resolve_call(prepared.model, messages, {**settings, **options}, config)
    base = prepared.call
    adapter = base.adapter
    request = base.request
    stream = bool(options.get("stream", request.stream))
    if stream and not adapter.supports_streaming:
        raise UnsupportedParamsError(
            f"{adapter.name} does not support streaming", provider=adapter.name, param="stream"
        )
    params, extra = request.params, request.extra
    if options:
        more_params, more_extra = _split_options(adapter, request.model, options, prepared.drop_params)
        params = {**params, **more_params} if more_params else params
        extra = {**extra, **more_extra} if more_extra else extra
    return ResolvedCall(
        label=prepared.model,
        adapter=adapter,
        request=CompletionRequest(
            model=request.model, messages=validate_messages(messages), stream=stream, params=params, extra=extra
        ),
        endpoint=base.endpoint,
        timeout=base.timeout,
        num_retries=base.num_retries,
        first_token_timeout=base.first_token_timeout,
        idle_timeout=base.idle_timeout,
        mock_response=base.mock_response,
        mock_delay=base.mock_delay,
        hidden=base.hidden,
    )


def _endpoint(adapter: ProviderAdapter, model_id: str, options: dict[str, Any], config: ClientConfig) -> Endpoint:
    base = options.get("api_base") or options.get("base_url") or config.lookup(adapter.api_base_env)
    base = base or adapter.default_base_url
    if not base:
        raise BadRequestError(
            f"{adapter.name} needs api_base (or {adapter.api_base_env[0]} in the environment)",
            provider=adapter.name,
            model=model_id,
            param="api_base",
        )
    key = options.get("api_key") or config.lookup(adapter.api_key_env)
    if not key and adapter.requires_api_key:
        names = " or ".join(adapter.api_key_env) or "an api_key"
        raise AuthenticationError(
            f"Missing API key for {adapter.name}: pass api_key=... or set {names}",
            provider=adapter.name,
            model=model_id,
        )
    version = options.get("api_version") or config.lookup(adapter.api_version_env)
    headers = {**config.default_headers, **(options.get("extra_headers") or {}), **(options.get("headers") or {})}
    return Endpoint(base_url=str(base), api_key=key, api_version=version, headers=headers)


def _number(*values: Any, default: float) -> float:
    for value in values:
        if value is not None:
            number = float(value)
            if number <= 0:
                raise BadRequestError(f"timeouts must be positive, got {value!r}", param="timeout")
            return number
    return default
