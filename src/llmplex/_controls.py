"""LiteLLM's per-request controls: read and checked here, acted on by llmplex, never sent upstream.

``split_controls(options, keys)`` takes them out of a call's keyword arguments (or a proxy body):
``fallbacks`` / ``context_window_fallbacks`` / ``content_policy_fallbacks`` in LiteLLM's three
shapes (``["b", "c"]``; ``[{"model": "b", "messages": [...], ...}]`` with per-fallback overrides;
the router's ``[{"a": ["b", "c"]}]``), ``disable_fallbacks``, ``mock_testing_*`` (the first target
fails at once, to exercise fallbacks or a 429 without an upstream), ``num_retries`` (the router's
retries; a call setting of the client otherwise) and ``priority`` (checked, left in the options:
the router's admission reads it). ``fallback_chain`` picks the targets to try after an error.
``AsyncClient.completion`` (model strings) and the router (model groups) both build on these.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from llmplex._request import resolve_call
from llmplex.exceptions import (
    APIError,
    APIStatusError,
    BadRequestError,
    ContentPolicyViolationError,
    ContextWindowExceededError,
    InternalServerError,
    RateLimitError,
)

if TYPE_CHECKING:
    from llmplex._streaming import CompletionStream
    from llmplex.client import AsyncClient
    from llmplex.types import ModelResponse

__all__ = [
    "CLIENT_CONTROLS",
    "ROUTER_CONTROLS",
    "Controls",
    "FallbackSpec",
    "Target",
    "check_targets",
    "complete_with_controls",
    "fallback_chain",
    "split_controls",
]

_FALLBACK_KEYS = ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks")
_MOCK_ERRORS: dict[str, type[APIStatusError]] = {
    "mock_testing_fallbacks": InternalServerError,
    "mock_testing_context_fallbacks": ContextWindowExceededError,
    "mock_testing_content_policy_fallbacks": ContentPolicyViolationError,
    "mock_testing_rate_limit_error": RateLimitError,
}
CLIENT_CONTROLS: frozenset[str] = frozenset({*_FALLBACK_KEYS, "disable_fallbacks", *_MOCK_ERRORS})
# the router also owns retries (across deployments) and the admission priority
ROUTER_CONTROLS: frozenset[str] = CLIENT_CONTROLS | {"num_retries", "max_retries", "priority"}
MAX_REQUEST_RETRIES = 10  # a per-request num_retries above this is a mistake (each retry is an upstream call)
_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Target:
    """One fallback: a model (group, for the router) and what it changes in the request (e.g. ``messages``)."""

    model: str
    overrides: Mapping[str, Any] = field(default_factory=dict)

    def apply(self, messages: list[dict[str, Any]], options: Mapping[str, Any]) -> tuple[list[dict[str, Any]], Any]:
        if not self.overrides:
            return messages, options
        own = dict(self.overrides)
        return own.pop("messages", messages), {**options, **own}


@dataclass(frozen=True, slots=True)
class FallbackSpec:
    """A request's fallbacks: one list for whatever failed, or LiteLLM's per-model mapping (``"*"``: any)."""

    for_any: tuple[Target, ...] | None = None
    by_model: Mapping[str, tuple[Target, ...]] = field(default_factory=dict)

    def targets(self, model: str) -> tuple[Target, ...]:
        if self.for_any is not None:
            return self.for_any
        return self.by_model.get(model) or self.by_model.get("*", ())

    def names(self) -> list[str]:
        targets = list(self.for_any or ())
        for chain in self.by_model.values():
            targets += chain
        return [*(t.model for t in targets), *(k for k in self.by_model if k != "*")]


@dataclass(slots=True)
class Controls:
    fallbacks: FallbackSpec | None = None
    context_window_fallbacks: FallbackSpec | None = None
    content_policy_fallbacks: FallbackSpec | None = None
    disable_fallbacks: bool = False
    mock_error: type[APIStatusError] | None = None  # mock_testing_*: the first target fails with this
    num_retries: int | None = None
    priority: int | None = None
    specs: dict[str, FallbackSpec] = field(default_factory=dict)  # every fallback field given, by name

    def mock_failure(self, model: str) -> APIStatusError:
        assert self.mock_error is not None
        return self.mock_error(
            f"This is a mock exception for model={model}, to trigger a fallback or retry path", model=model
        )


def split_controls(options: Mapping[str, Any], keys: frozenset[str]) -> tuple[Controls | None, dict[str, Any]]:
    """``(controls or None, the options without them)``; a malformed control is a ``BadRequestError`` naming it.

    ``priority`` stays in the returned options (checked): the router's admission reads it there.
    """
    if keys.isdisjoint(options):
        return None, dict(options)
    rest = dict(options)
    controls = Controls()
    for key in keys.intersection(options):
        value = rest.pop(key) if key != "priority" else rest[key]
        if value is None:
            continue
        if key in _FALLBACK_KEYS:
            spec = parse_fallback_spec(value, key)
            setattr(controls, key, spec)
            controls.specs[key] = spec
        elif key in _MOCK_ERRORS:
            if _flag(value, key) and controls.mock_error is None:
                controls.mock_error = _MOCK_ERRORS[key]
        elif key == "disable_fallbacks":
            controls.disable_fallbacks = _flag(value, key)
        elif key == "priority":
            if isinstance(value, bool) or not isinstance(value, int):
                raise BadRequestError(f"priority must be an integer (lower goes first), got {value!r}", param=key)
            controls.priority = value
        else:  # num_retries / max_retries
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_REQUEST_RETRIES:
                raise BadRequestError(
                    f"{key} must be an integer from 0 to {MAX_REQUEST_RETRIES}, got {value!r}", param=key
                )
            controls.num_retries = value
    return controls, rest


def parse_fallback_spec(raw: Any, key: str) -> FallbackSpec:
    """LiteLLM's shapes of a request's fallbacks (see the module docstring)."""
    if not isinstance(raw, list):
        raise BadRequestError(f"{key} must be a list of model names or objects, got {type(raw).__name__}", param=key)
    if all(isinstance(item, str) for item in raw):
        return FallbackSpec(for_any=tuple(Target(_name(item, key)) for item in raw))
    if all(isinstance(item, Mapping) and isinstance(item.get("model"), str) for item in raw):
        targets = []
        for item in raw:
            own = {k: v for k, v in item.items() if k != "model"}
            messages = own.get("messages")
            if messages is not None and (not isinstance(messages, list) or not messages):
                raise BadRequestError(f"{key}[].messages must be a non-empty list of messages", param=key)
            targets.append(Target(_name(item["model"], key), MappingProxyType(own)))
        return FallbackSpec(for_any=tuple(targets))
    by_model: dict[str, tuple[Target, ...]] = {}
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping) or not item:
            raise BadRequestError(
                f'{key}[{i}] must be a model name, {{"model": ..., ...}} or {{"group": ["fallback", ...]}}', param=key
            )
        for name, chain in item.items():
            names = [chain] if isinstance(chain, str) else chain
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise BadRequestError(f"{key}[{i}].{name} must be a list of model names", param=key)
            by_model[_name(name, key)] = tuple(Target(_name(n, key)) for n in names)
    return FallbackSpec(by_model=MappingProxyType(by_model))


def fallback_chain(
    exc: APIError, model: str, controls: Controls | None, defaults: Mapping[str, Mapping[str, tuple[str, ...]]] = _EMPTY
) -> tuple[Target, ...]:
    """The targets to try after ``exc`` failed ``model``, as LiteLLM picks them.

    A context-window (content-policy) error tries ``context_window_fallbacks``
    (``content_policy_fallbacks``) when set (no entry for ``model``: no fallback), else ``fallbacks``;
    any other 400 is the request's fault and never falls back. A request's list replaces the router's
    (``defaults``, by field name).
    """
    if controls is not None and controls.disable_fallbacks:
        return ()
    # LiteLLM: once context_window_fallbacks (content_policy_fallbacks) is set, a model without an entry
    # there does not fall back on that error; only while it is unset does the error follow ``fallbacks``
    if isinstance(exc, ContextWindowExceededError):
        if _given("context_window_fallbacks", controls, defaults):
            return _targets("context_window_fallbacks", model, controls, defaults)
    elif isinstance(exc, ContentPolicyViolationError):
        if _given("content_policy_fallbacks", controls, defaults):
            return _targets("content_policy_fallbacks", model, controls, defaults)
    elif isinstance(exc, BadRequestError) and exc.status_code == 400:
        return ()
    return _targets("fallbacks", model, controls, defaults)


def _given(key: str, controls: Controls | None, defaults: Mapping[str, Mapping[str, tuple[str, ...]]]) -> bool:
    return (controls is not None and key in controls.specs) or bool(defaults.get(key))


def _targets(
    key: str, model: str, controls: Controls | None, defaults: Mapping[str, Mapping[str, tuple[str, ...]]]
) -> tuple[Target, ...]:
    spec = controls.specs.get(key) if controls is not None else None
    if spec is not None:
        return spec.targets(model)
    names = defaults.get(key, _EMPTY).get(model, ())
    return tuple(Target(n) for n in names)


def _flag(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise BadRequestError(f"{key} must be true or false, got {value!r}", param=key)
    return value


def _name(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadRequestError(f"{key}: model names must be non-empty strings, got {value!r}", param=key)
    return value.strip()


def check_targets(specs: Iterable[tuple[str, FallbackSpec]], known: Callable[[str], bool]) -> None:
    """Every model a request's fallbacks name must be ``known``: else a 400 naming the field."""
    for key, spec in specs:
        unknown = [name for name in spec.names() if name != "*" and not known(name)]
        if unknown:
            raise BadRequestError(f"{key}: unknown model {unknown[0]!r}", param=key)


async def complete_with_controls(
    client: AsyncClient, model: str, messages: list[dict[str, Any]], options: Mapping[str, Any]
) -> ModelResponse | CompletionStream:
    """``AsyncClient.completion`` with LiteLLM's controls: ``model``, then its fallbacks (model strings) in order.

    Every fallback failing raises the first model's error, as the router does.
    """
    controls, rest = split_controls(options, CLIENT_CONTROLS)
    config = client.config
    try:
        if controls is not None and controls.mock_error is not None:
            raise controls.mock_failure(model)
        return await client.run_call(resolve_call(model, messages, rest, config))
    except APIError as exc:
        for target in fallback_chain(exc, model, controls):
            if target.model == model:
                continue
            target_messages, target_options = target.apply(messages, rest)
            try:
                return await client.run_call(resolve_call(target.model, target_messages, target_options, config))
            except APIError:
                continue
        raise
