"""OpenAI Files + Batches (also served under Azure's ``/openai/`` paths): upload, batch, poll, download.

Kept in memory. A batch reads its input file when it ends (see ``batch_jobs`` for when) and writes
an output file (2xx lines) and an error file (the others) in OpenAI's line shapes.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llmplex.emulator.batch_jobs import BatchClock, answer, polls_wanted
from llmplex.emulator.conversation import new_id
from llmplex.emulator.dialect import bearer_token
from llmplex.emulator.directives import Settings
from llmplex.emulator.openai import OpenAIDialect

__all__ = ["openai_batch_routes"]

_ENDPOINT = "/v1/chat/completions"
_WINDOW = 24 * 3600


def _error(status: int, message: str, code: str | None = None, param: str | None = None) -> Response:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _json(payload: Any) -> Response:
    return Response(orjson.dumps(payload), media_type="application/json")


class OpenAIBatches:
    """The files and batches of one emulator process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.files: dict[str, tuple[dict[str, Any], bytes]] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.clocks: dict[str, BatchClock] = {}
        self.dialect = OpenAIDialect()

    # --- files -----------------------------------------------------------------------------------

    def _add_file(self, name: str, purpose: str, data: bytes) -> dict[str, Any]:
        file_id = new_id("file-")
        meta: dict[str, Any] = {
            "id": file_id,
            "object": "file",
            "bytes": len(data),
            "created_at": int(time.time()),
            "filename": name,
            "purpose": purpose,
            "status": "processed",
            "status_details": None,
            "expires_at": None,
        }
        self.files[file_id] = (meta, data)
        return meta

    async def upload(self, request: Request) -> Response:
        async with request.form() as form:
            upload, purpose = form.get("file"), form.get("purpose")
            if upload is None or isinstance(upload, str):
                return _error(400, "'file' is a required property", param="file")
            if purpose not in ("batch", "fine-tune", "assistants", "user_data", "vision", "evals"):
                return _error(400, f"'{purpose}' is not a valid purpose", param="purpose")
            data = await upload.read()
            return _json(self._add_file(upload.filename or "upload.jsonl", str(purpose), data))

    async def list_files(self, request: Request) -> Response:
        data = [meta for meta, _ in self.files.values()]
        return _json({"object": "list", "data": data, "has_more": False})

    async def retrieve_file(self, request: Request) -> Response:
        entry = self.files.get(request.path_params["file_id"])
        if entry is None:
            return _error(404, f"No such File object: {request.path_params['file_id']}", param="id")
        return _json(entry[0])

    async def file_content(self, request: Request) -> Response:
        entry = self.files.get(request.path_params["file_id"])
        if entry is None:
            return _error(404, f"No such File object: {request.path_params['file_id']}", param="id")
        return Response(entry[1], media_type="application/octet-stream")

    async def delete_file(self, request: Request) -> Response:
        file_id = request.path_params["file_id"]
        if self.files.pop(file_id, None) is None:
            return _error(404, f"No such File object: {file_id}", param="id")
        return _json({"id": file_id, "object": "file", "deleted": True})

    # --- batches ---------------------------------------------------------------------------------

    async def create(self, request: Request) -> Response:
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return _error(400, "The request body is not valid JSON.")
        entry = self.files.get(body.get("input_file_id", ""))
        if entry is None:
            return _error(400, f"No such File object: {body.get('input_file_id')}", param="input_file_id")
        if body.get("endpoint") != _ENDPOINT:
            return _error(400, f"Unsupported endpoint {body.get('endpoint')!r} (emulated: {_ENDPOINT})")
        if body.get("completion_window") != "24h":
            return _error(400, "completion_window must be '24h'", param="completion_window")
        lines = entry[1].splitlines()
        first_model = _first_model(lines)
        now = int(time.time())
        batch: dict[str, Any] = {
            "id": new_id("batch_"),
            "object": "batch",
            "endpoint": _ENDPOINT,
            "errors": None,
            "input_file_id": body["input_file_id"],
            "completion_window": "24h",
            "status": "in_progress",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": now,
            "in_progress_at": now,
            "expires_at": now + _WINDOW,
            "finalizing_at": None,
            "completed_at": None,
            "failed_at": None,
            "expired_at": None,
            "cancelling_at": None,
            "cancelled_at": None,
            "request_counts": {"total": len([line for line in lines if line.strip()]), "completed": 0, "failed": 0},
            "metadata": body.get("metadata"),
        }
        headers = {k.lower(): v for k, v in request.headers.items()}
        clock = BatchClock(polls_wanted(first_model, headers))
        self.batches[batch["id"]] = batch
        self.clocks[batch["id"]] = clock
        if clock.due:
            self._finish(batch)
        return _json(batch)

    async def retrieve(self, request: Request) -> Response:
        batch = self.batches.get(request.path_params["batch_id"])
        if batch is None:
            return _error(404, f"No such Batch object: {request.path_params['batch_id']}", param="id")
        if batch["status"] in ("in_progress", "cancelling") and self.clocks[batch["id"]].poll():
            self._finish(batch)
        return _json(batch)

    async def cancel(self, request: Request) -> Response:
        batch = self.batches.get(request.path_params["batch_id"])
        if batch is None:
            return _error(404, f"No such Batch object: {request.path_params['batch_id']}", param="id")
        if batch["status"] in ("completed", "failed", "expired", "cancelled"):
            return _error(409, f"Cannot cancel a batch with status '{batch['status']}'.")
        batch["status"] = "cancelling"
        batch["cancelling_at"] = int(time.time())
        return _json(batch)

    async def list_batches(self, request: Request) -> Response:
        items = sorted(self.batches.values(), key=lambda b: b["created_at"], reverse=True)
        after = request.query_params.get("after")
        if after:
            ids = [b["id"] for b in items]
            items = items[ids.index(after) + 1 :] if after in ids else []
        limit = int(request.query_params.get("limit", "20"))
        page = items[:limit]
        return _json(
            {
                "object": "list",
                "data": page,
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None,
                "has_more": len(items) > limit,
            }
        )

    def _finish(self, batch: dict[str, Any]) -> None:
        now = int(time.time())
        if batch["status"] == "cancelling":
            batch.update(status="cancelled", cancelled_at=now)
            return
        out: list[bytes] = []
        errors: list[bytes] = []
        for raw in self.files[batch["input_file_id"]][1].splitlines():
            if raw.strip():
                line = self._answer_line(raw)
                (out if line["response"] and line["response"]["status_code"] < 400 else errors).append(
                    orjson.dumps(line)
                )
        counts = batch["request_counts"]
        counts.update(completed=len(out), failed=len(errors))
        if out:
            batch["output_file_id"] = self._add_file("batch_output.jsonl", "batch_output", b"\n".join(out) + b"\n")[
                "id"
            ]
        if errors:
            data = b"\n".join(errors) + b"\n"
            batch["error_file_id"] = self._add_file("batch_errors.jsonl", "batch_output", data)["id"]
        batch.update(status="completed", finalizing_at=now, completed_at=now)

    def _answer_line(self, raw: bytes) -> dict[str, Any]:
        request_id = new_id("req_")
        try:
            line = orjson.loads(raw)
            body = line["body"]
            custom_id = line["custom_id"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            error = {"code": "invalid_json_line", "message": "This line is not a valid batch request."}
            return {"id": new_id("batch_req_"), "custom_id": None, "response": None, "error": error}
        result = answer(self.dialect, body, str(body.get("model", "")) if isinstance(body, dict) else "", self.settings)
        response = {"status_code": result.status, "request_id": request_id, "body": result.body}
        return {"id": new_id("batch_req_"), "custom_id": custom_id, "response": response, "error": None}


def _first_model(lines: list[bytes]) -> str:
    for raw in lines:
        try:
            model = orjson.loads(raw)["body"]["model"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            continue
        return str(model)
    return ""


def _authenticated(handler: Any) -> Any:
    async def endpoint(request: Request) -> Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        key = bearer_token(headers) or headers.get("api-key")
        if not key or key == "bad-key":
            return _error(401, "Incorrect API key provided.", code="invalid_api_key")
        response: Response = await handler(request)
        return response

    return endpoint


def openai_batch_routes(settings: Settings) -> list[Route]:
    """Routes for ``/v1/files``, ``/v1/batches`` and their Azure twins under ``/openai/``."""
    store = OpenAIBatches(settings)
    routes = []
    for prefix in ("/v1", "/openai"):
        routes += [
            Route(f"{prefix}/files", _authenticated(store.upload), methods=["POST"]),
            Route(f"{prefix}/files", _authenticated(store.list_files), methods=["GET"]),
            Route(f"{prefix}/files/{{file_id}}", _authenticated(store.retrieve_file), methods=["GET"]),
            Route(f"{prefix}/files/{{file_id}}", _authenticated(store.delete_file), methods=["DELETE"]),
            Route(f"{prefix}/files/{{file_id}}/content", _authenticated(store.file_content), methods=["GET"]),
            Route(f"{prefix}/batches", _authenticated(store.create), methods=["POST"]),
            Route(f"{prefix}/batches", _authenticated(store.list_batches), methods=["GET"]),
            Route(f"{prefix}/batches/{{batch_id}}", _authenticated(store.retrieve), methods=["GET"]),
            Route(f"{prefix}/batches/{{batch_id}}/cancel", _authenticated(store.cancel), methods=["POST"]),
        ]
    return routes
