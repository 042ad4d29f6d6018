"""``embedding``: one input list -> one model (split into parts that fit the provider, run concurrently, put
back in input order), or -> several models (``model="a, b"`` or a list: one response per model).

``AsyncClient.embedding`` delegates here. Parts run under ``max_concurrency`` (default 100, capped at the
connection pool) and ``rpm`` / ``tpm`` pacing (``_ratelimit``); each retries like any request. One part
failing fails the call (the other parts are cancelled); with ``checkpoint="parts.jsonl"`` every finished part
is recorded first, so a re-run sends only the parts not yet done. ``progress=True`` shows a bar of parts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from llmplex._batch_inputs import check_positive
from llmplex._checkpoint import Checkpoint, fingerprint
from llmplex._concurrency import bounded_map, gather_settled
from llmplex._embedding_call import (
    EmbeddingCall,
    estimate_input_tokens,
    floats_to_base64,
    normalize_input,
    resolve_embedding,
)
from llmplex._progress import Progress
from llmplex._ratelimit import Pacer
from llmplex.cost import HiddenParams
from llmplex.endpoint_types import EmbeddingResponse
from llmplex.exceptions import AllModelsFailedError, APIError, BadRequestError

if TYPE_CHECKING:
    from llmplex.client import AsyncClient

__all__ = ["DEFAULT_MAX_CONCURRENCY", "embedding", "model_list"]

DEFAULT_MAX_CONCURRENCY = 100


def model_list(model: Any) -> list[str]:
    """``"a, b"`` or ``["a", "b"]`` -> the model strings; a single name -> one item."""
    if isinstance(model, str):
        names = [m.strip() for m in model.split(",")] if "," in model else [model]
    elif isinstance(model, list) and model and all(isinstance(m, str) for m in model):
        names = [m.strip() for m in model]
    else:
        raise BadRequestError("model must be a model name, a comma-separated list or a list of names", param="model")
    if not all(names):
        raise BadRequestError(f"model {model!r} has an empty name in it", param="model")
    return names


async def embedding(  # noqa: PLR0913
    client: AsyncClient,
    model: str | list[str],
    input: Any,
    *,
    max_concurrency: int | None = None,
    rpm: float | None = None,
    tpm: float | None = None,
    progress: bool = False,
    checkpoint: str | None = None,
    return_exceptions: bool = False,
    **options: Any,
) -> EmbeddingResponse | list[Any]:
    """Embeddings of ``input``; several models give a list, one response (or exception) per model."""
    models = model_list(model)
    inputs, token_arrays = normalize_input(input)
    check_positive("max_concurrency", max_concurrency, integer=True)
    check_positive("rpm", rpm)
    check_positive("tpm", tpm)
    calls = [resolve_embedding(m, inputs, token_arrays, options, client.config) for m in models]
    concurrency = min(max_concurrency or DEFAULT_MAX_CONCURRENCY, client.config.max_connections)
    if len(calls) == 1:
        pacer = Pacer(rpm, tpm) if rpm or tpm else None
        return await _Run(client, calls[0], concurrency, pacer, progress, checkpoint).run()
    if checkpoint is not None:
        raise BadRequestError("checkpoint= takes one model; run each model with its own file", param="checkpoint")
    runs = [_Run(client, call, concurrency, Pacer(rpm, tpm) if rpm or tpm else None, progress, None) for call in calls]
    results = await gather_settled([run.run for run in runs])
    errors = [r for r in results if isinstance(r, Exception)]
    if len(errors) == len(results):
        raise AllModelsFailedError(f"all {len(errors)} models failed ({', '.join(models)})", errors)
    if errors and not return_exceptions:
        raise errors[0]
    return results


class _Part:
    """One part's answer; ``model_dump`` / ``from_dict`` are its checkpoint line (see ``_checkpoint``)."""

    __slots__ = ("model", "tokens", "vectors")

    def __init__(self, vectors: list[Any], tokens: int, model: str) -> None:
        self.vectors = vectors
        self.tokens = tokens
        self.model = model

    def model_dump(self) -> dict[str, Any]:
        return {"vectors": self.vectors, "tokens": self.tokens, "model": self.model}

    @classmethod
    def from_dict(cls, body: Any) -> _Part:
        if not isinstance(body, dict) or not isinstance(body.get("vectors"), list):
            raise BadRequestError("checkpoint line is not an embedding part", param="checkpoint")
        return cls(body["vectors"], int(body.get("tokens") or 0), str(body.get("model") or ""))


class _Run:
    """One model's parts: sent, checkpointed, reassembled."""

    def __init__(
        self,
        client: AsyncClient,
        call: EmbeddingCall,
        concurrency: int,
        pacer: Pacer | None,
        progress: bool,
        checkpoint: str | None,
    ) -> None:
        self.client = client
        self.call = call
        self.concurrency = concurrency
        self.pacer = pacer
        self.progress = progress
        self.checkpoint = checkpoint

    async def run(self) -> EmbeddingResponse:
        call = self.call
        count = len(call.parts)
        if count == 1 and self.checkpoint is None and not self.progress and self.pacer is None:
            started = time.perf_counter()  # one request: no worker pool, no bookkeeping
            return self._assemble([await self._send(0)], started)
        results: list[_Part | None] = [None] * count
        checkpoint = None
        started = time.perf_counter()
        if self.checkpoint is not None:
            prints = [fingerprint(call.label, call.inputs[s:e]) for s, e in call.parts]
            checkpoint = await asyncio.to_thread(Checkpoint.open, self.checkpoint, prints, _Part.from_dict)
            for index, part in checkpoint.done.items():
                results[index] = part
        bar = Progress(count, initial=count - results.count(None), desc="llmplex embedding") if self.progress else None
        try:

            def finished(index: int, result: _Part | Exception) -> None:
                # a failure is recorded, then raised: bounded_map cancels the other parts
                if checkpoint is not None:
                    checkpoint.record(index, result)
                if bar is not None:
                    bar.update(not isinstance(result, Exception))
                if isinstance(result, Exception):
                    raise result
                results[index] = result

            todo = [i for i in range(count) if results[i] is None]
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
        return self._assemble([r for r in results if r is not None], started)

    async def _pace(self, index: int) -> None:
        assert self.pacer is not None
        await self.pacer.acquire(self.call.part_tokens(index) if self.pacer.limits_tokens else 0)

    async def _send(self, index: int) -> _Part:
        call = self.call
        adapter = call.adapter
        request = call.part_request(index)
        try:
            _, body = await self.client.send_json(
                adapter.build_request(request, call.endpoint),
                adapter.chat,
                call.model,
                timeout=call.timeout,
                num_retries=call.num_retries,
                # 2,048 inputs x 3,072 floats is ~135 MB of pretty-printed JSON, past the chat cap
                max_bytes=self.client.config.max_embedding_response_bytes,
            )
            parsed = adapter.parse_response(body, request)
        except APIError as exc:
            if exc.model is None:
                exc.model = call.model
            raise
        vectors = parsed.vectors
        if call.base64_locally:
            vectors = [floats_to_base64(v) for v in vectors]
        tokens = parsed.prompt_tokens
        if tokens is None:  # the provider reports none (Gemini): the estimate stands in
            tokens = sum(estimate_input_tokens(item) for item in request.inputs)
        named = body.get("model") if isinstance(body, dict) else None
        return _Part(vectors, tokens, named if isinstance(named, str) else call.model)

    def _assemble(self, parts: list[_Part], started: float) -> EmbeddingResponse:
        call = self.call
        vectors = [vector for part in parts for vector in part.vectors]
        tokens = sum(part.tokens for part in parts)
        response = EmbeddingResponse.build(parts[0].model or call.model, vectors, tokens)
        hidden = HiddenParams({"custom_llm_provider": call.adapter.name, "model": call.model})
        hidden["api_base"] = call.endpoint.base_url
        hidden["response_ms"] = (time.perf_counter() - started) * 1000.0
        hidden["parts"] = len(call.parts)
        hidden.bind(call.model, tokens, 0)
        response._hidden_params = hidden
        return response


def embedding_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments a caller may forward unchanged (LiteLLM passes ``aembedding`` and friends)."""
    return {k: v for k, v in options.items() if k not in ("aembedding", "litellm_call_id", "logger_fn", "caching")}
