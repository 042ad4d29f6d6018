"""``batch_completion(..., batch_api=True)`` and ``submit_batch_completion``: many prompts through a provider's
batch API (half price), as one ``BatchJob``.

The prompts become OpenAI batch lines (``custom_id`` = the prompt's index), split into several
provider batches when they pass the provider's limits (requests or bytes per batch). The job's
``id`` names the provider and its batches, so ``BatchJob.load(id)`` finds them again; with
``checkpoint=path`` the ids are also written to a small JSON file after each submission, and a
re-run with the same inputs resumes polling those batches instead of submitting again.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from llmplex._batch_inputs import validate_conversations
from llmplex._progress import Progress
from llmplex._request import CALL_SETTINGS, resolve_call
from llmplex.batches.ops import BatchCall, batch_call, result_lines, submit_lines
from llmplex.batches.types import Batch
from llmplex.cost import HiddenParams
from llmplex.exceptions import APIError, BadRequestError, Timeout, status_error_class
from llmplex.types import ModelResponse

if TYPE_CHECKING:
    from llmplex.client import AsyncClient

__all__ = ["BatchJob", "JobStatus", "batch_completion_api", "split_lines", "submit_batch_completion"]

_ID_PREFIX = "llmplex-batch"
_SETTINGS = CALL_SETTINGS | {"files_dir"}


@dataclass(slots=True)
class JobStatus:
    """The job at one poll: OpenAI's status words, counts summed over its provider batches."""

    status: str
    total: int
    completed: int
    failed: int
    batches: list[Batch] = field(default_factory=list)

    @property
    def ended(self) -> bool:
        return all(b.ended for b in self.batches)


def _aggregate(batches: list[Batch], total: int) -> JobStatus:
    statuses = {b.status for b in batches}
    if all(b.ended for b in batches):
        status = next((s for s in ("failed", "expired", "cancelled") if s in statuses), "completed")
    elif "cancelling" in statuses:
        status = "cancelling"
    else:
        status = "in_progress"
    completed = sum(b.request_counts.completed for b in batches)
    failed = sum(b.request_counts.failed for b in batches)
    return JobStatus(status, total, completed, failed, batches)


class BatchJob:
    """A handle on provider batches running one ``batch_completion``; reload it with ``BatchJob.load``."""

    def __init__(self, call: BatchCall, model: str, total: int, batch_ids: Sequence[str]) -> None:
        self._call = call
        self.model = model
        self.total = total
        self.batch_ids = list(batch_ids)

    @property
    def provider(self) -> str:
        return self._call.wire.name

    @property
    def id(self) -> str:
        return f"{_ID_PREFIX}:{self.provider}:{self.total}:{self.model}:{','.join(self.batch_ids)}"

    @classmethod
    def load(cls, client: AsyncClient, job_id_or_checkpoint: str | os.PathLike[str], **options: Any) -> BatchJob:
        """The job named by its ``id``, or recorded in a checkpoint file (pass the same keys / api_base)."""
        text = os.fspath(job_id_or_checkpoint)
        if not text.startswith(_ID_PREFIX + ":"):
            with open(text, "rb") as f:
                text = orjson.loads(f.read())["job_id"]
        try:
            _, provider, total, rest = text.split(":", 3)
            model, _, ids = rest.rpartition(":")
        except ValueError:
            raise BadRequestError(f"not a batch job id: {text[:80]!r}", param="job_id") from None
        call = batch_call(client, provider, options)
        return cls(call, model, int(total), [i for i in ids.split(",") if i])

    async def status(self) -> JobStatus:
        batches = await asyncio.gather(*(self._retrieve(b) for b in self.batch_ids))
        return _aggregate(list(batches), self.total)

    async def _retrieve(self, batch_id: str) -> Batch:
        call = self._call
        return call.wire.parse_batch(await call.json(call.wire.get_batch(call.endpoint, batch_id)))

    async def wait(
        self,
        *,
        poll_interval: float = 1.0,
        max_poll_interval: float = 60.0,
        timeout: float | None = None,
        progress: bool = False,
    ) -> JobStatus:
        """Poll (interval growing 1.5x up to ``max_poll_interval``) until every provider batch has ended."""
        deadline = None if timeout is None else time.monotonic() + timeout
        bar = Progress(self.total, desc="llmplex batch api") if progress else None
        shown = 0
        interval = poll_interval
        try:
            while True:
                state = await self.status()
                if bar is not None:
                    for _ in range(state.completed + state.failed - shown):
                        bar.update(True)
                    shown = max(shown, state.completed + state.failed)
                if state.ended:
                    return state
                if deadline is not None and time.monotonic() + interval > deadline:
                    raise Timeout(f"batch job still {state.status} after {timeout:g}s", provider=self.provider)
                await asyncio.sleep(interval)
                interval = min(interval * 1.5, max_poll_interval)
        finally:
            if bar is not None:
                bar.close()

    async def results(self) -> list[ModelResponse | Exception]:
        """One result per prompt, in order; a failed or never-run prompt holds its exception."""
        state = await self.status()
        out: list[ModelResponse | Exception | None] = [None] * self.total
        for batch in state.batches:
            for line in await result_lines(self._call, batch):
                index = int(line["custom_id"])
                if 0 <= index < self.total:
                    out[index] = self._result(line)
        for index, where in _unanswered(out, state):
            out[index] = APIError(
                f"no result: provider batch {where} ended as {state.status} before this request ran",
                provider=self.provider,
                model=self.model,
            )
        return [r for r in out if r is not None]

    def _result(self, line: dict[str, Any]) -> ModelResponse | Exception:
        response = line.get("response") or {}
        body = response.get("body")
        status = int(response.get("status_code") or 0)
        if 200 <= status < 300 and isinstance(body, dict):
            result = ModelResponse.model_validate(body)
            hidden = HiddenParams(custom_llm_provider=self.provider, model=self.model, batch_api=True)
            hidden.bind_response(result)
            result._hidden_params = hidden
            return result
        error = (body or {}).get("error") if isinstance(body, dict) else None
        error = error or line.get("error") or {}
        message = str(error.get("message") or f"request failed with status {status}")
        cls = status_error_class(status) if status else APIError
        return cls(message, provider=self.provider, model=self.model, status_code=status or None, body=body)

    async def cancel(self) -> JobStatus:
        call = self._call
        for batch_id in self.batch_ids:
            await call.json(call.wire.cancel_batch(call.endpoint, batch_id))
        return await self.status()


def _unanswered(out: list[Any], state: JobStatus) -> list[tuple[int, str]]:
    where = ",".join(b.id for b in state.batches)
    return [(index, where) for index, result in enumerate(out) if result is None]


def _fingerprint(model: str, conversations: list[list[dict[str, Any]]], params: dict[str, Any]) -> str:
    digest = hashlib.blake2b(digest_size=16)
    digest.update(orjson.dumps([model, params], option=orjson.OPT_SORT_KEYS, default=str))
    for conversation in conversations:
        digest.update(orjson.dumps(conversation, option=orjson.OPT_SORT_KEYS, default=str))
    return digest.hexdigest()


def split_lines(lines: list[dict[str, Any]], max_requests: int, max_bytes: int) -> list[tuple[int, int]]:
    """``[start, end)`` ranges of ``lines`` within the provider's per-batch limits."""
    ranges = []
    start, size = 0, 0
    for index, line in enumerate(lines):
        length = len(orjson.dumps(line)) + 1
        if index > start and (index - start >= max_requests or size + length > max_bytes):
            ranges.append((start, index))
            start, size = index, 0
        size += length
    if start < len(lines):
        ranges.append((start, len(lines)))
    return ranges


def _write_checkpoint(path: str, fingerprint: str, job: BatchJob) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(orjson.dumps({"fingerprint": fingerprint, "job_id": job.id}))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)  # atomic: a crash leaves the old file or the new one, never half of one


def _read_checkpoint(path: str, fingerprint: str) -> str | None:
    try:
        with open(path, "rb") as f:
            saved = orjson.loads(f.read())
    except FileNotFoundError:
        return None
    if saved.get("fingerprint") != fingerprint:
        raise BadRequestError(
            f"checkpoint {path} was written for different inputs; delete it or pass another path", param="checkpoint"
        )
    return str(saved["job_id"])


async def submit_batch_completion(
    client: AsyncClient,
    model: str,
    messages: list[list[dict[str, Any]]],
    *,
    checkpoint: str | os.PathLike[str] | None = None,
    metadata: dict[str, str] | None = None,
    **params: Any,
) -> BatchJob:
    """Submit every prompt to the provider's batch API and return the job without waiting for it."""
    conversations = validate_conversations(messages)
    if not conversations:
        raise BadRequestError("messages holds no conversations", param="messages")
    settings = {k: v for k, v in params.items() if k in _SETTINGS}
    body_params = {k: v for k, v in params.items() if k not in _SETTINGS and v is not None}
    body_params.pop("stream", None)
    extra = body_params.pop("extra_body", None) or {}
    # a bad model, key or parameter fails now, before anything is uploaded
    resolved = resolve_call(
        model, conversations[0], {k: v for k, v in params.items() if k != "files_dir"}, client.config
    )
    call = batch_call(client, resolved.adapter.name, settings)
    model_id = resolved.request.model
    lines = [
        {
            "custom_id": str(index),
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": model_id, "messages": conversation, **body_params, **extra},
        }
        for index, conversation in enumerate(conversations)
    ]
    path = None if checkpoint is None else os.fspath(checkpoint)
    fingerprint = _fingerprint(model, conversations, body_params)
    job = BatchJob(call, model_id, len(lines), [])
    if path is not None:
        saved = await asyncio.to_thread(_read_checkpoint, path, fingerprint)
        if saved is not None:
            job = BatchJob.load(client, saved, **settings)
    ranges = split_lines(lines, call.wire.max_requests, call.wire.max_bytes)
    for start, end in ranges[len(job.batch_ids) :]:  # after a crash mid-submission, only the rest
        batch = await submit_lines(call, lines[start:end], metadata)
        job.batch_ids.append(batch.id)
        if path is not None:
            await asyncio.to_thread(_write_checkpoint, path, fingerprint, job)
    return job


async def batch_completion_api(  # noqa: PLR0913
    client: AsyncClient,
    model: str,
    messages: list[list[dict[str, Any]]],
    *,
    return_exceptions: bool = True,
    progress: bool = False,
    checkpoint: str | os.PathLike[str] | None = None,
    poll_interval: float = 1.0,
    max_poll_interval: float = 60.0,
    wait_timeout: float | None = None,
    **params: Any,
) -> list[Any]:
    """``batch_completion(..., batch_api=True)``: submit (or resume), wait, return results aligned with messages."""
    job = await submit_batch_completion(client, model, messages, checkpoint=checkpoint, **params)
    await job.wait(
        poll_interval=poll_interval, max_poll_interval=max_poll_interval, timeout=wait_timeout, progress=progress
    )
    results = await job.results()
    if not return_exceptions:
        for result in results:
            if isinstance(result, Exception):
                raise result
    return results
