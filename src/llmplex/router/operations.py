"""Routing any call, not only chat: ``route_operation(core, group, send)`` picks a deployment of the group
(strategy, cooldowns, rpm/tpm), awaits ``send(deployment)``, retries on another deployment, then falls back
to the group's ``fallbacks`` - the same rules and state as ``RoutingCore.route`` (whose chat path stays one
coroutine of its own: it is every chat request's path).

Embeddings, text completions and the Messages API go through here; ``stats(result)`` says how many tokens
the answer used and whether its latency is the whole answer's (False for a stream: only its headers').
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from llmplex.exceptions import APIError, BadRequestError
from llmplex.router.deployments import Deployment
from llmplex.router.fallbacks import backoff

if TYPE_CHECKING:
    from llmplex.router.core import RoutingCore

__all__ = ["route_operation"]

T = TypeVar("T")


def _no_stats(result: object) -> tuple[int, bool]:
    return 0, True


async def route_operation(
    core: RoutingCore,
    group: str,
    send: Callable[[Deployment], Awaitable[T]],
    *,
    stats: Callable[[T], tuple[int, bool]] = _no_stats,
) -> tuple[T, Deployment]:
    """``(result, deployment)`` of the first deployment that answers; a 400 (the request's fault) never falls back."""
    try:
        return await _call_group(core, group, send, stats)
    except APIError as exc:
        if isinstance(exc, BadRequestError) and exc.status_code == 400:
            raise
        for fallback in core.settings.fallbacks.get(group, ()):
            target = core.group_for(fallback)
            if target is None or target == group:
                continue
            try:
                return await _call_group(core, target, send, stats)
            except APIError:
                continue
        raise


async def _call_group(
    core: RoutingCore,
    group: str,
    send: Callable[[Deployment], Awaitable[T]],
    stats: Callable[[T], tuple[int, bool]],
) -> tuple[T, Deployment]:
    tried: set[int] = set()
    attempts = core.settings.num_retries + 1
    for attempt in range(attempts):
        # admitted and counted in flight (state.begin) by the pick; waits in the group's line when it is full
        deployment = core._pick_now(group, tried) or await core._pick(group, tried)
        started = core._clock()
        try:
            result = await send(deployment)
        except APIError as exc:
            await core._failed(group, deployment, exc)
            fresh = any(id(d) not in tried for d in core._groups[group] if d is not deployment)
            tried.add(id(deployment))
            if attempt + 1 >= attempts or not exc.retryable:
                raise
            if not fresh:
                await backoff(attempt, exc, core._rng, core.settings.retry_after)
            continue
        finally:
            core.release(group, deployment)
        tokens, whole = stats(result)
        core.state.record_success(deployment, (core._clock() - started) * 1000.0, tokens, whole=whole)
        return result, deployment
    raise AssertionError("unreachable: the last attempt returns or raises")
