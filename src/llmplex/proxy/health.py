"""Active health checks of every deployment, in LiteLLM's ``/health`` shape.

Each check is one tiny chat completion (``max_tokens: 1``) sent straight to the deployment, not
through the router: a probe must not count against rpm/tpm windows or cool a deployment down. All
checks run at once (optionally at most ``concurrency`` at a time), each bounded by its timeout, so
``/health`` answers within the longest timeout however many deployments stall. With
``background_health_checks`` a loop in the server's lifespan refreshes the result every
``health_check_interval`` seconds and ``/health`` answers from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llmplex import AsyncClient
from llmplex.config_checks import Checker
from llmplex.exceptions import APIError, ConfigError, LLMplexError
from llmplex.router import Deployment
from llmplex.router.support import unsupported_message

__all__ = ["DEFAULT_TIMEOUT", "HEALTH_KEYS", "health_settings", "HealthChecker", "HealthSettings", "endpoint_display"]

logger = logging.getLogger("llmplex.proxy.health")

DEFAULT_TIMEOUT = 60.0  # LiteLLM's HEALTH_CHECK_TIMEOUT_SECONDS default
_PROBE = [{"role": "user", "content": "ping"}]
_MAX_ERROR = 500  # LiteLLM trims stored error messages to this length too


@dataclass(frozen=True, slots=True)
class HealthSettings:
    """``general_settings`` keys LiteLLM reads for health checks."""

    background: bool = False  # background_health_checks
    interval: float = 300.0  # health_check_interval (seconds)
    timeout: float = DEFAULT_TIMEOUT  # per deployment, unless its model_info.health_check_timeout says otherwise
    concurrency: int | None = None  # health_check_concurrency: None = all at once
    details: bool = True  # health_check_details: false shows only model and error


def endpoint_display(deployment: Deployment, details: bool = True) -> dict[str, Any]:
    """What ``/health`` shows of a deployment: never a credential (LiteLLM's display allow-list)."""
    shown: dict[str, Any] = {"model": deployment.model}
    if details:
        params = deployment.params
        if deployment.api_base:
            shown["api_base"] = deployment.api_base  # query string (possibly a key) already cut off
        if params.get("api_version"):
            shown["api_version"] = params["api_version"]
        for name in ("rpm", "tpm"):
            value = getattr(deployment, name, None)
            if value is not None:
                shown[name] = value
    shown["model_id"] = deployment.model_id
    return shown


class HealthChecker:
    """Runs the checks; owns the background loop's last result."""

    def __init__(self, deployments: Sequence[Deployment], settings: HealthSettings) -> None:
        # a wildcard deployment is a pattern, not a model to call: it has nothing to probe
        self.deployments = tuple(d for d in deployments if not d.wildcard)
        self.settings = settings
        self.latest: dict[str, Any] | None = None
        self._task: asyncio.Task[None] | None = None

    async def check(
        self, client: AsyncClient, *, model: str | None = None, model_id: str | None = None
    ) -> dict[str, Any]:
        """Probe the deployments (all, those of group ``model`` or the one with ``model_id``)."""
        chosen = list(_select(self.deployments, model, model_id))
        limit = self.settings.concurrency
        gate = asyncio.Semaphore(limit) if limit and limit > 0 else None
        results = await asyncio.gather(*(self._probe(client, d, gate) for d in chosen))
        healthy = [entry for entry, ok in results if ok]
        unhealthy = [entry for entry, ok in results if not ok]
        return {
            "healthy_endpoints": healthy,
            "unhealthy_endpoints": unhealthy,
            "healthy_count": len(healthy),
            "unhealthy_count": len(unhealthy),
        }

    def cached(self, *, model: str | None = None, model_id: str | None = None) -> dict[str, Any]:
        """The background loop's last result, narrowed like ``check``."""
        latest = self.latest or {"healthy_endpoints": [], "unhealthy_endpoints": []}
        ids = {d.model_id for d in _select(self.deployments, model, model_id)}
        healthy = [e for e in latest["healthy_endpoints"] if e.get("model_id") in ids]
        unhealthy = [e for e in latest["unhealthy_endpoints"] if e.get("model_id") in ids]
        return {
            "healthy_endpoints": healthy,
            "unhealthy_endpoints": unhealthy,
            "healthy_count": len(healthy),
            "unhealthy_count": len(unhealthy),
        }

    def start_background(self, client: AsyncClient) -> None:
        if self.settings.background and self._task is None:
            self._task = asyncio.create_task(self._loop(client), name="llmplex-health-checks")

    async def stop_background(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self, client: AsyncClient) -> None:
        while True:
            started = time.monotonic()
            try:
                self.latest = await self.check(client)
            except Exception:  # a bug here must not end the loop silently
                logger.exception("background health check failed")
            await asyncio.sleep(max(self.settings.interval - (time.monotonic() - started), 0.0))

    async def _probe(
        self, client: AsyncClient, deployment: Deployment, gate: asyncio.Semaphore | None
    ) -> tuple[dict[str, Any], bool]:
        entry = endpoint_display(deployment, self.settings.details)
        if deployment.problem is not None:  # disabled at startup: said, not probed
            entry["error"] = unsupported_message(deployment.problem, deployment.model_name)
            return entry, False
        timeout = _timeout_of(deployment, self.settings.timeout)
        try:
            async with gate if gate is not None else contextlib.nullcontext():
                async with asyncio.timeout(timeout):
                    await client.completion(deployment.model, _PROBE, **{**deployment.params, "max_tokens": 1})
        except TimeoutError:
            entry["error"] = f"Health check timeout exceeded ({timeout:g} s)"
            return entry, False
        except APIError as exc:
            entry["error"] = f"{type(exc).__name__}: {exc.message}"[:_MAX_ERROR]
            return entry, False
        except LLMplexError as exc:
            entry["error"] = f"{type(exc).__name__}: {exc}"[:_MAX_ERROR]
            return entry, False
        except Exception as exc:  # a bug must show as this deployment's failure, not fail /health
            logger.exception("health check of %s failed unexpectedly", deployment.model)
            entry["error"] = f"{type(exc).__name__}: unexpected error (see the proxy's log)"
            return entry, False
        return entry, True


def _select(deployments: Iterable[Deployment], model: str | None, model_id: str | None) -> Iterable[Deployment]:
    for deployment in deployments:
        if model_id is not None and deployment.model_id != model_id:
            continue
        if model is not None and model not in (deployment.model_name, deployment.model):
            continue
        yield deployment


def _timeout_of(deployment: Deployment, default: float) -> float:
    info = getattr(deployment, "model_info", None) or {}
    value = info.get("health_check_timeout")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    return default


HEALTH_KEYS = frozenset(
    {"background_health_checks", "health_check_interval", "health_check_details", "health_check_concurrency"}
)


def health_settings(check: Checker, general: Mapping[str, Any], environ: Mapping[str, str]) -> HealthSettings:
    """``general_settings``' health keys; the default timeout from ``HEALTH_CHECK_TIMEOUT_SECONDS`` (as LiteLLM)."""
    timeout = DEFAULT_TIMEOUT
    raw = environ.get("HEALTH_CHECK_TIMEOUT_SECONDS")
    if raw:
        try:
            timeout = float(raw)
        except ValueError:
            raise ConfigError(f"HEALTH_CHECK_TIMEOUT_SECONDS must be a number of seconds, got {raw[:40]!r}") from None
        if timeout <= 0:
            raise ConfigError(f"HEALTH_CHECK_TIMEOUT_SECONDS must be positive, got {raw[:40]!r}")
    details = check.optional(general, "general_settings.health_check_details", bool)
    return HealthSettings(
        background=bool(check.optional(general, "general_settings.background_health_checks", bool)),
        interval=check.optional(general, "general_settings.health_check_interval", float, minimum=1.0) or 300.0,
        timeout=timeout,
        concurrency=check.optional(general, "general_settings.health_check_concurrency", int, minimum=1),
        details=True if details is None else details,
    )
