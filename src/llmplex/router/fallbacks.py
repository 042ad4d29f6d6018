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

from llmplex.client import AsyncClient
from llmplex.config import ClientConfig
from llmplex.exceptions import (
    APIError,
    BadRequestError,
    ContentPolicyViolationError,
    ContextWindowExceededError,
    RateLimitError,
)
from llmplex.router.settings import RouterSettings

if TYPE_CHECKING:
    from llmplex.router.core import Routed, RoutingCore

__all__ = [
    "COOLDOWN_STATUSES",
    "MAX_RETRY_SLEEP",
    "backoff",
    "counts_toward_cooldown",
    "fallback_groups",
    "no_deployment",
    "queue_bound",
    "with_fallbacks",
]

logger = logging.getLogger("llmplex.router")

MAX_RETRY_SLEEP = 10.0  # a retry-after longer than this is not waited for: the error goes to the caller
COOLDOWN_STATUSES = frozenset({401, 404, 408, 429})


async def with_fallbacks(
    core: RoutingCore,
    client: AsyncClient,
    group: str,
    messages: list[dict[str, Any]],
    options: Mapping[str, Any],
    cut_off_after: float | None,
    priority: int | None = None,
) -> Routed:
    """The group, then its fallback groups in order; a 400 (the request's fault) never falls back.

    Except, as in LiteLLM, a ``ContextWindowExceededError`` / ``ContentPolicyViolationError``: it goes to
    ``context_window_fallbacks`` / ``content_policy_fallbacks`` when those are set (a group without an
    entry there does not fall back on it), else to ``fallbacks``. A group at its limits waits for
    capacity only when no fallback group comes after it: the primary of a group with ``fallbacks``
    falls back at once, the last fallback group waits.
    """
    try:
        last = not core.settings.fallbacks.get(group)
        return await core._call_group(client, group, messages, options, cut_off_after, priority, last)
    except APIError as exc:
        targets = fallback_groups(core.settings, group, exc)
        if targets is None:
            raise
        chain = [t for t in (core.group_for(name) for name in targets) if t is not None and t != group]
        for i, target in enumerate(chain):
            logger.debug("group=%s failed (%s): falling back to group %s", group, type(exc).__name__, target)
            try:
                return await core._call_group(
                    client, target, messages, options, cut_off_after, priority, i == len(chain) - 1
                )
            except APIError as failed:
                logger.debug("fallback group %s failed (%s)", target, type(failed).__name__)
                continue
        raise


def fallback_groups(settings: RouterSettings, group: str, exc: APIError) -> tuple[str, ...] | None:
    """The groups to try after ``exc`` from ``group`` (None: it does not fall back)."""
    special = None
    if isinstance(exc, ContextWindowExceededError):
        special = settings.context_window_fallbacks
    elif isinstance(exc, ContentPolicyViolationError):
        special = settings.content_policy_fallbacks
    if special:
        return special.get(group)
    if special is None and isinstance(exc, BadRequestError) and exc.status_code == 400:
        return None
    return settings.fallbacks.get(group)


def queue_bound(settings: RouterSettings, config: ClientConfig, options: Mapping[str, Any]) -> float:
    """How long a request may wait in line: ``queue_timeout``, capped by the request's timeout."""
    timeout = options.get("timeout") or options.get("request_timeout") or settings.timeout or config.timeout
    try:
        return min(settings.queue_timeout, float(timeout))
    except (TypeError, ValueError):  # the call itself reports a malformed timeout
        return settings.queue_timeout


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
