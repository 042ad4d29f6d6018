"""Gemini Batch Mode (inline requests) mapped to and from OpenAI's Batch shapes.

A batch is a long-running operation named ``batches/<id>``; its ``metadata`` is the
``GenerateContentBatch`` (state, ``batchStats``) and, once done, ``response.inlinedResponses`` holds
one response or error per request, carrying the request's ``metadata.key`` (our ``custom_id``).
One batch runs one model: lines for several models are refused. Inline requests are limited to
20 MB per batch by Gemini; larger inputs are split into several batches by ``batch_completion``.
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import quote, urlencode

import orjson

from llmplex.batches.anthropic_wire import epoch
from llmplex.batches.types import Batch, BatchRequestCounts, ListPage
from llmplex.batches.wire import ERRORS_SUFFIX, OUTPUT_SUFFIX, BatchWire, InlineRequest
from llmplex.exceptions import BadRequestError
from llmplex.providers._gemini_request import gemini_body
from llmplex.providers.base import CompletionRequest, Endpoint, HTTPRequest
from llmplex.providers.gemini import GeminiAdapter

__all__ = ["GeminiBatchWire"]

_STATUS = {
    "BATCH_STATE_PENDING": "in_progress",
    "BATCH_STATE_RUNNING": "in_progress",
    "BATCH_STATE_SUCCEEDED": "completed",
    "BATCH_STATE_FAILED": "failed",
    "BATCH_STATE_CANCELLED": "cancelled",
    "BATCH_STATE_EXPIRED": "expired",
}


def _count(stats: dict[str, Any], key: str) -> int:
    return int(stats.get(key) or 0)  # int64 fields arrive as strings


class GeminiBatchWire(BatchWire):
    name: str = "gemini"
    native_files: ClassVar[bool] = False
    max_requests: ClassVar[int] = 50_000
    max_bytes: ClassVar[int] = 20 * 1024 * 1024  # Gemini's limit for inline requests

    def __init__(self) -> None:
        self._adapter = GeminiAdapter()

    def headers(self, endpoint: Endpoint) -> dict[str, str]:
        headers = {"x-goog-api-key": endpoint.api_key} if endpoint.api_key else {}
        return {**headers, **endpoint.headers}

    def _url(self, endpoint: Endpoint, path: str) -> str:
        base = endpoint.base_url.rstrip("/")
        if not base.endswith(("/v1beta", "/v1", "/v1alpha")):
            base += "/v1beta"
        return f"{base}/{path}"

    def create_inline(self, endpoint: Endpoint, requests: list[InlineRequest]) -> HTTPRequest:
        models = {r.request.model.removeprefix("models/") for r in requests}
        if len(models) != 1:
            raise BadRequestError(
                f"a Gemini batch runs one model; these lines name {sorted(models)}", provider=self.name, param="model"
            )
        model = models.pop()
        items = [{"request": gemini_body(r.request), "metadata": {"key": r.custom_id}} for r in requests]
        body = {"batch": {"display_name": "llmplex", "input_config": {"requests": {"requests": items}}}}
        url = self._url(endpoint, f"models/{quote(model, safe='')}:batchGenerateContent")
        return HTTPRequest.post_json(url, self.headers(endpoint), body)

    def get_batch(self, endpoint: Endpoint, batch_id: str) -> HTTPRequest:
        return HTTPRequest("GET", self._url(endpoint, _name(batch_id)), self.headers(endpoint))

    def cancel_batch(self, endpoint: Endpoint, batch_id: str) -> HTTPRequest:
        return HTTPRequest("POST", self._url(endpoint, _name(batch_id) + ":cancel"), self.headers(endpoint), b"")

    def list_batches(self, endpoint: Endpoint, after: str | None, limit: int | None) -> HTTPRequest:
        query = {k: v for k, v in {"pageToken": after, "pageSize": limit}.items() if v is not None}
        url = self._url(endpoint, "batches") + (f"?{urlencode(query)}" if query else "")
        return HTTPRequest("GET", url, self.headers(endpoint))

    def results_request(self, endpoint: Endpoint, batch_id: str) -> HTTPRequest:
        return self.get_batch(endpoint, batch_id)  # inline results live in the finished operation

    def parse_batch(self, body: Any) -> Batch:
        meta = body.get("metadata") or {}
        stats = meta.get("batchStats") or {}
        status = _STATUS.get(str(meta.get("state")), "in_progress")
        total = _count(stats, "requestCount")
        done, failed = _count(stats, "successfulRequestCount"), _count(stats, "failedRequestCount")
        ended = status in ("completed", "failed", "cancelled", "expired")
        name = body.get("name") or meta.get("name") or ""
        end = epoch(meta.get("endTime"))
        batch = Batch(
            id=name,
            status=status,
            created_at=epoch(meta.get("createTime")) or 0,
            in_progress_at=epoch(meta.get("createTime")),
            completed_at=end if status == "completed" else None,
            failed_at=end if status == "failed" else None,
            cancelled_at=end if status == "cancelled" else None,
            expired_at=end if status == "expired" else None,
            request_counts=BatchRequestCounts(total=total, completed=done, failed=failed),
            output_file_id=name + OUTPUT_SUFFIX if ended and done else None,
            error_file_id=name + ERRORS_SUFFIX if ended and failed else None,
            metadata={"display_name": str(meta["displayName"])} if meta.get("displayName") else None,
        )
        batch._hidden_params = {"custom_llm_provider": self.name, "native": body, "model": meta.get("model")}
        return batch

    def parse_batch_list(self, body: Any) -> ListPage[Batch]:
        data = [self.parse_batch(op) for op in body.get("operations") or body.get("batches") or []]
        token = body.get("nextPageToken")
        return ListPage[Batch](data=data, has_more=bool(token), last_id=token)

    def result_lines(self, raw: bytes, errors: bool) -> list[dict[str, Any]]:
        operation = orjson.loads(raw)
        meta = operation.get("metadata") or {}
        output = operation.get("response") or meta.get("output") or {}
        model = str(meta.get("model") or "").removeprefix("models/")
        lines = []
        for index, item in enumerate((output.get("inlinedResponses") or {}).get("inlinedResponses") or []):
            custom_id = str((item.get("metadata") or {}).get("key", index))
            line: dict[str, Any] = {"id": f"batch_req_{custom_id}", "custom_id": custom_id, "error": None}
            if "response" in item and not errors:
                response = self._adapter.parse_response(item["response"], CompletionRequest(model, []))
                line["response"] = {"status_code": 200, "request_id": None, "body": response.model_dump()}
            elif "response" not in item and errors:
                error = item.get("error") or {}
                status = int(error.get("code") or 500)
                body = {"error": {"message": error.get("message", ""), "type": error.get("status"), "code": None}}
                line["response"] = {"status_code": status, "request_id": None, "body": body}
            else:
                continue
            lines.append(line)
        return lines


def _name(batch_id: str) -> str:
    """``batches/<id>`` whether the caller gave the full name or only the id."""
    return batch_id if batch_id.startswith("batches/") else f"batches/{batch_id}"
