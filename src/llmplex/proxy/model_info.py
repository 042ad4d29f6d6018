"""What ``/model/info``, ``/v2/model/info`` and ``/model_group/info`` say about deployments (LiteLLM's shapes).

Pure functions of the deployments list: no I/O, no secrets. ``litellm_params`` are shown without
credentials (LiteLLM drops ``api_key`` and masks other secrets; llmplex drops every credential-like
key), ``api_base`` without its query string.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from llmplex.cost import known_models
from llmplex.providers import get_adapter, provider_keys
from llmplex.router import Deployment

__all__ = ["deployment_info", "group_info", "listed_names", "paged", "public_params"]

# parameter names that look like credentials but are not
_NOT_SECRET = frozenset({"max_tokens", "max_completion_tokens", "tpm", "rpm"})
_SECRET_PARTS = ("key", "secret", "password", "token", "credential", "authorization")
_HIDDEN = frozenset({"headers", "extra_headers"})  # may carry credentials in their values


def public_params(deployment: Deployment) -> dict[str, Any]:
    """``litellm_params`` as LiteLLM's ``/model/info`` shows them: routing fields back in, credentials out."""
    params: dict[str, Any] = {"model": deployment.model}
    for name, value in deployment.params.items():
        if name in _HIDDEN or _looks_secret(name):
            continue
        params[name] = value
    if deployment.api_base:
        params.pop("base_url", None)
        params["api_base"] = deployment.api_base
    for name in ("rpm", "tpm", "weight"):
        value = getattr(deployment, name)
        if value is not None:
            params[name] = value
    return params


def _looks_secret(name: str) -> bool:
    lowered = name.lower()
    return lowered not in _NOT_SECRET and any(part in lowered for part in _SECRET_PARTS)


def deployment_info(deployment: Deployment, prices: Mapping[str, float | int | None] | None = None) -> dict[str, Any]:
    """One ``/model/info`` entry: ``model_name``, ``litellm_params``, ``model_info``."""
    info: dict[str, Any] = {
        "id": deployment.model_id,
        "db_model": False,
        "litellm_provider": deployment.provider,
        "mode": _mode(deployment),
    }
    own = getattr(deployment, "model_info", None)
    if own:
        info.update({k: v for k, v in own.items() if not _looks_secret(str(k))})
        info["id"] = deployment.model_id
    if prices:
        info.update(prices)
    return {"model_name": deployment.model_name, "litellm_params": public_params(deployment), "model_info": info}


def _mode(deployment: Deployment) -> str:
    info = getattr(deployment, "model_info", None) or {}
    mode = info.get("mode")
    return mode if isinstance(mode, str) else "chat"


def group_info(
    name: str, deployments: Sequence[Deployment], prices: Mapping[str, float | int | None] | None = None
) -> dict[str, Any]:
    """One ``/model_group/info`` entry (LiteLLM's ``ModelGroupInfo`` fields)."""
    providers = list(dict.fromkeys(d.provider for d in deployments))
    supported: list[str] = []
    for provider in providers:
        try:
            names = get_adapter(provider).supported_params
        except Exception:  # a provider llmplex cannot load has no parameters to list
            continue
        supported += [p for p in sorted(names) if p not in supported]
    return {
        "model_group": name,
        "providers": providers,
        "max_input_tokens": (prices or {}).get("max_input_tokens"),
        "max_output_tokens": None,
        "input_cost_per_token": (prices or {}).get("input_cost_per_token"),
        "output_cost_per_token": (prices or {}).get("output_cost_per_token"),
        "mode": _mode(deployments[0]) if deployments else "chat",
        "tpm": _total(d.tpm for d in deployments),
        "rpm": _total(d.rpm for d in deployments),
        "supports_parallel_function_calling": False,
        "supports_vision": False,
        "supports_web_search": False,
        "supports_reasoning": False,
        "supports_function_calling": "tools" in supported,
        "supported_openai_params": supported,
        "configurable_clientside_auth_params": None,
    }


def _total(values: Iterable[int | None]) -> int | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def paged(items: list[dict[str, Any]], page: int, size: int) -> dict[str, Any]:
    """``/v2/model/info``'s envelope: ``data``, ``total_count``, ``current_page``, ``total_pages``, ``size``."""
    start = (page - 1) * size
    return {
        "data": items[start : start + size],
        "total_count": len(items),
        "current_page": page,
        "total_pages": max(math.ceil(len(items) / size), 1) if items else 0,
        "size": size,
    }


def listed_names(names: Sequence[str], deployments: Sequence[Deployment]) -> list[str]:
    """``/v1/models``: configured names, each wildcard replaced by the provider's known models (as LiteLLM).

    ``model_name: "*"`` + ``model: "openai/*"`` lists ``openai/<id>`` for every OpenAI model of the price
    table; ``anthropic/claude-*`` lists the Anthropic ids starting with ``claude-``; a pattern whose
    provider comes from the requested name (``model: "*"``) lists nothing.
    """
    listed = [n for n in names if "*" not in n]
    for deployment in deployments:
        if not deployment.wildcard or deployment.problem is not None:
            continue
        prefix, slash, suffix = deployment.model.partition("/")
        if not slash or prefix not in provider_keys():
            continue
        shown_prefix = deployment.model_name.partition("/")[0] if "/" in deployment.model_name else prefix
        start = suffix.split("*", 1)[0]
        listed += [f"{shown_prefix}/{m}" for m in known_models(deployment.provider) if m.startswith(start)]
    return list(dict.fromkeys(listed))
