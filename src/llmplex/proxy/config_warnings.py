"""Startup warnings that save a first failed request: unset variables, deployments without a key.

LiteLLM treats an unset ``os.environ/VAR`` as absent and says nothing; llmplex also treats it as
absent but names each one that matters (those under keys it reads), and names every deployment
whose provider needs a key that resolves empty: its requests would answer 401.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from llmplex.config_checks import Checker
from llmplex.exceptions import UnknownModelError
from llmplex.providers import get_adapter
from llmplex.router import Deployment

__all__ = ["startup_warnings"]

_CONSEQUENCES = {
    "router_settings.redis": "Redis is not configured: rpm/tpm limits, cooldowns and statistics are per process",
    "general_settings.master_key": "no master key: authentication is off",
}


def startup_warnings(check: Checker, deployments: Sequence[Deployment], environ: Mapping[str, str]) -> list[str]:
    warnings = []
    unset = _unset(check)
    if unset:
        warnings.append(unset)
    keyless = [line for d in deployments if (line := _missing_key(d, environ)) is not None]
    if keyless:
        head = (
            f"{check.doc.source}: these deployments have no API key (neither litellm_params.api_key nor the "
            "provider's variable is set); their requests will answer 401 until one is:"
        )
        warnings.append("\n".join([head, *keyless]))
    return warnings


def _unset(check: Checker) -> str | None:
    doc = check.doc
    lines = []
    for path, name in doc.unset.items():
        if check.is_ignored(path):
            continue  # a key llmplex ignores anyway (already listed as such)
        consequence = next((c for prefix, c in _CONSEQUENCES.items() if path.startswith(prefix)), None)
        lines.append(f"  {doc.where(path)}: {name}" + (f" - {consequence}" if consequence else ""))
    if not lines:
        return None
    head = f"{doc.source}: these os.environ/ variables are not set, so their keys count as absent (as in LiteLLM):"
    return "\n".join([head, *lines])


def _missing_key(deployment: Deployment, environ: Mapping[str, str]) -> str | None:
    if deployment.problem is not None or not deployment.provider or deployment.params.get("api_key"):
        return None
    try:
        adapter = get_adapter(deployment.provider)
    except UnknownModelError:
        return None
    if not adapter.requires_api_key or any(environ.get(name) for name in adapter.api_key_env):
        return None
    names = " or ".join(adapter.api_key_env) or "litellm_params.api_key"
    return f"  {deployment.model_name} ({deployment.model}): set {names}"
