"""``RoutingCore``: one call routed inside a ``model_name`` group (pick, call, retry), then its fallbacks.

The engine under ``llmplex.Router`` (the SDK's LiteLLM-shaped API, ``router.py``) and the proxy,
which calls ``route(client, group, messages, options)`` with its own ``AsyncClient``.
Counters, cooldowns and statistics live in a ``RouterState`` (one per router): in-process by
default, shared by every worker and replica through Redis when it is configured. The client does
the HTTP and retries nothing itself here (``num_retries=0``): retrying across deployments is the
router's job. Strategies are in ``strategies.py``; fallbacks, backoff and cooldown rules in ``fallbacks.py``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llmplex._controls import Controls
from llmplex._latency import DEFAULT_QUANTILE, auto_hedge_delay
from llmplex._request import PreparedCall, prepare_call, resolve_prepared
from llmplex._streaming import CompletionStream
from llmplex.client import AsyncClient
from llmplex.config import ClientConfig
from llmplex.exceptions import APIError, BadRequestError
from llmplex.relayed import RelayedResponse
from llmplex.router.admission import WaitingLine
from llmplex.router.deployments import Deployment
from llmplex.router.fallbacks import backoff, counts_toward_cooldown, no_deployment, queue_bound, with_fallbacks
from llmplex.router.settings import RedisSettings, RouterSettings
from llmplex.router.state import RouterState, make_state
from llmplex.router.strategies import choose
from llmplex.router.stream_failover import first_content
from llmplex.router.support import not_chat_message
from llmplex.router.wildcard_groups import WildcardGroups
from llmplex.types import ModelResponse

__all__ = ["Routed", "RoutingCore"]

# --debug: failures, retries and fallbacks (the proxy logs the deployment that answered); never a key
logger = logging.getLogger("llmplex.router")


@dataclass(slots=True)
class Routed:
    result: ModelResponse | RelayedResponse | CompletionStream
    deployment: Deployment
    retries: int = 0  # attempts before the one that answered, inside the group that answered
    fallbacks: int = 0  # fallback groups tried before the one that answered (0: the requested group)


class RoutingCore:
    def _setup(
        self,
        deployments: Sequence[Deployment],
        settings: RouterSettings,
        redis: RedisSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        state: RouterState | None = None,
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.deployments = tuple(deployments)
        self._clock = clock
        self._rng = rng or random.Random()
        self._groups: dict[str, list[Deployment]] = {}
        self._unsupported: dict[str, str] = {}  # group -> why, when none of its deployments can be served
        for deployment in deployments:
            if deployment.problem is not None:
                self._unsupported.setdefault(deployment.model_name, deployment.problem)
            elif not deployment.wildcard:
                self._groups.setdefault(deployment.model_name, []).append(deployment)
        for name in self._groups:
            self._unsupported.pop(name, None)  # a group with one servable deployment routes to it
        served = [d for d in deployments if d.problem is None]
        self._wildcards = WildcardGroups(served)
        self._aliases = dict(settings.model_group_alias)
        # groups whose failures may go elsewhere: route() takes the fallback path only for these
        self._fallback_groups = frozenset(
            [*settings.fallbacks, *settings.context_window_fallbacks, *settings.content_policy_fallbacks]
        )
        self.state = state or make_state(served, settings, redis, clock=clock)
        self._prepared_calls: dict[int, tuple[ClientConfig, PreparedCall]] = {}
        self._lines: dict[str, WaitingLine] = {}  # groups with requests waiting for capacity

    async def start(self) -> None:
        """Connect the shared state (Redis); call it inside the event loop that serves the requests."""
        await self.state.start()

    def group_for(self, name: str) -> str | None:
        """The model_name group a public name refers to, or None.

        An exact ``model_name`` wins, then an alias, then the most specific wildcard pattern: its
        deployments, with the requested name filling their ``*``, become a group named ``name``
        (``BadRequestError`` when what the name fills in is something llmplex does not serve).
        """
        if name in self._groups:
            return name
        alias = self._aliases.get(name)
        if alias is not None or not self._wildcards or name in self._unsupported:
            return alias
        made = self._wildcards.group(name, self.state, self._forget)
        if made is None:
            return None
        group, dropped = made
        self._groups[name] = group
        for old in dropped:
            self._groups.pop(old, None)
        return name

    def _forget(self, ident: int) -> None:
        self._prepared_calls.pop(ident, None)

    def _members(self, group: str) -> list[Deployment]:
        members = self._groups.get(group)
        if members is None:  # a wildcard group dropped while a request for it was retrying: make it again
            self.group_for(group)
            members = self._groups[group]
        return members

    def chat_problem(self, group: str) -> str | None:
        """Why chat completions are refused for ``group`` (every deployment an embedding or completion model)."""
        members = self._groups.get(group)
        if not members or any(d.mode == "chat" for d in members):
            return None
        return not_chat_message(members[0].mode, group)

    def unsupported(self, name: str) -> str | None:
        """What llmplex does not support about group ``name`` when all its deployments are disabled, else None."""
        return self._unsupported.get(name)

    def hedge_delay(self, group: str, quantile: float = DEFAULT_QUANTILE) -> tuple[float, int]:
        """``(seconds, samples used)`` for ``hedge_delay: "auto"``: the group's recent latencies (see ``_latency``).

        Samples of every deployment of the group count (shared by all workers with Redis): a hedge
        waits on the group, whichever deployment the router picks. They are whole-completion
        latencies, so for a streamed race (decided on the first token) the delay errs long: fewer hedges.
        """
        samples = [ms for d in self._members(group) for ms in self.state.latency_samples(d)]
        return auto_hedge_delay(samples, quantile)

    def route(
        self,
        client: AsyncClient,
        group: str,
        messages: list[dict[str, Any]],
        options: Mapping[str, Any],
        *,
        cut_off_after: float | None = None,
        controls: Controls | None = None,
    ) -> Awaitable[Routed]:
        """Call the group (with retries across its deployments), then its fallback groups in order.

        ``cut_off_after`` (seconds; a hedged race's primary): a call cancelled after running at least
        that long is recorded as a latency sample at its elapsed time, a lower bound of its latency.
        Otherwise the statistics would only see the primary's fast answers, and an adaptive hedge
        delay would shrink with every race it loses. ``controls``: the request's LiteLLM controls
        (``llmplex._controls.split_controls``; per-request fallbacks, retries, mock failures).
        ``options["priority"]`` (an int, lower first) is the request's place in the group's waiting
        line (``admission.py``); it is popped here, never sent upstream.
        """
        priority = None
        if "priority" in options:
            options = dict(options)
            priority = options.pop("priority")
            if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int)):
                raise BadRequestError(f"priority must be an integer, got {priority!r}", param="priority")
        if controls is None and group not in self._fallback_groups:  # the common case: no coroutine layer
            return self._call_group(client, group, messages, options, cut_off_after, None, priority)
        return with_fallbacks(self, client, group, messages, options, cut_off_after, controls, priority)

    async def _call_group(  # noqa: PLR0913 - every chat request's path: plain arguments, no per-call object
        self,
        client: AsyncClient,
        group: str,
        messages: list[dict[str, Any]],
        options: Mapping[str, Any],
        cut_off_after: float | None = None,
        num_retries: int | None = None,  # the request's own, over the router's
        priority: int | None = None,
        may_wait: bool = True,
    ) -> Routed:
        """The retry loop in one group; ``may_wait=False``: no waiting line (a fallback group comes next)."""
        tried: set[int] = set()
        attempts = (self.settings.num_retries if num_retries is None else num_retries) + 1
        for attempt in range(attempts):
            # admitted and counted in flight (state.begin) by the pick
            deployment = self._pick_now(group, tried)
            if deployment is None:
                deployment = await self._pick(group, tried, client, options, priority, may_wait)
            started = self._clock()
            result = None
            try:
                call = resolve_prepared(self._prepared(client, deployment), messages, options, client.config)
                result = await client.run_call(call, relay=True)
                if type(result) is CompletionStream:  # nothing reaches the caller before the stream has content
                    await first_content(result)
            except APIError as exc:
                failover = exc.retryable or result is not None  # a stream that failed before its first content
                await self._failed(group, deployment, exc, failover)
                fresh = any(id(d) not in tried for d in self._members(group) if d is not deployment)
                tried.add(id(deployment))
                last = attempt + 1 >= attempts or not failover
                if logger.isEnabledFor(logging.DEBUG):
                    _log_failure(group, deployment, exc, attempt, attempts, last, fresh)
                if last:
                    raise
                if not fresh:
                    await backoff(attempt, exc, self._rng, self.settings.retry_after)
                continue
            except asyncio.CancelledError:
                elapsed = self._clock() - started
                if cut_off_after is not None and elapsed >= cut_off_after:
                    self.state.record_latency(deployment, elapsed * 1000.0)
                raise
            finally:
                self.state.finish(deployment)
                if self._lines:
                    self._freed(group)
            self._succeeded(deployment, started, result)
            return Routed(result, deployment, attempt)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _prepared(self, client: AsyncClient, deployment: Deployment) -> PreparedCall:
        """The deployment's model and settings resolved once per client (not on every request)."""
        config = client.config
        cached = self._prepared_calls.get(id(deployment))
        if cached is not None and cached[0] is config:
            return cached[1]
        params = deployment.params
        first_token = self.settings.stream_first_token_timeout
        if first_token is not None and "stream_first_token_timeout" not in params:
            params = {**params, "stream_first_token_timeout": first_token}
        prepared = prepare_call(deployment.model, params, config)
        self._prepared_calls[id(deployment)] = (config, prepared)
        return prepared

    def _pick_now(self, group: str, avoid: set[int]) -> Deployment | None:
        """A deployment admitted and counted in flight without awaiting, or None: ``_pick`` decides.

        None when the shared store must decide, when nothing is free (wait in line, or 429), or when
        others already wait for this group (a newcomer goes behind them).
        """
        if self._lines and group in self._lines:
            return None
        candidates, _ = self._candidates(group)
        while candidates:
            deployment = self._one_of(candidates, avoid)
            blocked = self.state.admit_now(deployment)
            if blocked is None:
                return None
            if blocked <= 0:
                self.state.begin(deployment)
                return deployment
            candidates.remove(deployment)
        return None

    async def _pick(
        self,
        group: str,
        avoid: set[int],
        client: AsyncClient | None = None,
        options: Mapping[str, Any] | None = None,
        priority: int | None = None,
        may_wait: bool = True,
    ) -> Deployment:
        """A deployment not cooling down, admitted against its limits and counted in flight; waits in line if none."""
        waits = may_wait and self.settings.queue_timeout > 0
        if not waits or group not in self._lines:  # (a request that will not wait tries even past a line)
            deployment, wait = await self.try_pick(group, avoid)
            if deployment is not None:
                return deployment
            if not waits:
                raise no_deployment(group, wait)
        line = self._lines.get(group)
        if line is None:
            line = self._lines[group] = WaitingLine(self, group)
        bound = queue_bound(self.settings, None if client is None else client.config, options or {})
        return await line.wait(avoid, _priority(priority, self.settings.default_priority), bound)

    async def try_pick(self, group: str, avoid: set[int]) -> tuple[Deployment | None, float | None]:
        """``(deployment admitted and counted in flight, None)``, or ``(None, seconds until one may free)``.

        The wait is ``math.inf`` when only a call finishing can free one (``max_parallel_requests``).
        """
        candidates, wait = self._candidates(group)
        while candidates:
            deployment = self._one_of(candidates, avoid)
            blocked = await self.state.admit(deployment)
            if blocked <= 0:
                self.state.begin(deployment)  # no await since the admit: nobody else can take the slot
                return deployment, None
            wait = _min(wait, blocked)  # another worker or replica filled the window meanwhile
            candidates.remove(deployment)
        return None, wait

    def release(self, group: str, deployment: Deployment) -> None:
        """``state.finish`` for a deployment picked (a call ended, or its waiter gave up), waking the group's line."""
        self.state.finish(deployment)
        if self._lines:
            self._freed(group)

    def _freed(self, group: str) -> None:
        line = self._lines.get(group)
        if line is not None:
            line.freed()

    def line_closed(self, group: str, line: WaitingLine) -> None:
        """The line's last waiter left: newcomers take the fast path again."""
        if self._lines.get(group) is line:
            del self._lines[group]

    def group_deployments(self, group: str) -> list[Deployment]:
        return self._members(group)

    def candidates(self, group: str) -> tuple[list[Deployment], float | None]:
        """The group's deployments not cooling down or over a limit, and the shortest wait among the others."""
        return self._candidates(group)

    def _candidates(self, group: str) -> tuple[list[Deployment], float | None]:
        candidates: list[Deployment] = []
        wait: float | None = None
        for deployment in self._members(group):
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
        return fresh[0] if len(fresh) == 1 else choose(self.settings.routing_strategy, fresh, self.state, self._rng)

    async def _failed(self, group: str, deployment: Deployment, exc: APIError, failover: bool = False) -> None:
        if not (failover or counts_toward_cooldown(exc)):
            return
        # a group's only deployment is never cooled down: that would turn one failure into many
        await self.state.record_failure(deployment, may_cool_down=len(self._members(group)) > 1)

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


def _priority(priority: int | None, default: int | None) -> int:
    if priority is not None:
        return priority
    return default or 0


def _log_failure(
    group: str, deployment: Deployment, exc: APIError, attempt: int, attempts: int, last: bool, fresh: bool
) -> None:
    if last:
        then = "no retry left" if exc.retryable else "not retryable"
    else:
        then = "retrying on another deployment" if fresh else "retrying the same deployment after a backoff"
    logger.debug(
        "group=%s deployment=%s (id %s) failed on attempt %d/%d: %s %s (status %s); %s",
        group,
        deployment.model,
        deployment.model_id,
        attempt + 1,
        attempts,
        type(exc).__name__,
        exc.message[:200],
        exc.status_code,
        then,
    )


def _min(a: float | None, b: float) -> float:
    return b if a is None else min(a, b)
