"""Several groups for one prompt: every group in parallel (an array answer) or a race (the fastest answer wins).

Built on the SDK's LLM-agnostic primitives (``race_first``, ``gather_settled``); each contender is a
routed call to one ``model_name`` group, so retries, fallbacks and cooldowns apply per contender.
A streamed race is decided by the first content token; the losers' streams are closed at once.
The same group may be given more than once: each entry is an independent attempt, labelled by
its position (``position_labels``). The proxy's comma-separated ``model`` and the SDK Router's
``abatch_completion_fastest_response`` / ``abatch_completion`` both run here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from llmplex._concurrency import RaceOutcome, gather_settled, race_first
from llmplex._controls import Controls
from llmplex._streaming import CompletionStream
from llmplex.client import AsyncClient

if TYPE_CHECKING:
    from llmplex.router.core import Routed, RoutingCore

__all__ = ["gather_all", "position_labels", "race"]


def position_labels(names: Sequence[str]) -> list[str]:
    """Race labels: a name given once keeps it; a name given more than once is labelled ``name#<position>``."""
    counts = Counter(names)
    return [name if counts[name] == 1 else f"{name}#{i}" for i, name in enumerate(names)]


async def race(  # noqa: PLR0913
    router: RoutingCore,
    client: AsyncClient,
    labels: Sequence[str],
    groups: Sequence[str],
    messages: list[dict[str, Any]],
    options: Mapping[str, Any],
    *,
    hedge_delay: float | None = None,
    controls: Controls | None = None,
) -> RaceOutcome[Routed]:
    """First successful model wins (for streams: first content token); the others are cancelled."""
    stream = bool(options.get("stream"))

    def contender(group: str, cut_off_after: float | None) -> Callable[[], Awaitable[Routed]]:
        async def run() -> Routed:
            routed = await router.route(
                client, group, messages, options, cut_off_after=cut_off_after, controls=controls
            )
            if stream:
                await _first_token(routed.result)
            return routed

        return run

    # a hedged primary cut off by its backup still tells its latency (at least the delay); see RoutingCore.route
    primary_cut_off = hedge_delay if hedge_delay and not stream else None
    factories = [contender(g, primary_cut_off if i == 0 else None) for i, g in enumerate(groups)]
    return await race_first(list(labels), factories, hedge_delay=hedge_delay, discard=_discard)


async def gather_all(
    router: RoutingCore,
    client: AsyncClient,
    groups: Sequence[str],
    messages: list[dict[str, Any]],
    options: Mapping[str, Any],
    controls: Controls | None = None,
) -> list[Routed | BaseException]:
    """Every group, in order; a failed slot holds its exception."""

    def call(group: str) -> Callable[[], Awaitable[Routed]]:
        return lambda: router.route(client, group, messages, options, controls=controls)

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
