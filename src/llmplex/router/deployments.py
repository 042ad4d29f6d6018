"""``model_list`` -> ``Deployment``s: the one parser, for the proxy's config file and the SDK's ``Router``.

Takes LiteLLM's deployment dicts (``model_name``, ``litellm_params``, ``model_info``) inside a
``SourceDoc`` whose ``os.environ/VAR`` values are already resolved, so every error names the key
path (and the line, for a file). Keys llmplex does not support are reported through the ``Checker``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import orjson

from llmplex.config_checks import Checker
from llmplex.config_source import join
from llmplex.exceptions import UnknownModelError
from llmplex.providers import resolve_model

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


@dataclass(frozen=True, slots=True)
class Deployment:
    """One ``model_list`` entry: the public ``model_name`` and how to call it."""

    model_name: str
    model: str  # the provider model string, e.g. "azure/gpt-4o-eu"
    model_id: str
    params: Mapping[str, Any]  # keyword arguments for AsyncClient.completion (credentials, timeout, extras)
    provider: str
    rpm: int | None = None
    tpm: int | None = None
    weight: float | None = None
    max_parallel_requests: int | None = None  # requests in flight at once (a stream: until its headers)

    @property
    def api_base(self) -> str | None:
        base = self.params.get("api_base") or self.params.get("base_url")
        return str(base).split("?", 1)[0] if base else None

    def as_dict(self) -> dict[str, Any]:
        """The LiteLLM-shaped entry (``get_model_list``), credentials included as LiteLLM does."""
        params: dict[str, Any] = {"model": self.model, **self.params}
        for key in ("rpm", "tpm", "weight", "max_parallel_requests"):
            if (value := getattr(self, key)) is not None:
                params[key] = value
        return {"model_name": self.model_name, "litellm_params": params, "model_info": {"id": self.model_id}}

    def __repr__(self) -> str:  # never print credentials
        return f"Deployment(model_name={self.model_name!r}, model={self.model!r}, model_id={self.model_id!r})"


def parse_model_list(check: Checker, raw: Any, path: str = "model_list") -> tuple[Deployment, ...]:
    """Every entry of ``raw`` (a list) as a ``Deployment``; wildcard entries are reported and skipped."""
    entries = check.seq(raw, path)
    parsed = [_deployment(check, entry, f"{path}[{i}]") for i, entry in enumerate(entries)]
    return tuple(d for d in parsed if d is not None)


def _deployment(check: Checker, raw: Any, path: str) -> Deployment | None:
    entry = check.mapping(raw, path)
    for key in entry:
        if key not in _ENTRY:
            check.ignored(join(path, key))
    name = check.required(entry, join(path, "model_name"), str)
    params_path = join(path, "litellm_params")
    params = dict(check.mapping(check.required(entry, params_path, dict), params_path))
    model = check.required(params, join(params_path, "model"), str)
    if "*" in model or "*" in name:
        check.ignored(join(params_path, "model"), note="wildcard routing")
        return None
    try:
        provider, _ = resolve_model(model, custom_llm_provider=params.get("custom_llm_provider"))
    except UnknownModelError as exc:
        where = join(params_path, "model")
        message = exc.message if where not in check.doc.from_env else f"{check.doc.shown(where, model)}: unknown model"
        raise check.doc.error(where, message) from None
    info = check.mapping(entry.get("model_info") or {}, join(path, "model_info"))
    for key in info:
        if key != "id":
            check.ignored(join(join(path, "model_info"), key))
    model_id = check.optional(info, join(path, "model_info.id"), str) or _derived_id(name, params)
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
    )


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
