"""Gemini Batch Mode with inline requests: ``models/{model}:batchGenerateContent`` and the ``batches/*`` operations.

Answers are long-running ``Operation``s: ``metadata`` is the ``GenerateContentBatch`` (state, stats),
and once ``done`` the ``response`` holds the inlined responses in request order.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llmplex.emulator.batch_jobs import BatchClock, answer, polls_wanted
from llmplex.emulator.conversation import new_id
from llmplex.emulator.dialect import Incoming
from llmplex.emulator.directives import Settings
from llmplex.emulator.gemini import GeminiDialect

__all__ = ["gemini_batch_routes"]

_BATCH_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch"
_OUTPUT_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput"
_ENDED = ("BATCH_STATE_SUCCEEDED", "BATCH_STATE_CANCELLED", "BATCH_STATE_FAILED", "BATCH_STATE_EXPIRED")


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class GeminiBatches:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.dialect = GeminiDialect()
        self.operations: dict[str, dict[str, Any]] = {}
        self.requests: dict[str, list[Any]] = {}
        self.clocks: dict[str, BatchClock] = {}

    def _failure(self, status: int, message: str) -> Response:
        failure = self.dialect.failure(status, message)
        return Response(failure.body, status_code=status, media_type="application/json")

    def _check(self, request: Request) -> Response | None:
        headers = {k.lower(): v for k, v in request.headers.items()}
        key = headers.get("x-goog-api-key") or request.query_params.get("key")
        # generateContent as target: authenticate() also checks the method name of model routes
        incoming = Incoming({"target": "m:generateContent"}, {"key": key} if key else {}, headers, b"")
        failure = self.dialect.authenticate(incoming)
        if failure is None:
            return None
        return Response(failure.body, status_code=failure.status, media_type="application/json")

    async def create(self, request: Request) -> Response:
        if (denied := self._check(request)) is not None:
            return denied
        model = request.path_params["model"]
        try:
            batch = orjson.loads(await request.body())["batch"]
            requests = batch["input_config"]["requests"]["requests"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return self._failure(400, "* batch.input_config.requests: inline requests are required (emulated)\n")
        if not isinstance(requests, list) or not requests:
            return self._failure(400, "* batch.input_config.requests.requests: at least one request is required\n")
        name = "batches/" + new_id("")
        now = _stamp()
        metadata = {
            "@type": _BATCH_TYPE,
            "model": f"models/{model}",
            "displayName": batch.get("display_name") or batch.get("displayName") or name,
            "createTime": now,
            "updateTime": now,
            "batchStats": {"requestCount": str(len(requests)), "pendingRequestCount": str(len(requests))},
            "state": "BATCH_STATE_PENDING",
            "name": name,
        }
        operation: dict[str, Any] = {"name": name, "metadata": metadata}
        headers = {k.lower(): v for k, v in request.headers.items()}
        clock = BatchClock(polls_wanted(model, headers))
        self.operations[name] = operation
        self.requests[name] = requests
        self.clocks[name] = clock
        if clock.due:
            self._finish(operation, model)
        return Response(orjson.dumps(operation), media_type="application/json")

    def _find(self, request: Request) -> dict[str, Any] | Response:
        if (denied := self._check(request)) is not None:
            return denied
        name = "batches/" + request.path_params["batch_id"]
        operation = self.operations.get(name)
        if operation is None:
            return self._failure(404, f"Batch {name} not found.")
        return operation

    async def retrieve(self, request: Request) -> Response:
        operation = self._find(request)
        if isinstance(operation, Response):
            return operation
        if not operation.get("done") and self.clocks[operation["name"]].poll():
            self._finish(operation, operation["metadata"]["model"].removeprefix("models/"))
        elif not operation.get("done"):
            operation["metadata"]["state"] = "BATCH_STATE_RUNNING"
        return Response(orjson.dumps(operation), media_type="application/json")

    async def cancel(self, request: Request) -> Response:
        operation = self._find(request)
        if isinstance(operation, Response):
            return operation
        if not operation.get("done"):
            self.clocks[operation["name"]].cancel_requested = True
        return Response(b"{}", media_type="application/json")

    async def delete(self, request: Request) -> Response:
        operation = self._find(request)
        if isinstance(operation, Response):
            return operation
        del self.operations[operation["name"]]
        return Response(b"{}", media_type="application/json")

    async def list_batches(self, request: Request) -> Response:
        if (denied := self._check(request)) is not None:
            return denied
        return Response(orjson.dumps({"operations": list(self.operations.values())}), media_type="application/json")

    def _finish(self, operation: dict[str, Any], model: str) -> None:
        name = operation["name"]
        metadata = operation["metadata"]
        requests = self.requests.pop(name)
        if self.clocks[name].cancel_requested:
            metadata.update(state="BATCH_STATE_CANCELLED", updateTime=_stamp(), endTime=_stamp())
            operation["done"] = True
            return
        responses = []
        ok = failed = 0
        for item in requests:
            payload = item.get("request") if isinstance(item, dict) else None
            outcome = answer(self.dialect, payload, model, self.settings, f"{model}:generateContent")
            entry: dict[str, Any] = {"response": outcome.body} if outcome.ok else {"error": outcome.body["error"]}
            if isinstance(item, dict) and "metadata" in item:
                entry["metadata"] = item["metadata"]
            ok, failed = (ok + 1, failed) if outcome.ok else (ok, failed + 1)
            responses.append(entry)
        stats = {"requestCount": str(len(requests)), "successfulRequestCount": str(ok)}
        if failed:
            stats["failedRequestCount"] = str(failed)
        output = {"@type": _OUTPUT_TYPE, "inlinedResponses": {"inlinedResponses": responses}}
        metadata.update(
            state="BATCH_STATE_SUCCEEDED", updateTime=_stamp(), endTime=_stamp(), batchStats=stats, output=output
        )
        operation.update(done=True, response=output)


def gemini_batch_routes(settings: Settings) -> list[Route]:
    store = GeminiBatches(settings)
    return [
        # before the generic /v1beta/models/{target} route: Starlette takes the first match
        Route("/v1beta/models/{model}:batchGenerateContent", store.create, methods=["POST"]),
        Route("/v1beta/batches", store.list_batches, methods=["GET"]),
        Route("/v1beta/batches/{batch_id}:cancel", store.cancel, methods=["POST"]),
        Route("/v1beta/batches/{batch_id}", store.retrieve, methods=["GET"]),
        Route("/v1beta/batches/{batch_id}", store.delete, methods=["DELETE"]),
    ]
