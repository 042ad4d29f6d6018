"""OpenAI's ``/v1/files`` and ``/v1/batches`` on the proxy (the openai SDK's ``client.files`` / ``client.batches``).

Every provider works: the lines run through the Router (see ``llmplex.batches.executor``). Uploads
stream to disk and are checked line by line; a bad line, an unknown model, a wrong ``purpose`` or
``completion_window`` and an oversized file are OpenAI-format 400s (with the line number where one
applies); a database that cannot be reached is a 503 here while chat keeps serving.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.routing import Route

from llmplex.batches.input_file import MAX_FILE_BYTES, iter_lines, store_upload
from llmplex.batches.result_file import render_page
from llmplex.exceptions import BadRequestError
from llmplex.proxy.batch_service import BatchService
from llmplex.proxy.disconnect import ClientDisconnected
from llmplex.proxy.endpoint_common import PRINCIPAL_SCOPE_KEY, principal_of
from llmplex.proxy.errors import ProxyError, error_response
from llmplex.proxy.native_batches import native_owner
from llmplex.proxy.request import read_body
from llmplex.proxy.routes import state_of

__all__ = ["batch_routes"]

_JSON = "application/json"
_ENDPOINT = "/v1/chat/completions"
_WINDOW = "24h"
_WINDOW_SECONDS = 24 * 3600.0
_MAX_CREATE_BODY = 64 * 1024  # a create request is a file id, a window and a little metadata

Handler = Callable[[Request], Awaitable[Response]]


def _json(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type=_JSON)


def _guarded(handler: Handler) -> Handler:
    """Auth first; every failure an OpenAI-shaped error (database outage: 503)."""

    async def endpoint(request: Request) -> Response:
        try:
            request.scope[PRINCIPAL_SCOPE_KEY] = state_of(request).auth.check(request.headers)
            return await handler(request)
        except ClientDisconnected:
            return Response(status_code=499)  # nobody left to answer (nginx's code, as the chat route does)
        except Exception as exc:
            if _is_outage(exc):
                exc = ProxyError(503, "batch jobs are unavailable: the database cannot be reached")
            return error_response(exc)

    return endpoint


def _is_outage(exc: Exception) -> bool:
    # the store module is imported only once a database is opened; before that no outage can occur
    store = sys.modules.get("llmplex.store.store")
    return store is not None and isinstance(exc, store.StoreUnavailable)


def _service(request: Request) -> BatchService:
    service = state_of(request).batches
    if service is None:
        raise ProxyError(503, "batch jobs are not available in this proxy", type="service_unavailable")
    return service


def _not_found(kind: str, ident: str) -> ProxyError:
    return ProxyError(404, f"No such {kind}: {ident}", type="invalid_request_error", param="id")


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit", "20")
    if not raw.isdigit() or not 1 <= int(raw) <= 10_000:
        raise ProxyError(400, "limit must be an integer between 1 and 10000", param="limit")
    return int(raw)


# --- files ----------------------------------------------------------------------------------------


def _file_object(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "object": "file",
        "bytes": row["bytes"],
        "created_at": int(row["created_at"]),
        "filename": row["filename"],
        "purpose": row["purpose"],
        "status": "processed",
        "status_details": None,
        "expires_at": None,
    }


async def upload_file(request: Request) -> Response:
    service = _service(request)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_FILE_BYTES + 65536:
        raise BadRequestError(f"File too large: batch input files are limited to {MAX_FILE_BYTES} bytes", param="file")
    jobs = await service.ready()
    async with request.form(max_files=1, max_fields=4) as form:
        purpose, upload = form.get("purpose"), form.get("file")
        if purpose != "batch":
            raise ProxyError(
                400, f"purpose must be 'batch' (got {purpose!r}): only batch input files are kept", param="purpose"
            )
        if not isinstance(upload, UploadFile):
            raise ProxyError(400, "'file' is a required multipart field", param="file")
        file_id = "file-" + os.urandom(12).hex()
        dest = service.files_dir / f"{file_id}.jsonl"
        size, lines = await asyncio.to_thread(store_upload, upload.file, dest)
        row = {
            "id": file_id,
            "purpose": "batch",
            "filename": (upload.filename or "batch.jsonl")[:500],
            "bytes": size,
            "created_at": time.time(),
            "path": str(dest),
            "kind": "upload",
            "lines": lines,
        }
    try:
        await jobs.add_file(row)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return _json(_file_object(row))


async def list_files(request: Request) -> Response:
    jobs = await _service(request).ready()
    limit = _limit(request)
    rows = await jobs.list_files(request.query_params.get("purpose"), request.query_params.get("after"), limit)
    return _json(_list([_file_object(r) for r in rows[:limit]], len(rows) > limit))


async def retrieve_file(request: Request) -> Response:
    jobs = await _service(request).ready()
    row = await jobs.get_file(request.path_params["file_id"])
    if row is None:
        raise _not_found("File", request.path_params["file_id"])
    return _json(_file_object(row))


async def delete_file(request: Request) -> Response:
    jobs = await _service(request).ready()
    row = await jobs.delete_file(request.path_params["file_id"])
    if row is None:
        raise _not_found("File", request.path_params["file_id"])
    if row["path"]:
        await asyncio.to_thread(Path(row["path"]).unlink, missing_ok=True)
    return _json({"id": row["id"], "object": "file", "deleted": True})


async def file_content(request: Request) -> Response:
    jobs = await _service(request).ready()
    row = await jobs.get_file(request.path_params["file_id"])
    if row is None:
        raise _not_found("File", request.path_params["file_id"])
    if row["path"]:
        return FileResponse(row["path"], media_type="application/octet-stream")
    batch = await jobs.get_batch(row["batch_id"])
    expired = batch is not None and batch["status"] == "expired"
    pages = jobs.result_pages(row["batch_id"], row["kind"] == "errors", expired and row["kind"] == "errors")
    return StreamingResponse(_result_lines(row["batch_id"], pages), media_type="application/octet-stream")


async def _result_lines(batch_id: str, pages: AsyncIterator[list[Any]]) -> AsyncIterator[bytes]:
    async for page in pages:
        yield render_page(batch_id, page)


# --- batches --------------------------------------------------------------------------------------


def _stamp(value: float | None) -> int | None:
    return None if value is None else int(value)


def _batch_object(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "object": "batch",
        "endpoint": row["endpoint"],
        "errors": row["errors"],
        "input_file_id": row["input_file_id"],
        "completion_window": row["completion_window"],
        "status": row["status"],
        "output_file_id": row["output_file_id"],
        "error_file_id": row["error_file_id"],
        "created_at": int(row["created_at"]),
        **{name: _stamp(row[name]) for name in _TIMES},
        "request_counts": {"total": row["total"], "completed": row["completed"], "failed": row["failed"]},
        "metadata": row["metadata"],
    }


_TIMES = (
    "in_progress_at",
    "expires_at",
    "finalizing_at",
    "completed_at",
    "failed_at",
    "expired_at",
    "cancelling_at",
    "cancelled_at",
)


def _create_params(body: Any) -> tuple[str, dict[str, str] | None]:
    if not isinstance(body, dict):
        raise ProxyError(400, "the request body must be a JSON object")
    if body.get("endpoint") not in (_ENDPOINT, "/chat/completions"):
        raise ProxyError(400, f"endpoint must be '{_ENDPOINT}' (got {body.get('endpoint')!r})", param="endpoint")
    if body.get("completion_window") != _WINDOW:
        raise ProxyError(
            400, f"completion_window must be '24h' (got {body.get('completion_window')!r})", param="completion_window"
        )
    metadata = body.get("metadata")
    if metadata is not None and (
        not isinstance(metadata, dict) or len(metadata) > 16 or not all(isinstance(v, str) for v in metadata.values())
    ):
        raise ProxyError(400, "metadata must be an object of at most 16 string values", param="metadata")
    file_id = body.get("input_file_id")
    if not isinstance(file_id, str) or not file_id:
        raise ProxyError(400, "input_file_id is required", param="input_file_id")
    return file_id, metadata


async def create_batch(request: Request) -> Response:
    state = state_of(request)
    jobs = await _service(request).ready()
    raw = await read_body(request, _MAX_CREATE_BODY, state.config.request_body_timeout, state.deadlines)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ProxyError(400, "the request body is not valid JSON") from None
    file_id, metadata = _create_params(body)
    source = await jobs.get_file(file_id)
    if source is None or source["kind"] != "upload":
        raise ProxyError(400, f"input_file_id {file_id!r} is not an uploaded batch input file", param="input_file_id")
    path = Path(source["path"])
    total, groups, names = await asyncio.to_thread(_check_models, path, state.router.group_for)
    principal = principal_of(request)
    creator: dict[str, Any] = {}
    if principal is not None and state.keys is not None:  # a virtual key: every line's model must be on its list
        state.keys.check_models(principal, sorted(names))
        # and it pays for the lines: over budget, no new batch (LiteLLM's 422, as for a chat request); the lines
        # of a batch accepted earlier run on (their cost was committed when it was accepted)
        state.keys.charges.check_budget(principal)
        key = principal.key
        creator = {"key_token": key.id, "user_id": key.user_id, "team_id": key.team_id}
    now = time.time()
    batch_id = "batch_" + os.urandom(12).hex()
    row: dict[str, Any] = {
        "id": batch_id,
        "status": "in_progress",
        "endpoint": _ENDPOINT,
        "input_file_id": file_id,
        "completion_window": _WINDOW,
        "metadata": metadata,
        "total": total,
        "created_at": now,
        "in_progress_at": now,
        "expires_at": now + _WINDOW_SECONDS,
        **creator,
    }
    service = _service(request)
    native = service.native.deployment_for(groups)
    owner = None if native is None else native_owner(batch_id)
    await jobs.create_batch(row, _line_chunks(path), claimed_by=owner)
    if native is not None:  # the provider's own batch API (half price); its lines wait for the poller
        lines = await asyncio.to_thread(lambda: [line for _, line in iter_lines(path)])
        await service.native.submit(jobs, batch_id, native, lines)
    service.wake()
    empty = dict.fromkeys(("errors", "output_file_id", "error_file_id", *_TIMES[2:]))
    return _json(_batch_object({**empty, **row, "completed": 0, "failed": 0}))


def _check_models(path: Path, group_for: Callable[[str], str | None]) -> tuple[int, set[str], set[str]]:
    """The number of lines, the groups and the model names they name; an unknown model is a 400 naming its
    line (blocking)."""
    count = 0
    groups: set[str] = set()
    names: set[str] = set()
    for number, line in iter_lines(path):
        model = line["body"]["model"]
        group = group_for(model)
        if group is None:
            message = f"Invalid batch input, line {number}: unknown model {model!r}"
            raise BadRequestError(message, param="model", code="model_not_found")
        groups.add(group)
        names.add(model)
        count += 1
    return count, groups, names


def _chunked(path: Path, size: int = 2_000) -> Iterator[list[tuple[int, str, str]]]:
    chunk: list[tuple[int, str, str]] = []
    for index, (_, line) in enumerate(iter_lines(path)):
        chunk.append((index, line["custom_id"], orjson.dumps(line["body"]).decode()))
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def _line_chunks(path: Path) -> AsyncIterator[list[tuple[int, str, str]]]:
    """The stored file's lines in chunks, each read in a thread: never the whole file in memory."""
    chunks = _chunked(path)
    while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
        yield chunk


async def retrieve_batch(request: Request) -> Response:
    jobs = await _service(request).ready()
    row = await jobs.get_batch(request.path_params["batch_id"])
    if row is None:
        raise _not_found("Batch", request.path_params["batch_id"])
    return _json(_batch_object(row))


async def cancel_batch(request: Request) -> Response:
    jobs = await _service(request).ready()
    batch_id = request.path_params["batch_id"]
    if not await jobs.cancel(batch_id):
        row = await jobs.get_batch(batch_id)
        if row is None:
            raise _not_found("Batch", batch_id)
        if row["status"] not in ("cancelling", "cancelled"):
            raise ProxyError(409, f"Cannot cancel a batch with status '{row['status']}'.", type="invalid_request_error")
    await jobs.finalize(batch_id)  # nothing in flight: cancelled at once
    _service(request).wake()
    row = await jobs.get_batch(batch_id)
    assert row is not None
    return _json(_batch_object(row))


async def list_batches(request: Request) -> Response:
    jobs = await _service(request).ready()
    limit = _limit(request)
    rows = await jobs.list_batches(request.query_params.get("after"), limit)
    return _json(_list([_batch_object(r) for r in rows[:limit]], len(rows) > limit))


def _list(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }


def batch_routes() -> list[Route]:
    routes = []
    for prefix in ("", "/v1"):
        routes += [
            Route(f"{prefix}/files", _guarded(upload_file), methods=["POST"]),
            Route(f"{prefix}/files", _guarded(list_files), methods=["GET"]),
            Route(f"{prefix}/files/{{file_id}}", _guarded(retrieve_file), methods=["GET"]),
            Route(f"{prefix}/files/{{file_id}}", _guarded(delete_file), methods=["DELETE"]),
            Route(f"{prefix}/files/{{file_id}}/content", _guarded(file_content), methods=["GET"]),
            Route(f"{prefix}/batches", _guarded(create_batch), methods=["POST"]),
            Route(f"{prefix}/batches", _guarded(list_batches), methods=["GET"]),
            Route(f"{prefix}/batches/{{batch_id}}", _guarded(retrieve_batch), methods=["GET"]),
            Route(f"{prefix}/batches/{{batch_id}}/cancel", _guarded(cancel_batch), methods=["POST"]),
        ]
    return routes
