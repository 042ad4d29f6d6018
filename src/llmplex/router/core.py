"""Choosing a deployment inside a ``model_name`` group: strategies, retries, fallbacks, cooldowns, rpm/tpm.

Counters, cooldowns and statistics live in a ``RouterState`` (one per ``Router``, one router per app):
in-process by default, shared by every worker and replica through Redis when it is configured.
The SDK does the HTTP and retries nothing itself here (``num_retries=0``): retrying across
deployments is the router's job.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llmplex import AsyncClient, CompletionStream, ModelResponse
from llmplex._latency import DEFAULT_QUANTILE, auto_hedge_delay
from llmplex._request import PreparedCall, prepare_call, resolve_prepared
from llmplex.config import ClientConfig
from llmplex.exceptions import APIError, BadRequestError, RateLimitError
from llmplex.proxy.config import Deployment, ProxyConfig
from llmplex.router.state import RouterState, make_state
from llmplex.relayed import RelayedResponse

__all__ = ["Routed", "Router"]

_MAX_RETRY_SLEEP = 10.0
_COOLDOWN_STATUSES = frozenset({401, 404, 408, 429})


@dataclass(slots=True)
class Routed:
    result: ModelResponse | RelayedResponse | CompletionStream
    deployment: Deployment


class Router:
    def __init__(
        self,
        config: ProxyConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        state: RouterState | None = None,
    ) -> None:
        self.settings = config.router
        self._clock = clock
        self._rng = rng or random.Random()
        self._groups: dict[str, list[Deployment]] = {}
        for deployment in config.deployments:
            self._groups.setdefault(deployment.model_name, []).append(deployment)
        self._aliases = dict(config.router.model_group_alias)
        self.state = state or make_state(config, clock=clock)
        self._prepared_calls: dict[int, tuple[ClientConfig, PreparedCall]] = {}

    async def start(self) -> None:
        await self.state.start()

    async def aclose(self) -> None:
        await self.state.close()

    def group_for(self, name: str) -> str | None:
        """The model_name group a public name refers to, or None."""
        if name in self._groups:
            return name
        return self._aliases.get(name)

    def hedge_delay(self, group: str, quantile: float = DEFAULT_QUANTILE) -> tuple[float, int]:
        """``(seconds, samples used)`` for ``hedge_delay: "auto"``: the group's recent latencies (see ``_latency``).

        Samples of every deployment of the group count (shared by all workers with Redis): a hedge
        waits on the group, whichever deployment the router picks. They are whole-completion
        latencies, so for a streamed race (decided on the first token) the delay errs long: fewer hedges.
        """
        samples = [ms for d in self._groups[group] for ms in self.state.latency_samples(d)]
        return auto_hedge_delay(samples, quantile)

    def completion(
        self,
        client: AsyncClient,
        group: str,
        messages: list[dict[str, Any]],
        options: Mapping[str, Any],
        *,
        cut_off_after: float | None = None,
    ) -> Awaitable[Routed]:
        """Call the group (with retries across its deployments), then its fallback groups in order.

        ``cut_off_after`` (seconds; a hedged race's primary): a call cancelled after running at least
        that long is recorded as a latency sample at its elapsed time, a lower bound of its latency.
        Otherwise the statistics would only see the primary's fast answers, and an adaptive hedge
        delay would shrink with every race it loses.
        """
        if not self.settings.fallbacks.get(group):  # the common case, without a coroutine layer for fallbacks
            return self._call_group(client, group, messages, options, cut_off_after)
        return self._with_fallbacks(client, group, messages, options, cut_off_after)

    async def _with_fallbacks(
        self,
        client: AsyncClient,
        group: str,
        messages: list[dict[str, Any]],
        options: Mapping[str, Any],
        cut_off_after: float | None,
    ) -> Routed:
        try:
            return await self._call_group(client, group, messages, options, cut_off_after)
        except APIError as exc:
            if isinstance(exc, BadRequestError) and exc.status_code == 400:
                raise
            for fallback in self.settings.fallbacks.get(group, ()):
                target = self.group_for(fallback)
                if target is None or target == group:
                    continue
                try:
                    return await self._call_group(client, target, messages, options, cut_off_after)
                except APIError:
                    continue
            raise

    async def _call_group(
        self,
        client: AsyncClient,
        group: str,
        messages: list[dict[str, Any]],
        options: Mapping[str, Any],
        cut_off_after: float | None = None,
    ) -> Routed:
        tried: set[int] = set()
        attempts = self.settings.num_retries + 1
        for attempt in range(attempts):
            deployment = self._pick_now(group, tried) or await self._pick(group, tried)
            self.state.begin(deployment)
            started = self._clock()
            try:
                call = resolve_prepared(self._prepared(client, deployment), messages, options, client.config)
                result = await client.run_call(call, relay=True)
            except APIError as exc:
                await self._failed(group, deployment, exc)
                fresh = any(id(d) not in tried for d in self._groups[group] if d is not deployment)
                tried.add(id(deployment))
                if attempt + 1 >= attempts or not exc.retryable:
                    raise
                if not fresh:
                    await self._backoff(attempt, exc)
                continue
            except asyncio.CancelledError:
                elapsed = self._clock() - started
                if cut_off_after is not None and elapsed >= cut_off_after:
                    self.state.record_latency(deployment, elapsed * 1000.0)
                raise
            finally:
                self.state.finish(deployment)
            self._succeeded(deployment, started, result)
            return Routed(result, deployment)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _prepared(self, client: AsyncClient, deployment: Deployment) -> PreparedCall:
        """The deployment's model and settings resolved once per client (not on every request)."""
        config = client.config
        cached = self._prepared_calls.get(id(deployment))
        if cached is not None and cached[0] is config:
            return cached[1]
        prepared = prepare_call(deployment.model, deployment.params, config)
        self._prepared_calls[id(deployment)] = (config, prepared)
        return prepared

    def _pick_now(self, group: str, avoid: set[int]) -> Deployment | None:
        """``_pick`` without awaiting, when the state can decide at once (None: the shared store must decide)."""
        candidates, wait = self._candidates(group)
        while candidates:
            deployment = self._one_of(candidates, avoid)
            blocked = self.state.admit_now(deployment)
            if blocked is None:
                return None
            if blocked <= 0:
                return deployment
            wait = _min(wait, blocked)
            candidates.remove(deployment)
        raise _no_deployment(group, wait)

    async def _pick(self, group: str, avoid: set[int]) -> Deployment:
        """A deployment that is not cooling down, admitted against its rpm/tpm window (counted)."""
        candidates, wait = self._candidates(group)
        while candidates:
            deployment = self._one_of(candidates, avoid)
            blocked = await self.state.admit(deployment)
            if blocked <= 0:
                return deployment
            wait = _min(wait, blocked)  # another worker or replica filled the window meanwhile
            candidates.remove(deployment)
        raise _no_deployment(group, wait)

    def _candidates(self, group: str) -> tuple[list[Deployment], float | None]:
        """The group's deployments not cooling down or over a limit, and the shortest wait among the others."""
        candidates: list[Deployment] = []
        wait: float | None = None
        for deployment in self._groups[group]:
            blocked = self.state.blocked_for(deployment)
            if blocked > 0:
                wait = _min(wait, blocked)
            else:
                candidates.append(deployment)
        return candidates, wait

    def _one_of(self, candidates: list[Deployment], avoid: set[int]) -> Deployment:
        if len(candidates) == 1:
            return candidates[0]
        fresh = [d for d in candidates if id(d) not in avoid] or candidates
        return fresh[0] if len(fresh) == 1 else self._choose(fresh)

    def _choose(self, deployments: Sequence[Deployment]) -> Deployment:
        strategy = self.settings.routing_strategy
        if strategy == "least-busy":
            return self._lowest(deployments, self.state.in_flight)
        if strategy == "latency-based-routing":
            return self._lowest(deployments, lambda d: self.state.latency_ms(d) or 0.0)
        if strategy.startswith("usage-based-routing"):
            return self._lowest(deployments, self.state.tokens)
        weights = _weights(deployments)
        if weights is None:
            return self._rng.choice(deployments)
        return self._rng.choices(deployments, weights=weights, k=1)[0]

    def _lowest(self, deployments: Sequence[Deployment], key: Callable[[Deployment], float]) -> Deployment:
        scores = [key(d) for d in deployments]
        best = min(scores)
        return self._rng.choice([d for d, score in zip(deployments, scores, strict=True) if score == best])

    async def _failed(self, group: str, deployment: Deployment, exc: APIError) -> None:
        if not (exc.retryable or exc.status_code in _COOLDOWN_STATUSES):
            return
        # a group's only deployment is never cooled down: that would turn one failure into many
        await self.state.record_failure(deployment, may_cool_down=len(self._groups[group]) > 1)

    def _succeeded(
        self, deployment: Deployment, started: float, result: ModelResponse | RelayedResponse | CompletionStream
    ) -> None:
        whole = not isinstance(result, CompletionStream)  # a stream's latency is its headers', not the answer's
        if isinstance(result, RelayedResponse):
            counts = result.usage_counts()
            tokens = counts["total_tokens"] if counts else 0
        else:
            tokens = result.usage.total_tokens if isinstance(result, ModelResponse) and result.usage is not None else 0
        self.state.record_success(deployment, (self._clock() - started) * 1000.0, tokens, whole=whole)

    async def _backoff(self, attempt: int, exc: APIError) -> None:
        delay = exc.retry_after if exc.retry_after else min(0.25 * 2**attempt, 4.0) * (1 - 0.25 * self._rng.random())
        if delay > _MAX_RETRY_SLEEP:
            raise exc
        await asyncio.sleep(delay)


def _no_deployment(group: str, wait: float | None) -> RateLimitError:
    return RateLimitError(
        f"No deployments available for model {group!r}: every deployment is at its rpm/tpm limit "
        "or cooling down after failures",
        model=group,
        retry_after=math.ceil(wait) if wait else 1,
    )


def _weights(deployments: Sequence[Deployment]) -> list[float] | None:
    for attr in ("weight", "rpm", "tpm"):
        values = [getattr(d, attr) for d in deployments]
        if any(v is not None for v in values):
            known = [v for v in values if v is not None]
            fill = sum(known) / len(known)  # a deployment without the setting gets the average share
            weights = [float(fill if v is None else v) for v in values]
            return weights if sum(weights) > 0 else None
    return None


def _min(a: float | None, b: float) -> float:
    return b if a is None else min(a, b)
