"""Batch shapes: many prompts -> one model, one prompt -> many models (race, or every answer).

``AsyncClient`` (and through it ``Client`` and the module functions) delegates here; the first
argument of every function is the ``AsyncClient``. Arguments are validated before any request
(see ``_batch_inputs`` for the keyword rule). Cancelling the caller cancels every request in
flight, which closes its connection.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from llmplex._batch_inputs import ModelEntry, check_params, check_positive, model_entries, validate_conversations
from llmplex._checkpoint import Checkpoint, fingerprint
from llmplex._concurrency import RaceOutcome, bounded_map, gather_settled, race_first
from llmplex._hedge import hedge_plan, record_latencies
from llmplex._progress import Progress
from llmplex._ratelimit import Pacer, estimate_tokens
from llmplex._request import resolve_call, validate_messages
from llmplex._streaming import CompletionStream
from llmplex.exceptions import AllModelsFailedError, BadRequestError
from llmplex.types import ModelResponse

if TYPE_CHECKING:
    from llmplex.client import AsyncClient

__all__ = [
    "DEFAULT_MAX_CONCURRENCY",
    "Driver",
    "batch_completion",
    "batch_completion_models",
    "batch_completion_models_all_responses",
    "iter_batch_completion",
    "race_metadata",
    "run_batch",
]

DEFAULT_MAX_CONCURRENCY = 100  # LiteLLM's max_workers default

Result = ModelResponse | Exception


# --- many prompts -> one model --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Driver:
    """What a many-prompts batch sends through: ``AsyncClient.completion`` or ``Router.acompletion``."""

    send: Callable[..., Awaitable[Any]]  # send(model, messages, **options)
    max_connections: int  # requests in flight beyond this would only queue in the connection pool
    check: Callable[[str, list[dict[str, Any]], dict[str, Any]], object]  # raises on bad input, before any request
    where: str = "batch_completion"  # how error messages name the function


def _client_driver(client: AsyncClient) -> Driver:
    config = client.config
    return Driver(client.completion, config.max_connections, lambda m, c, p: resolve_call(m, c, p, config))


@dataclass
class _Batch:
    """A validated ``batch_completion`` call."""

    send: Callable[..., Awaitable[Any]]
    model: str
    conversations: list[list[dict[str, Any]]]
    options: dict[str, Any]
    concurrency: int
    pacer: Pacer | None
    return_exceptions: bool
    progress: bool
    checkpoint: str | None

    async def run(self, deliver: Callable[[int, Result], None]) -> None:
        """Send every item not already in the checkpoint; ``deliver(index, result)`` as each finishes."""
        done: dict[int, ModelResponse] = {}
        checkpoint = None
        if self.checkpoint is not None:
            prints = [fingerprint(self.model, c) for c in self.conversations]
            checkpoint = await asyncio.to_thread(Checkpoint.open, self.checkpoint, prints)
            done = checkpoint.done
        total = len(self.conversations)
        bar = Progress(total, initial=len(done)) if self.progress else None
        try:
            for index, response in done.items():
                deliver(index, response)

            def finished(index: int, result: Result) -> None:
                if checkpoint is not None:
                    checkpoint.record(index, result)
                if bar is not None:
                    bar.update(not isinstance(result, Exception))
                if isinstance(result, Exception) and not self.return_exceptions:
                    raise result
                deliver(index, result)

            todo = range(total) if not done else [i for i in range(total) if i not in done]
            if todo:
                await bounded_map(
                    self._send,
                    todo,
                    concurrency=min(self.concurrency, len(todo)),
                    on_result=finished,
                    before=self._pace if self.pacer is not None else None,
                )
        finally:
            if bar is not None:
                bar.close()
            if checkpoint is not None:
                checkpoint.close()

    def _send(self, index: int) -> Any:
        return self.send(self.model, self.conversations[index], **self.options)

    async def _pace(self, index: int) -> None:
        assert self.pacer is not None
        tokens = 0
        if self.pacer.limits_tokens:
            budget = self.options.get("max_tokens") or self.options.get("max_completion_tokens")
            tokens = estimate_tokens(self.conversations[index], budget)
        await self.pacer.acquire(tokens)


def _plan(  # noqa: PLR0913
    driver: Driver,
    model: str,
    messages: Any,
    max_concurrency: int | None,
    max_workers: int | None,
    rpm: float | None,
    tpm: float | None,
    return_exceptions: bool,
    progress: bool,
    checkpoint: Any,
    params: dict[str, Any],
) -> _Batch:
    conversations = validate_conversations(messages)
    check_params(params, where=driver.where, allow_stream=False)
    params.pop("stream", None)
    for name, value in (("max_concurrency", max_concurrency), ("max_workers", max_workers)):
        check_positive(name, value, integer=True)
    if max_concurrency is not None and max_workers is not None and max_concurrency != max_workers:
        raise BadRequestError("max_workers is an alias of max_concurrency; pass one of them", param="max_workers")
    check_positive("rpm", rpm)
    check_positive("tpm", tpm)
    if conversations:  # resolve once: unknown model, missing key, bad params fail before any request
        driver.check(model, conversations[0], params)
    concurrency = max_concurrency or max_workers or DEFAULT_MAX_CONCURRENCY
    # requests beyond the connection pool would only queue inside it: cap at the pool size
    # (raise ClientConfig.max_connections to go higher)
    concurrency = min(concurrency, driver.max_connections)
    return _Batch(
        send=driver.send,
        model=model,
        conversations=conversations,
        options=params,
        concurrency=concurrency,
        pacer=Pacer(rpm, tpm) if rpm or tpm else None,
        return_exceptions=return_exceptions,
        progress=progress,
        checkpoint=None if checkpoint is None else str(checkpoint),
    )


async def batch_completion(  # noqa: PLR0913
    client: AsyncClient,
    model: str,
    messages: list[list[dict[str, Any]]],
    *,
    max_concurrency: int | None = None,
    max_workers: int | None = None,
    rpm: float | None = None,
    tpm: float | None = None,
    return_exceptions: bool = True,
    progress: bool = False,
    checkpoint: str | None = None,
    batch_api: bool = False,
    **params: Any,
) -> list[Any]:
    """One completion per conversation in ``messages``; results aligned with it.

    A failed item holds its exception (LiteLLM-compatible), or the first failure is raised and the
    rest cancelled with ``return_exceptions=False``. ``max_concurrency`` (alias ``max_workers``,
    default 100, capped at ``ClientConfig.max_connections``) bounds requests in flight; ``rpm`` /
    ``tpm`` pace starts evenly (tokens estimated from message text plus ``max_tokens``); retries
    honour ``retry-after``. ``progress=True`` shows a tqdm bar. ``checkpoint="out.jsonl"`` appends
    each finished item and skips recorded successes on a re-run (see ``_checkpoint``).

    ``batch_api=True``: one job on the provider's batch API instead (half price, results within 24 h;
    see ``llmplex.batches.job``); ``checkpoint`` then records the provider's batch ids.
    """
    if batch_api:
        return await _through_batch_api(
            client,
            model,
            messages,
            (max_concurrency, max_workers, rpm, tpm),
            return_exceptions,
            progress,
            checkpoint,
            params,
        )
    return await run_batch(
        _client_driver(client),
        model,
        messages,
        max_concurrency=max_concurrency,
        max_workers=max_workers,
        rpm=rpm,
        tpm=tpm,
        return_exceptions=return_exceptions,
        progress=progress,
        checkpoint=checkpoint,
        **params,
    )


async def run_batch(  # noqa: PLR0913
    driver: Driver,
    model: str,
    messages: list[list[dict[str, Any]]],
    *,
    max_concurrency: int | None = None,
    max_workers: int | None = None,
    rpm: float | None = None,
    tpm: float | None = None,
    return_exceptions: bool = True,
    progress: bool = False,
    checkpoint: str | None = None,
    **params: Any,
) -> list[Any]:
    """``batch_completion`` through any ``Driver`` (the SDK Router's many-prompts method uses this)."""
    plan = _plan(
        driver, model, messages, max_concurrency, max_workers, rpm, tpm, return_exceptions, progress, checkpoint, params
    )
    results: list[Any] = [None] * len(plan.conversations)
    await plan.run(results.__setitem__)
    return results


async def _through_batch_api(  # noqa: PLR0913
    client: AsyncClient,
    model: str,
    messages: list[list[dict[str, Any]]],
    pacing: tuple[Any, ...],
    return_exceptions: bool,
    progress: bool,
    checkpoint: str | None,
    params: dict[str, Any],
) -> list[Any]:
    if any(value is not None for value in pacing):
        raise BadRequestError(
            "max_concurrency, max_workers, rpm and tpm do not apply with batch_api=True: the provider schedules "
            "batch requests itself",
            param="batch_api",
        )
    from llmplex.batches.job import batch_completion_api

    return await batch_completion_api(
        client, model, messages, return_exceptions=return_exceptions, progress=progress, checkpoint=checkpoint, **params
    )


def iter_batch_completion(  # noqa: PLR0913
    client: AsyncClient,
    model: str,
    messages: list[list[dict[str, Any]]],
    *,
    max_concurrency: int | None = None,
    max_workers: int | None = None,
    rpm: float | None = None,
    tpm: float | None = None,
    return_exceptions: bool = True,
    progress: bool = False,
    checkpoint: str | None = None,
    **params: Any,
) -> AsyncIterator[tuple[int, Any]]:
    """Like ``batch_completion`` but yields ``(index, result)`` as each item finishes.

    Arguments are validated at once; requests start on the first ``__anext__``. Closing the
    iterator early cancels what is in flight.
    """
    plan = _plan(
        _client_driver(client),
        model,
        messages,
        max_concurrency,
        max_workers,
        rpm,
        tpm,
        return_exceptions,
        progress,
        checkpoint,
        params,
    )
    return _iterate(plan)


async def _iterate(plan: _Batch) -> AsyncGenerator[tuple[int, Any], None]:
    queue: asyncio.Queue[tuple[int, Any] | None] = asyncio.Queue()
    runner = asyncio.get_running_loop().create_task(plan.run(lambda i, r: queue.put_nowait((i, r))))
    runner.add_done_callback(lambda _: queue.put_nowait(None))
    try:
        while (item := await queue.get()) is not None:
            yield item
        await runner  # re-raise the run's own failure (return_exceptions=False, checkpoint I/O)
    finally:
        if not runner.done():
            runner.cancel()
            await asyncio.wait([runner])


# --- one prompt -> many models --------------------------------------------------------------------


def _prepare_models(
    client: AsyncClient, models: Any, deployments: Any, messages: Any, params: dict[str, Any], where: str
) -> list[ModelEntry]:
    params.pop("model_list", None)  # LiteLLM requires it with deployments= but never uses it
    if "model" in params:
        raise BadRequestError(f"{where} takes models=[...], not model=", param="model")
    validate_messages(messages)
    check_params(params, where=where)
    entries = model_entries(models, deployments, params)
    for entry in entries:  # unknown models, missing keys, bad params: fail before any request
        resolve_call(entry.model, messages, entry.options, client.config)
    return entries


async def batch_completion_models(
    client: AsyncClient,
    models: Any = None,
    messages: Any = None,
    *,
    deployments: Any = None,
    hedge_delay: float | Literal["auto"] | None = None,
    hedge_quantile: float | None = None,
    timeout: float | None = None,
    **params: Any,
) -> ModelResponse | CompletionStream:
    """Race ``models`` on one prompt: the first *successful* answer wins, the rest are cancelled at once.

    ``models`` holds model names or dicts of per-model settings (``{"model", "api_base", "api_key", ...}``);
    LiteLLM's ``deployments=[...]`` is the same. ``hedge_delay`` starts each next model only when no
    success arrived that long after the previous start (or at once when one fails);
    ``hedge_delay="auto"`` takes the ``hedge_quantile`` (default 0.9) of the first model's recent
    latencies on this client, or 0.5 s until 8 are known (see ``_latency``). ``timeout``
    bounds the whole race. With ``stream=True`` the race is won by the first content token and the
    winner's stream is returned with that chunk still queued. Race details are in
    ``hidden_params["race"]``; every model failing raises ``AllModelsFailedError``.
    """
    entries = _prepare_models(client, models, deployments, messages, params, "batch_completion_models")
    check_positive("timeout", timeout)
    stream = bool(params.get("stream"))
    hedge = hedge_plan(client, entries[0].model, hedge_delay, hedge_quantile, stream=stream)
    attempt = _open_first_token if stream else _complete
    factories = [functools.partial(attempt, client, e.model, messages, e.options) for e in entries]
    outcome = await race_first(
        [e.label for e in entries], factories, hedge_delay=hedge.delay, timeout=timeout, discard=_release
    )
    record_latencies(client, entries, outcome, hedge, stream=stream)
    value = outcome.value
    hidden = value.hidden_params
    hidden["race"] = {**race_metadata(outcome), **hedge.metadata()}
    hidden["model_label"] = outcome.winner
    return value


async def _complete(
    client: AsyncClient, model: str, messages: list[dict[str, Any]], options: dict[str, Any]
) -> ModelResponse | CompletionStream:
    return await client.completion(model, messages, **options)


async def _open_first_token(
    client: AsyncClient, model: str, messages: list[dict[str, Any]], options: dict[str, Any]
) -> ModelResponse | CompletionStream:
    stream = await client.completion(model, messages, **options)
    if not isinstance(stream, CompletionStream):
        return stream  # a mock response object: nothing to peek
    try:
        await stream.peek_first_content()
    except BaseException:
        stream.close()
        raise
    return stream


async def _release(value: ModelResponse | CompletionStream) -> None:
    if isinstance(value, CompletionStream):
        value.close()


def race_metadata(outcome: RaceOutcome[Any]) -> dict[str, Any]:
    """A race's story for ``hidden_params["race"]``: winner, and each attempt's status, start and latency."""
    attempts = [
        {
            "model": a.label,
            "status": a.status,
            "started_ms": None if a.started_at is None else round(a.started_at * 1000.0, 3),
            "latency_ms": None if a.latency_ms is None else round(a.latency_ms, 3),
            "error": None if a.error is None else str(a.error),
        }
        for a in outcome.attempts
    ]
    return {
        "winner": outcome.winner,
        "winner_index": outcome.winner_index,
        "attempts": attempts,
        "cancelled": [a.label for a in outcome.attempts if a.status == "cancelled"],
    }


async def batch_completion_models_all_responses(
    client: AsyncClient,
    models: Any = None,
    messages: Any = None,
    *,
    deployments: Any = None,
    return_exceptions: bool = False,
    **params: Any,
) -> list[Any]:
    """Send one prompt to every model in parallel; the answers in ``models`` order.

    By default only the successes are returned (LiteLLM-compatible); ``return_exceptions=True`` gives
    one slot per model with the exception in place of a failed answer. When every model fails,
    ``AllModelsFailedError`` is raised (its errors in ``models`` order).
    """
    where = "batch_completion_models_all_responses"
    entries = _prepare_models(client, models, deployments, messages, params, where)
    factories = [functools.partial(_complete, client, e.model, messages, e.options) for e in entries]
    results = await gather_settled(factories)
    errors = [r for r in results if isinstance(r, Exception)]
    if len(errors) == len(results):
        labels = ", ".join(e.label for e in entries)
        raise AllModelsFailedError(f"all {len(errors)} models failed ({labels})", errors)
    if return_exceptions:
        return results
    return [r for r in results if not isinstance(r, BaseException)]
