"""``model_list`` -> ``Deployment``s: the one parser, for the proxy's config file and the SDK's ``Router``.

Takes LiteLLM's deployment dicts (``model_name``, ``litellm_params``, ``model_info``) inside a
``SourceDoc`` whose ``os.environ/VAR`` values are already resolved, so every error names the key
path (and the line, for a file). Keys llmplex does not support are reported through the ``Checker``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import orjson

from llmplex._redact import display_url
from llmplex.config_checks import Checker
from llmplex.config_source import join
from llmplex.providers import provider_keys
from llmplex.router.support import check_support, unsupported_message
from llmplex.router.wildcards import pattern_problem

__all__ = ["Deployment", "parse_model_list"]

_ENTRY = frozenset({"model_name", "litellm_params", "model_info"})
# litellm_params that steer the router, not the request
_ROUTING_PARAMS = frozenset({"model", "rpm", "tpm", "weight", "max_parallel_requests"})
# litellm_params that LiteLLM understands but llmplex does not (never forwarded upstream)
_UNSUPPORTED_PARAMS = frozenset(
    {
        "input_cost_per_token",
        "output_cost_per_token",
        "input_cost_per_second",
        "output_cost_per_second",
        "max_budget",
        "budget_duration",
        "order",
        "tags",
        "use_in_pass_through",
        "litellm_credential_name",
        "merge_reasoning_content_in_choices",
        "region_name",
    }
)
_SECRET_PARAMS = frozenset({"api_key"})
# model_info keys llmplex reads; others are kept (``/model/info`` shows them) and reported as ignored
_MODEL_INFO = frozenset({"id", "mode", "health_check_timeout", "base_model", "access_groups"})


@dataclass(frozen=True, slots=True, weakref_slot=True)  # weakref: wildcard_groups drops made ones when unused
class Deployment:
    """One ``model_list`` entry: the public ``model_name`` and how to call it."""

    model_name: str
    model: str  # the provider model string, e.g. "azure/gpt-4o-eu"
    model_id: str
    params: Mapping[str, Any]  # keyword arguments for AsyncClient.completion (credentials, timeout, extras)
    provider: str  # "" for a wildcard whose provider comes from the requested name (model "*")
    rpm: int | None = None
    tpm: int | None = None
    weight: float | None = None
    max_parallel_requests: int | None = None  # requests in flight at once (a stream: until its first content)
    mode: str = "chat"  # model_info.mode, or inferred from the model name (router.support)
    problem: str | None = None  # what llmplex does not support about it: the deployment is disabled
    access_groups: tuple[str, ...] = ()  # model_info.access_groups: names a virtual key's `models` may use
    model_info: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def wildcard(self) -> bool:
        return "*" in self.model_name

    @property
    def api_base(self) -> str | None:
        """The base as it may be shown (headers, /model/info, /health, logs): no credentials, no query string."""
        base = self.params.get("api_base") or self.params.get("base_url")
        return display_url(str(base)) if base else None

    def as_dict(self) -> dict[str, Any]:
        """The LiteLLM-shaped entry (``get_model_list``), credentials included as LiteLLM does."""
        params: dict[str, Any] = {"model": self.model, **self.params}
        for key in ("rpm", "tpm", "weight", "max_parallel_requests"):
            if (value := getattr(self, key)) is not None:
                params[key] = value
        return {
            "model_name": self.model_name,
            "litellm_params": params,
            "model_info": {**self.model_info, "id": self.model_id},  # access_groups included
        }

    def __repr__(self) -> str:  # never print credentials
        return f"Deployment(model_name={self.model_name!r}, model={self.model!r}, model_id={self.model_id!r})"


def parse_model_list(check: Checker, raw: Any, path: str = "model_list") -> tuple[Deployment, ...]:
    """Every entry of ``raw`` (a list) as a ``Deployment``, in order.

    Wildcard entries (``model_name`` with ``*``) are kept as patterns (``router.wildcards``); a deployment
    llmplex cannot serve is kept with its ``problem`` (disabled, named in a startup warning).
    """
    entries = check.seq(raw, path)
    return tuple(_deployment(check, entry, f"{path}[{i}]") for i, entry in enumerate(entries))


def _deployment(check: Checker, raw: Any, path: str) -> Deployment:
    entry = check.mapping(raw, path)
    for key in entry:
        if key not in _ENTRY:
            check.ignored(join(path, key))
    name = check.required(entry, join(path, "model_name"), str)
    params_path = join(path, "litellm_params")
    params = dict(check.mapping(check.required(entry, params_path, dict), params_path))
    model = check.required(params, join(params_path, "model"), str)
    info_path = join(path, "model_info")
    info = check.mapping(entry.get("model_info") or {}, info_path)
    for key in info:
        if key not in _MODEL_INFO:
            check.ignored(join(info_path, key))
    declared_mode = check.optional(info, join(info_path, "mode"), str)
    check.optional(info, join(info_path, "health_check_timeout"), float, minimum=0.001)
    model_path = join(params_path, "model")
    provider, mode, problem = _support(check, name, model, params, declared_mode, model_path)
    if problem is not None and model_path in check.doc.from_env:
        problem = f"{check.doc.shown(model_path, model)} as a model"  # never echo a value read from the environment
    if problem is not None:
        check.note(f"{check.doc.source}: {check.doc.where(path)}: disabled: {unsupported_message(problem, name)}")
    model_id = check.optional(info, join(info_path, "id"), str) or _derived_id(name, params)
    groups = check.optional(info, join(info_path, "access_groups"), list) or []
    if not all(isinstance(g, str) for g in groups):
        raise check.doc.error(join(info_path, "access_groups"), "must be a list of group names")
    rpm = check.optional(params, join(params_path, "rpm"), int, minimum=1)
    tpm = check.optional(params, join(params_path, "tpm"), int, minimum=1)
    weight = check.optional(params, join(params_path, "weight"), float, minimum=0.0)
    parallel = check.optional(params, join(params_path, "max_parallel_requests"), int, minimum=1)
    return Deployment(
        model_name=name,
        model=model,
        model_id=model_id,
        params=MappingProxyType(_call_params(check, params, params_path)),
        provider=provider,
        rpm=rpm,
        tpm=tpm,
        weight=weight,
        max_parallel_requests=parallel,
        mode=mode,
        problem=problem,
        model_info=MappingProxyType(dict(info)),
        access_groups=tuple(groups),
    )


def _support(
    check: Checker, name: str, model: str, params: Mapping[str, Any], declared_mode: str | None, model_path: str
) -> tuple[str, str, str | None]:
    """``(provider, mode, problem)``; a wildcard whose ``*`` cannot be filled stops startup (a malformed value)."""
    custom = params.get("custom_llm_provider")
    if "*" in name or "*" in model:
        wrong = pattern_problem(name, model)
        if wrong is not None:
            raise check.doc.error(model_path, f"wrong wildcard pattern: {wrong}")
        prefix, slash, _ = model.partition("/")
        if "*" in model and not (slash and prefix in provider_keys()) and not custom:
            # model "*" (or "*-suffix"): the provider comes from each requested name
            return "", declared_mode or "chat", None
    support = check_support(model, custom if isinstance(custom, str) else None, declared_mode)
    return support.provider, support.mode, support.problem


def _call_params(check: Checker, params: Mapping[str, Any], path: str) -> dict[str, Any]:
    """The litellm_params that become ``completion()`` arguments: credentials, timeouts, provider extras."""
    call: dict[str, Any] = {}
    for key, value in params.items():
        if key in _ROUTING_PARAMS or key in ("max_retries", "num_retries"):
            continue  # routing settings; retries are the router's job (router_settings.num_retries)
        if key in _UNSUPPORTED_PARAMS:
            check.ignored(join(path, key))
        elif key in ("api_key", "api_base", "base_url", "api_version"):
            call[key] = check.optional(params, join(path, key), str)
        elif key in ("timeout", "request_timeout", "stream_first_token_timeout"):
            call[key] = check.optional(params, join(path, key), float, minimum=0.001)
        elif key == "stream_timeout":  # LiteLLM's name for the first-token timeout of a stream
            value = check.optional(params, join(path, key), float, minimum=0.001)
            if "stream_first_token_timeout" not in params:
                call["stream_first_token_timeout"] = value
        else:
            call[key] = value
    return call


def _derived_id(name: str, params: Mapping[str, Any]) -> str:
    # stable across restarts and workers; secrets are left out of the hash input
    public = {k: v for k, v in params.items() if k not in _SECRET_PARAMS}
    digest = hashlib.sha256(orjson.dumps([name, public], option=orjson.OPT_SORT_KEYS, default=str)).hexdigest()
    return digest[:16]
