"""The hedge delay of a ``batch_completion_models`` race: as given, or adaptive (``hedge_delay="auto"``).

The adaptive delay comes from the client's ``LatencyTracker`` (``_latency``); each race feeds its
own latencies back into it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llmplex._batch_inputs import ModelEntry, check_positive
from llmplex._concurrency import RaceOutcome
from llmplex._latency import DEFAULT_QUANTILE, auto_hedge_delay, valid_quantile
from llmplex.exceptions import BadRequestError

if TYPE_CHECKING:
    from llmplex.client import AsyncClient

__all__ = ["Hedge", "hedge_plan", "record_latencies"]


@dataclass(frozen=True, slots=True)
class Hedge:
    delay: float | None
    samples: int | None = None  # set when the delay is adaptive

    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"hedge_delay": self.delay}
        if self.samples is not None:
            meta["hedge_samples"] = self.samples
        return meta


def hedge_plan(client: AsyncClient, first: str, hedge_delay: Any, hedge_quantile: Any, *, stream: bool) -> Hedge:
    """The race's hedge delay: as given, or adaptive from the first model's recent latencies."""
    if hedge_quantile is not None and hedge_delay != "auto":
        raise BadRequestError('hedge_quantile applies only with hedge_delay="auto"', param="hedge_quantile")
    if hedge_delay != "auto":
        if isinstance(hedge_delay, str):
            raise BadRequestError(
                f'hedge_delay must be a number >= 0 or "auto", got {hedge_delay!r}', param="hedge_delay"
            )
        check_positive("hedge_delay", hedge_delay, allow_zero=True)
        return Hedge(hedge_delay)
    q = DEFAULT_QUANTILE if hedge_quantile is None else hedge_quantile
    if not valid_quantile(q):
        raise BadRequestError(f"hedge_quantile must be a number in (0, 1], got {q!r}", param="hedge_quantile")
    delay, samples = auto_hedge_delay(client.latency.samples(first, stream=stream), q)
    return Hedge(delay, samples)


def record_latencies(
    client: AsyncClient, entries: list[ModelEntry], outcome: RaceOutcome[Any], hedge: Hedge, *, stream: bool
) -> None:
    """Feed the race back into the client's latency statistics (for later ``hedge_delay="auto"``).

    A whole completion records itself in ``AsyncClient.completion``; a streamed winner's
    first-token latency is recorded here. A hedged primary that lost to its backup ran at least the
    hedge delay and is recorded at the time it was cancelled, a lower bound of its latency: dropping
    it would keep only the fast samples, so the quantile (and the delay) would shrink with every
    hedged race until nearly every request is doubled. Other losers were cut short by an earlier
    start; their times say nothing about their latency.
    """
    for index, (entry, attempt) in enumerate(zip(entries, outcome.attempts, strict=True)):
        if attempt.latency_ms is None:
            continue
        censored = index == 0 and bool(hedge.delay) and attempt.status == "cancelled"
        if censored or (stream and attempt.status == "won"):
            client.latency.record(entry.model, attempt.latency_ms, stream=stream)
