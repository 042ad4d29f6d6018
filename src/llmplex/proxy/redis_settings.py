"""The config file's Redis settings (``router.settings.RedisSettings``): router state shared by workers and replicas.

LiteLLM's places and names (``router_settings.redis_host`` / ``redis_port`` / ``redis_password`` /
``redis_url``, then the ``REDIS_*`` variables of the config's environment), plus llmplex's own
``llmplex_settings.redis_*`` keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmplex.config_checks import Checker
from llmplex.exceptions import ConfigError
from llmplex.router.settings import RedisSettings, redis_url_problem

__all__ = ["OWN_SECTION", "RedisSettings", "redis_settings"]

OWN_SECTION = "llmplex_settings"  # llmplex's own extensions live here so LiteLLM configs need no change


def redis_settings(
    check: Checker, router: Mapping[str, Any], own: Mapping[str, Any], env: Mapping[str, str]
) -> RedisSettings | None:
    """router_settings.redis_* first, then REDIS_URL / REDIS_HOST / REDIS_PORT / REDIS_PASSWORD, as LiteLLM."""
    url = check.optional(router, "router_settings.redis_url", str)
    host = check.optional(router, "router_settings.redis_host", str)
    where = "router_settings.redis_url"
    if not (url or host):
        url, host = env.get("REDIS_URL") or None, env.get("REDIS_HOST") or None
        where = "REDIS_URL"
    if not (url or host):
        return None
    if url and (problem := redis_url_problem(url)):
        raise check.doc.error(where, problem) if where != "REDIS_URL" else ConfigError(f"REDIS_URL {problem}")
    port = check.optional(router, "router_settings.redis_port", int, minimum=1)
    if port is None and (env_port := env.get("REDIS_PORT", "").strip()):
        if not env_port.isdigit():
            raise ConfigError("REDIS_PORT must be a port number; the value of REDIS_PORT is not one")
        port = int(env_port)
    mode = check.optional(own, f"{OWN_SECTION}.redis_failure_mode", str) or "open"
    if mode not in ("open", "closed"):
        where = f"{OWN_SECTION}.redis_failure_mode"
        raise check.doc.error(where, f"must be 'open' or 'closed', got {check.doc.shown(where, mode)}")
    timeout = check.optional(own, f"{OWN_SECTION}.redis_timeout_seconds", float, minimum=0.001)
    return RedisSettings(
        url=url,
        host=host or "localhost",
        port=port or 6379,
        password=check.optional(router, "router_settings.redis_password", str) or env.get("REDIS_PASSWORD") or None,
        key_prefix=check.optional(own, f"{OWN_SECTION}.redis_key_prefix", str) or "llmplex",
        failure_mode=mode,
        timeout=timeout or 0.1,
    )
