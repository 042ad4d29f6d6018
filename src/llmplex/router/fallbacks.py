"""What happens after a failure: fallback groups, backoff between retries, cooldowns, the "no deployment" 429.

Also ``queue_bound``: how long a request may wait for capacity (the waiting line is ``admission.py``).

The retry loop itself (pick, call, record) is ``RoutingCore._call_group`` in ``core.py``: it is every
request's path, so it stays one coroutine; this module holds the decisions it delegates.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from llmplex._controls import Controls, fallback_chain
from llmplex.client import AsyncClient
from llmplex.config import ClientConfig
from llmplex.exceptions import APIError, RateLimitError
from llmplex.router.settings import RouterSettings

if TYPE_CHECKING:
    from llmplex.router.core import Routed, RoutingCore

__all__ = [
    "COOLDOWN_STATUSES",
    "MAX_RETRY_SLEEP",
    "backoff",
    "counts_toward_cooldown",
    "no_deployment",
    "queue_bound",
    "with_fallbacks",
]

logger = logging.getLogger("llmplex.router")

MAX_RETRY_SLEEP = 10.0  # a retry-after longer than this is not waited for: the error goes to the caller
COOLDOWN_STATUSES = frozenset({401, 404, 408, 429})


async def with_fallbacks(  # noqa: PLR0913 - route()'s arguments, passed on
    core: RoutingCore,
    client: AsyncClient,
    group: str,
    messages: list[dict[str, Any]],
    options: Mapping[str, Any],
    cut_off_after: float | None,
    controls: Controls | None = None,
    priority: int | None = None,
) -> Routed:
    """The group, then the fallback groups for its error, in order (``_controls.fallback_chain``).

    A request's ``fallbacks`` (``context_window_fallbacks``, ...) replace the router's; a 400 other than
    a context-window or content-policy error never falls back. Every fallback failing re-raises the
    group's own error. ``Routed.fallbacks`` counts the groups tried before the one that answered.
    A group at its limits waits for capacity (``admission.py``) only when no fallback group would take
    its 429: a primary with ``fallbacks`` falls back at once, the last fallback group waits.
    """
    retries = None if controls is None else controls.num_retries
    try:
        if controls is not None and controls.mock_error is not None:
            raise controls.mock_failure(group)  # mock_testing_*: no upstream call, no cooldown
        waits = not _targets_for_429(core, group, controls)
        return await core._call_group(client, group, messages, options, cut_off_after, retries, priority, waits)
    except APIError as exc:
        defaults = _defaults(core)
        tried = 0
        chain = [
            (target, fallback)
            for target in fallback_chain(exc, group, controls, defaults)
            if (fallback := core.group_for(target.model)) is not None and fallback != group
        ]
        for i, (target, fallback) in enumerate(chain):
            tried += 1
            logger.debug("group=%s failed (%s): falling back to group %s", group, type(exc).__name__, fallback)
            target_messages, target_options = target.apply(messages, options)
            try:
                routed = await core._call_group(
                    client,
                    fallback,
                    target_messages,
                    target_options,
                    cut_off_after,
                    retries,
                    priority,
                    i == len(chain) - 1,
                )
            except APIError as failed:
                logger.debug("fallback group %s failed (%s)", fallback, type(failed).__name__)
                continue
            routed.fallbacks = tried
            return routed
        raise


def _targets_for_429(core: RoutingCore, group: str, controls: Controls | None) -> bool:
    """Whether a 429 of ``group`` (nothing available) would fall back somewhere."""
    probe = RateLimitError("probe", model=group)
    return any(
        core.group_for(t.model) not in (None, group) for t in fallback_chain(probe, group, controls, _defaults(core))
    )


def queue_bound(settings: RouterSettings, config: ClientConfig | None, options: Mapping[str, Any]) -> float:
    """How long a request may wait in line: ``queue_timeout``, capped by the request's timeout."""
    timeout = options.get("timeout") or options.get("request_timeout") or settings.timeout
    timeout = timeout or (config.timeout if config is not None else settings.queue_timeout)
    try:
        return min(settings.queue_timeout, float(timeout))
    except (TypeError, ValueError):  # the call itself reports a malformed timeout
        return settings.queue_timeout


def _defaults(core: RoutingCore) -> dict[str, Mapping[str, tuple[str, ...]]]:
    settings = core.settings
    return {
        "fallbacks": settings.fallbacks,
        "context_window_fallbacks": settings.context_window_fallbacks,
        "content_policy_fallbacks": settings.content_policy_fallbacks,
    }


def counts_toward_cooldown(exc: APIError) -> bool:
    """A failure that says something about the deployment (not the request): counts toward ``allowed_fails``."""
    return exc.retryable or exc.status_code in COOLDOWN_STATUSES


async def backoff(attempt: int, exc: APIError, rng: random.Random, minimum: float = 0.0) -> None:
    """Wait before retrying the same deployment: the upstream's retry-after, else exponential with jitter."""
    delay = exc.retry_after if exc.retry_after else min(0.25 * 2**attempt, 4.0) * (1 - 0.25 * rng.random())
    delay = max(delay, minimum)  # LiteLLM's retry_after: the least wait before a retry
    if delay > MAX_RETRY_SLEEP:
        raise exc
    await asyncio.sleep(delay)


def no_deployment(group: str, wait: float | None) -> RateLimitError:
    return RateLimitError(
        f"No deployments available for model {group!r}: every deployment is at its rpm/tpm/max_parallel_requests "
        "limit or cooling down after failures",
        model=group,
        retry_after=math.ceil(wait) if wait and wait != math.inf else 1,
    )
