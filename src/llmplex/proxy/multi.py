"""Multi-model requests: every model in parallel (an array answer) or a race (the fastest answer wins).

Built on the SDK's LLM-agnostic primitives (``race_first``, ``gather_settled``); each contender is a
routed call to one ``model_name`` group, so retries, fallbacks and cooldowns apply per model.
A streamed race is decided by the first content token; the losers' streams are closed at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from llmplex import AsyncClient, CompletionStream
from llmplex._concurrency import RaceOutcome, gather_settled, race_first
from llmplex.router import Routed, Router

__all__ = ["gather_all", "race"]


async def race(
    router: Router,
    client: AsyncClient,
    labels: Sequence[str],
    groups: Sequence[str],
    messages: list[dict[str, Any]],
    options: Mapping[str, Any],
    *,
    hedge_delay: float | None = None,
) -> RaceOutcome[Routed]:
    """First successful model wins (for streams: first content token); the others are cancelled."""
    stream = bool(options.get("stream"))

    def contender(group: str, cut_off_after: float | None) -> Callable[[], Awaitable[Routed]]:
        async def run() -> Routed:
            routed = await router.route(client, group, messages, options, cut_off_after=cut_off_after)
            if stream:
                await _first_token(routed.result)
            return routed

        return run

    # a hedged primary cut off by its backup still tells its latency (at least the delay); see RoutingCore.route
    primary_cut_off = hedge_delay if hedge_delay and not stream else None
    factories = [contender(g, primary_cut_off if i == 0 else None) for i, g in enumerate(groups)]
    return await race_first(list(labels), factories, hedge_delay=hedge_delay, discard=_discard)


async def gather_all(
    router: Router,
    client: AsyncClient,
    groups: Sequence[str],
    messages: list[dict[str, Any]],
    options: Mapping[str, Any],
) -> list[Routed | BaseException]:
    """Every model, in order; a failed slot holds its exception."""

    def call(group: str) -> Callable[[], Awaitable[Routed]]:
        return lambda: router.route(client, group, messages, options)

    return await gather_settled([call(g) for g in groups])


async def _first_token(result: object) -> None:
    if not isinstance(result, CompletionStream):
        return
    try:
        await result.peek_first_content()
    except BaseException:
        result.close()  # failed or cancelled while waiting: never leave the upstream open
        raise


async def _discard(routed: Routed) -> None:
    if isinstance(routed.result, CompletionStream):
        routed.result.close()
