"""Anthropic Message Batches: ``/v1/messages/batches`` create, retrieve, list, cancel, delete, results (JSONL)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llmplex.emulator.anthropic import AnthropicDialect
from llmplex.emulator.batch_jobs import BatchClock, answer, polls_wanted
from llmplex.emulator.conversation import new_id
from llmplex.emulator.dialect import Incoming
from llmplex.emulator.directives import Settings

__all__ = ["anthropic_batch_routes"]


def _stamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class AnthropicBatches:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.dialect = AnthropicDialect()
        self.batches: dict[str, dict[str, Any]] = {}
        self.requests: dict[str, list[dict[str, Any]]] = {}
        self.outputs: dict[str, bytes] = {}
        self.clocks: dict[str, BatchClock] = {}

    def _failure(self, status: int, message: str) -> Response:
        failure = self.dialect.failure(status, message)
        return Response(failure.body, status_code=status, media_type="application/json")

    def _check(self, request: Request) -> Response | None:
        incoming = Incoming({}, {}, {k.lower(): v for k, v in request.headers.items()}, b"")
        failure = self.dialect.authenticate(incoming)
        if failure is None:
            return None
        return Response(failure.body, status_code=failure.status, media_type="application/json")

    async def create(self, request: Request) -> Response:
        if (denied := self._check(request)) is not None:
            return denied
        try:
            body = orjson.loads(await request.body())
            requests = body["requests"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return self._failure(400, "requests: Field required")
        if not isinstance(requests, list) or not requests:
            return self._failure(400, "requests: List should have at least 1 item")
        seen: set[str] = set()
        for index, item in enumerate(requests):
            if not isinstance(item, dict) or not isinstance(item.get("custom_id"), str) or "params" not in item:
                return self._failure(400, f"requests.{index}: custom_id and params are required")
            if item["custom_id"] in seen:
                return self._failure(400, f"requests.{index}.custom_id: duplicate custom_id {item['custom_id']!r}")
            seen.add(item["custom_id"])
        now = time.time()
        batch: dict[str, Any] = {
            "id": new_id("msgbatch_"),
            "type": "message_batch",
            "processing_status": "in_progress",
            "request_counts": {"processing": len(requests), "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0},
            "ended_at": None,
            "created_at": _stamp(now),
            "expires_at": _stamp(now + 24 * 3600),
            "archived_at": None,
            "cancel_initiated_at": None,
            "results_url": None,
        }
        first_model = str((requests[0].get("params") or {}).get("model", ""))
        headers = {k.lower(): v for k, v in request.headers.items()}
        clock = BatchClock(polls_wanted(first_model, headers))
        self.batches[batch["id"]] = batch
        self.requests[batch["id"]] = requests
        self.clocks[batch["id"]] = clock
        if clock.due:
            self._finish(batch, str(request.base_url))
        return Response(orjson.dumps(batch), media_type="application/json")

    def _find(self, request: Request) -> dict[str, Any] | Response:
        if (denied := self._check(request)) is not None:
            return denied
        batch = self.batches.get(request.path_params["batch_id"])
        if batch is None:
            return self._failure(404, f"batch {request.path_params['batch_id']} not found")
        return batch

    async def retrieve(self, request: Request) -> Response:
        batch = self._find(request)
        if isinstance(batch, Response):
            return batch
        if batch["processing_status"] != "ended" and self.clocks[batch["id"]].poll():
            self._finish(batch, str(request.base_url))
        return Response(orjson.dumps(batch), media_type="application/json")

    async def cancel(self, request: Request) -> Response:
        batch = self._find(request)
        if isinstance(batch, Response):
            return batch
        if batch["processing_status"] == "in_progress":
            batch["processing_status"] = "canceling"
            batch["cancel_initiated_at"] = _stamp(time.time())
        return Response(orjson.dumps(batch), media_type="application/json")

    async def delete(self, request: Request) -> Response:
        batch = self._find(request)
        if isinstance(batch, Response):
            return batch
        if batch["processing_status"] != "ended":
            return self._failure(400, "Batch must be ended before it can be deleted.")
        del self.batches[batch["id"]]
        return Response(
            orjson.dumps({"id": batch["id"], "type": "message_batch_deleted"}), media_type="application/json"
        )

    async def results(self, request: Request) -> Response:
        batch = self._find(request)
        if isinstance(batch, Response):
            return batch
        if batch["processing_status"] != "ended":
            return self._failure(400, "Batch is still in progress; results are not available yet.")
        return Response(self.outputs[batch["id"]], media_type="application/binary")

    async def list_batches(self, request: Request) -> Response:
        if (denied := self._check(request)) is not None:
            return denied
        items = sorted(self.batches.values(), key=lambda b: b["created_at"], reverse=True)
        after = request.query_params.get("after_id")
        if after:
            ids = [b["id"] for b in items]
            items = items[ids.index(after) + 1 :] if after in ids else []
        limit = int(request.query_params.get("limit", "20"))
        page = items[:limit]
        payload = {
            "data": page,
            "has_more": len(items) > limit,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
        }
        return Response(orjson.dumps(payload), media_type="application/json")

    def _finish(self, batch: dict[str, Any], base_url: str) -> None:
        counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        lines = []
        canceled = batch["processing_status"] == "canceling"
        for item in self.requests.pop(batch["id"]):
            params = item["params"]
            if canceled:
                result: dict[str, Any] = {"type": "canceled"}
            else:
                model = str(params.get("model", "")) if isinstance(params, dict) else ""
                outcome = answer(self.dialect, params, model, self.settings)
                if outcome.ok:
                    result = {"type": "succeeded", "message": outcome.body}
                else:
                    result = {"type": "errored", "error": outcome.body}
            counts[result["type"]] += 1
            lines.append(orjson.dumps({"custom_id": item["custom_id"], "result": result}))
        self.outputs[batch["id"]] = b"\n".join(lines) + b"\n"
        batch.update(
            processing_status="ended",
            request_counts=counts,
            ended_at=_stamp(time.time()),
            results_url=f"{base_url.rstrip('/')}/v1/messages/batches/{batch['id']}/results",
        )


def anthropic_batch_routes(settings: Settings) -> list[Route]:
    store = AnthropicBatches(settings)
    base = "/v1/messages/batches"
    return [
        Route(base, store.create, methods=["POST"]),
        Route(base, store.list_batches, methods=["GET"]),
        Route(base + "/{batch_id}", store.retrieve, methods=["GET"]),
        Route(base + "/{batch_id}", store.delete, methods=["DELETE"]),
        Route(base + "/{batch_id}/cancel", store.cancel, methods=["POST"]),
        Route(base + "/{batch_id}/results", store.results, methods=["GET"]),
    ]
