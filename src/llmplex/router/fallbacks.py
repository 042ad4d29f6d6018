"""What happens after a failure: fallback groups, backoff between retries, cooldowns, the "no deployment" 429.

The retry loop itself (pick, call, record) is ``RoutingCore._call_group`` in ``core.py``: it is every
request's path, so it stays one coroutine; this module holds the decisions it delegates.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from llmplex.client import AsyncClient
from llmplex.exceptions import APIError, BadRequestError, RateLimitError

if TYPE_CHECKING:
    from llmplex.router.core import Routed, RoutingCore

__all__ = [
    "COOLDOWN_STATUSES",
    "MAX_RETRY_SLEEP",
    "backoff",
    "counts_toward_cooldown",
    "no_deployment",
    "with_fallbacks",
]

MAX_RETRY_SLEEP = 10.0  # a retry-after longer than this is not waited for: the error goes to the caller
COOLDOWN_STATUSES = frozenset({401, 404, 408, 429})


async def with_fallbacks(
    core: RoutingCore,
    client: AsyncClient,
    group: str,
    messages: list[dict[str, Any]],
    options: Mapping[str, Any],
    cut_off_after: float | None,
) -> Routed:
    """The group, then each of its ``fallbacks`` groups in order; a 400 (the request's fault) never falls back."""
    try:
        return await core._call_group(client, group, messages, options, cut_off_after)
    except APIError as exc:
        if isinstance(exc, BadRequestError) and exc.status_code == 400:
            raise
        for fallback in core.settings.fallbacks.get(group, ()):
            target = core.group_for(fallback)
            if target is None or target == group:
                continue
            try:
                return await core._call_group(client, target, messages, options, cut_off_after)
            except APIError:
                continue
        raise


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
        f"No deployments available for model {group!r}: every deployment is at its rpm/tpm limit "
        "or cooling down after failures",
        model=group,
        retry_after=math.ceil(wait) if wait else 1,
    )
