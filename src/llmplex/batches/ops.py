"""LiteLLM's file and batch functions over every provider's batch API (the I/O; mappings live in ``*_wire``).

Each function takes the ``AsyncClient`` first (its transport, config and retries) and LiteLLM's
arguments; ``custom_llm_provider`` picks the provider (default ``openai``), and ``api_key``,
``api_base``, ``api_version``, ``timeout``, ``num_retries``, ``extra_headers`` work as in
``completion``. Providers whose batch API takes requests inline (Anthropic, Gemini) keep input files
locally (see ``local_files``) and expose results as ``<batch id>:output`` / ``<batch id>:errors``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson

from llmplex._request import _endpoint, _split_options
from llmplex.batches.local_files import LocalFiles
from llmplex.batches.registry import batch_wire
from llmplex.batches.types import Batch, FileContent, FileDeleted, FileObject, ListPage
from llmplex.batches.wire import BatchWire, InlineRequest, split_result_file_id
from llmplex.exceptions import BadRequestError
from llmplex.providers import get_adapter
from llmplex.providers.base import CompletionRequest, Endpoint, HTTPRequest, ProviderAdapter

if TYPE_CHECKING:
    from llmplex.client import AsyncClient

__all__ = [
    "BatchCall",
    "FileInput",
    "batch_call",
    "cancel_batch",
    "create_batch",
    "create_file",
    "file_content",
    "file_delete",
    "file_list",
    "file_retrieve",
    "list_batches",
    "parse_input_lines",
    "result_lines",
    "retrieve_batch",
    "submit_lines",
]

CHAT_URL = "/v1/chat/completions"
FileInput = bytes | str | os.PathLike[str] | IO[bytes] | tuple[str, bytes]
_BATCH_MODEL = "batch"  # what errors name as the model of a file / batch call


@dataclass(slots=True)
class BatchCall:
    """A provider's batch API, resolved for one call: mapping, endpoint, transport settings."""

    client: AsyncClient
    wire: BatchWire
    adapter: ProviderAdapter
    endpoint: Endpoint
    timeout: float
    num_retries: int
    files: LocalFiles

    async def json(self, request: HTTPRequest) -> Any:
        transport = self.client._transport
        _, body = await transport.request_json(
            request, self.adapter, _BATCH_MODEL, timeout=self.timeout, num_retries=self.num_retries
        )
        return body

    async def raw(self, request: HTTPRequest) -> bytes:
        transport = self.client._transport
        return await transport.request_bytes(
            request, self.adapter, _BATCH_MODEL, timeout=self.timeout, num_retries=self.num_retries
        )


def batch_call(client: AsyncClient, custom_llm_provider: str | None, options: dict[str, Any]) -> BatchCall:
    wire = batch_wire(custom_llm_provider or "openai")
    adapter = get_adapter(wire.name)
    config = client.config
    endpoint = _endpoint(adapter, _BATCH_MODEL, options, config)
    timeout = float(options.get("timeout") or options.get("request_timeout") or config.timeout)
    retries = options.get("num_retries", options.get("max_retries"))
    directory = options.get("files_dir") or config.lookup(("LLMPLEX_FILES_DIR",)) or "~/.cache/llmplex/files"
    num_retries = config.num_retries if retries is None else int(retries)
    return BatchCall(client, wire, adapter, endpoint, timeout, max(num_retries, 0), LocalFiles(directory))


async def _read_input(file: FileInput) -> tuple[str, bytes]:
    if isinstance(file, tuple):
        return file[0], file[1]
    if isinstance(file, bytes):
        return "batch.jsonl", file
    if isinstance(file, (str, os.PathLike)):
        path = Path(file)
        return path.name, await asyncio.to_thread(path.read_bytes)
    data = await asyncio.to_thread(file.read)
    return os.path.basename(str(getattr(file, "name", "batch.jsonl"))), data


# --- files ----------------------------------------------------------------------------------------


async def create_file(
    client: AsyncClient, file: FileInput, purpose: str = "batch", custom_llm_provider: str = "openai", **options: Any
) -> FileObject:
    call = batch_call(client, custom_llm_provider, options)
    filename, data = await _read_input(file)
    if not call.wire.native_files:
        if purpose != "batch":
            raise BadRequestError(f"{call.wire.name} keeps only purpose='batch' files", param="purpose")
        parse_input_lines(data)  # refuse a bad file now rather than at create_batch
        return await asyncio.to_thread(call.files.save, data, filename, purpose)
    body = await call.json(call.wire.upload_file(call.endpoint, filename, data, purpose))
    return FileObject.model_validate(body)


async def file_retrieve(
    client: AsyncClient, file_id: str, custom_llm_provider: str = "openai", **options: Any
) -> FileObject:
    call = batch_call(client, custom_llm_provider, options)
    if not call.wire.native_files:
        return await asyncio.to_thread(call.files.get, file_id)
    return FileObject.model_validate(await call.json(call.wire.get_file(call.endpoint, file_id)))


async def file_content(
    client: AsyncClient, file_id: str, custom_llm_provider: str = "openai", **options: Any
) -> FileContent:
    call = batch_call(client, custom_llm_provider, options)
    if call.wire.native_files:
        return FileContent(await call.raw(call.wire.file_content(call.endpoint, file_id)))
    if file_id.startswith("file-llmplex-"):
        return FileContent(await asyncio.to_thread(call.files.read, file_id))
    batch_id, errors = split_result_file_id(file_id)
    raw = await call.raw(call.wire.results_request(call.endpoint, batch_id))
    lines = call.wire.result_lines(raw, errors)
    return FileContent(b"".join(orjson.dumps(line) + b"\n" for line in lines))


async def file_delete(
    client: AsyncClient, file_id: str, custom_llm_provider: str = "openai", **options: Any
) -> FileDeleted:
    call = batch_call(client, custom_llm_provider, options)
    if not call.wire.native_files:
        await asyncio.to_thread(call.files.delete, file_id)
        return FileDeleted(id=file_id)
    return FileDeleted.model_validate(await call.json(call.wire.delete_file(call.endpoint, file_id)))


async def file_list(
    client: AsyncClient, purpose: str | None = None, custom_llm_provider: str = "openai", **options: Any
) -> ListPage[FileObject]:
    call = batch_call(client, custom_llm_provider, options)
    if not call.wire.native_files:
        return ListPage[FileObject](data=await asyncio.to_thread(call.files.list, purpose))
    return ListPage[FileObject].model_validate(await call.json(call.wire.list_files(call.endpoint, purpose)))


# --- batches --------------------------------------------------------------------------------------


async def create_batch(
    client: AsyncClient,
    completion_window: str = "24h",
    endpoint: str = CHAT_URL,
    input_file_id: str = "",
    custom_llm_provider: str = "openai",
    metadata: dict[str, str] | None = None,
    **options: Any,
) -> Batch:
    call = batch_call(client, custom_llm_provider, options)
    if completion_window != "24h":
        raise BadRequestError("completion_window must be '24h'", param="completion_window")
    if call.wire.native_files:
        request = call.wire.create_from_file(call.endpoint, input_file_id, endpoint, completion_window, metadata)
        return call.wire.parse_batch(await call.json(request))
    if endpoint != CHAT_URL:
        raise BadRequestError(f"{call.wire.name} batches run {CHAT_URL} only", param="endpoint")
    data = await asyncio.to_thread(call.files.read, input_file_id)
    batch = await submit_lines(call, parse_input_lines(data), metadata)
    batch.input_file_id = input_file_id
    return batch


async def retrieve_batch(
    client: AsyncClient, batch_id: str, custom_llm_provider: str = "openai", **options: Any
) -> Batch:
    call = batch_call(client, custom_llm_provider, options)
    return call.wire.parse_batch(await call.json(call.wire.get_batch(call.endpoint, batch_id)))


async def cancel_batch(
    client: AsyncClient, batch_id: str, custom_llm_provider: str = "openai", **options: Any
) -> Batch:
    call = batch_call(client, custom_llm_provider, options)
    body = await call.json(call.wire.cancel_batch(call.endpoint, batch_id))
    if not body:  # Gemini answers an empty object: read the batch back
        body = await call.json(call.wire.get_batch(call.endpoint, batch_id))
    return call.wire.parse_batch(body)


async def list_batches(
    client: AsyncClient,
    after: str | None = None,
    limit: int | None = None,
    custom_llm_provider: str = "openai",
    **options: Any,
) -> ListPage[Batch]:
    call = batch_call(client, custom_llm_provider, options)
    return call.wire.parse_batch_list(await call.json(call.wire.list_batches(call.endpoint, after, limit)))


# --- lines ----------------------------------------------------------------------------------------


def parse_input_lines(data: bytes) -> list[dict[str, Any]]:
    """OpenAI batch input lines, checked one by one; a bad line is a ``BadRequestError`` naming its number."""
    lines = []
    for number, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise BadRequestError(f"line {number}: not valid JSON", param="file") from None
        body = line.get("body") if isinstance(line, dict) else None
        if not isinstance(line, dict) or not isinstance(line.get("custom_id"), str) or not isinstance(body, dict):
            raise BadRequestError(f"line {number}: needs a string custom_id and an object body", param="file")
        if line.get("url", CHAT_URL) != CHAT_URL or line.get("method", "POST") != "POST":
            raise BadRequestError(f"line {number}: only POST {CHAT_URL} is supported", param="file")
        if not isinstance(body.get("model"), str) or not isinstance(body.get("messages"), list):
            raise BadRequestError(f"line {number}: body needs model and messages", param="file")
        lines.append(line)
    if not lines:
        raise BadRequestError("the file holds no request lines", param="file")
    return lines


def _inline(call: BatchCall, lines: Sequence[dict[str, Any]]) -> list[InlineRequest]:
    requests = []
    drop = call.client.config.drop_params
    for line in lines:
        body = dict(line["body"])
        model, messages = str(body.pop("model")), body.pop("messages")
        body.pop("stream", None)
        params, extra = _split_options(call.adapter, model, body, drop)
        model = model.split("/", 1)[1] if model.startswith(call.wire.name + "/") else model
        request = CompletionRequest(model=model, messages=messages, params=params, extra=extra)
        requests.append(InlineRequest(line["custom_id"], request))
    return requests


async def submit_lines(call: BatchCall, lines: Sequence[dict[str, Any]], metadata: dict[str, str] | None) -> Batch:
    """One provider batch for ``lines`` (OpenAI input lines): upload + create, or one inline create."""
    if call.wire.native_files:
        data = b"".join(orjson.dumps(line) + b"\n" for line in lines)
        uploaded = await call.json(call.wire.upload_file(call.endpoint, "llmplex-batch.jsonl", data, "batch"))
        request = call.wire.create_from_file(call.endpoint, uploaded["id"], CHAT_URL, "24h", metadata)
    else:
        request = call.wire.create_inline(call.endpoint, _inline(call, lines))
    return call.wire.parse_batch(await call.json(request))


async def result_lines(call: BatchCall, batch: Batch) -> list[dict[str, Any]]:
    """Every output and error line of an ended batch, in OpenAI's output line shape."""
    if not call.wire.native_files:
        raw = await call.raw(call.wire.results_request(call.endpoint, batch.id))
        return call.wire.result_lines(raw, False) + call.wire.result_lines(raw, True)
    lines: list[dict[str, Any]] = []
    for file_id in (batch.output_file_id, batch.error_file_id):
        if file_id:
            content = FileContent(await call.raw(call.wire.file_content(call.endpoint, file_id)))
            lines.extend(content.json_lines())
    return lines
