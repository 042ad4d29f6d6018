"""``RouterState``: what the router knows about each deployment, and the in-process implementation.

The router asks cheap, synchronous questions on the hot path (is it cooling down or at its limit,
how busy, how fast) and awaits only ``admit`` (count one request against rpm/tpm, atomically) and
``record_failure``. ``LocalState`` answers from plain counters in this process; ``RedisState``
(``shared.py``) answers the same questions for every worker and replica together.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

from llmplex._latency import LatencyWindow
from llmplex.router.deployments import Deployment
from llmplex.router.settings import RouterSettings

__all__ = ["FAIL_WINDOW", "LocalState", "RouterState", "Stats"]

FAIL_WINDOW = 60.0  # allowed_fails counts failures per minute, as in LiteLLM
_LATENCY_WEIGHT = 0.2  # weight of a new sample in the latency moving average


class Stats:
    """One deployment as this process sees it. Times are on the state's (monotonic) clock."""

    __slots__ = (
        "cooldown_until",
        "fail_window",
        "fails",
        "in_flight",
        "latency_ms",
        "requests",
        "samples",
        "tokens",
        "window",
    )

    def __init__(self) -> None:
        self.in_flight = 0
        self.latency_ms: float | None = None
        self.samples = LatencyWindow()  # recent whole-completion latencies, for hedge_delay "auto"
        self.fails = 0
        self.fail_window = 0.0
        self.cooldown_until = 0.0
        self.window = 0.0
        self.requests = 0
        self.tokens = 0

    def add_latency(self, sample_ms: float) -> None:
        old = self.latency_ms
        self.latency_ms = sample_ms if old is None else old + (sample_ms - old) * _LATENCY_WEIGHT


class RouterState:
    """Per-deployment routing state; this base keeps it in the process (one ``Router`` per app)."""

    shared = False  # True when the state is shared with other processes (Redis)

    def __init__(
        self,
        deployments: Sequence[Deployment],
        settings: RouterSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.window_length = settings.rate_limit_window
        self._stats: dict[int, Stats] = {id(d): Stats() for d in deployments}
        # counters for metrics: calls to the shared store that failed, and requests decided on local state
        # because the shared store was unavailable (both stay 0 without Redis)
        self.redis_errors = 0
        self.local_fallbacks = 0

    async def start(self) -> None:
        """Called from the app's lifespan, inside the serving event loop."""

    def alias(self, made: Deployment, template: Deployment) -> None:
        """``made`` (a wildcard's deployment for one requested name) shares ``template``'s state."""
        self._stats[id(made)] = self._stats[id(template)]

    def unalias(self, ident: int) -> None:
        self._stats.pop(ident, None)

    async def close(self) -> None:
        """Called on shutdown."""

    def stats(self, deployment: Deployment) -> Stats:
        return self._stats[id(deployment)]

    def blocked_for(self, deployment: Deployment) -> float:
        """Seconds until the deployment may be called again (cooldown or rpm/tpm); 0 when it may now.

        ``math.inf`` when it is at ``max_parallel_requests``: it frees when a call finishes, at no known time.
        """
        now = self.clock()
        stats = self._stats[id(deployment)]
        if stats.cooldown_until > now:
            return stats.cooldown_until - now
        return self._limited_for(deployment, stats, now)

    async def admit(self, deployment: Deployment) -> float:
        """Count one request against the deployment's rpm window; 0 when admitted, else seconds to wait."""
        return self._admit_locally(deployment)

    def admit_now(self, deployment: Deployment) -> float | None:
        """``admit`` without awaiting; None when only ``admit`` can decide (a shared store is asked)."""
        return self._admit_locally(deployment)

    def begin(self, deployment: Deployment) -> None:
        self._stats[id(deployment)].in_flight += 1

    def finish(self, deployment: Deployment) -> None:
        self._stats[id(deployment)].in_flight -= 1

    def record_success(self, deployment: Deployment, latency_ms: float, tokens: int, *, whole: bool = True) -> None:
        """A success after ``latency_ms``; ``whole=False`` for a stream (its latency is only the headers')."""
        stats = self._stats[id(deployment)]
        stats.add_latency(latency_ms)
        if whole:
            self.record_latency(deployment, latency_ms)
        self._roll(stats, self.clock())
        stats.tokens += tokens

    async def record_failure(self, deployment: Deployment, *, may_cool_down: bool) -> None:
        """A failure that counts toward ``allowed_fails``; past it the deployment cools down."""
        self._fail_locally(deployment, may_cool_down=may_cool_down)

    def in_flight(self, deployment: Deployment) -> int:
        return self._stats[id(deployment)].in_flight

    def latency_ms(self, deployment: Deployment) -> float | None:
        return self._stats[id(deployment)].latency_ms

    def record_latency(self, deployment: Deployment, latency_ms: float) -> None:
        """One latency sample for ``hedge_delay: "auto"`` (a success's, or a lower bound of a cut-off call's)."""
        self._stats[id(deployment)].samples.add(latency_ms)

    def latency_samples(self, deployment: Deployment) -> list[float]:
        """Recent whole-completion latencies (ms) of the deployment, at most ``_latency.WINDOW``."""
        return self._stats[id(deployment)].samples.samples()

    def tokens(self, deployment: Deployment) -> int:
        stats = self._stats[id(deployment)]
        self._roll(stats, self.clock())
        return stats.tokens

    # the in-process rules, also the fallback of the shared state while Redis is unavailable

    def _admit_locally(self, deployment: Deployment) -> float:
        stats = self._stats[id(deployment)]
        wait = self._limited_for(deployment, stats, self.clock())
        if wait <= 0:
            stats.requests += 1
        return wait

    def _limited_for(self, deployment: Deployment, stats: Stats, now: float) -> float:
        parallel = deployment.max_parallel_requests
        if parallel is not None and stats.in_flight >= parallel:
            return math.inf
        if deployment.rpm is None and deployment.tpm is None:
            return 0.0
        self._roll(stats, now)
        limited = (deployment.rpm is not None and stats.requests >= deployment.rpm) or (
            deployment.tpm is not None and stats.tokens >= deployment.tpm
        )
        return stats.window + self.window_length - now if limited else 0.0

    def _roll(self, stats: Stats, now: float) -> None:
        window = now - now % self.window_length
        if window != stats.window:
            stats.window, stats.requests, stats.tokens = window, 0, 0

    def _fail_locally(self, deployment: Deployment, *, may_cool_down: bool) -> None:
        stats = self._stats[id(deployment)]
        now = self.clock()
        if now - stats.fail_window >= FAIL_WINDOW:
            stats.fail_window, stats.fails = now, 0
        stats.fails += 1
        if may_cool_down and stats.fails > self.settings.allowed_fails:
            stats.cooldown_until = now + self.settings.cooldown_time
            stats.fails = 0


class LocalState(RouterState):
    """The in-process state: limits, cooldowns and statistics are per worker process."""
