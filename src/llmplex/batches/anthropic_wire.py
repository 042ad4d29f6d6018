"""Anthropic Message Batches mapped to and from OpenAI's Batch shapes.

``processing_status`` in_progress / canceling / ended -> OpenAI's in_progress / cancelling /
completed (cancelled when a cancel was asked for); ``request_counts`` succeeded -> completed,
errored + canceled + expired -> failed. Results (JSONL at ``results_url``) become OpenAI output lines:
a succeeded message as a ``chat.completion`` body, an errored one as its status and OpenAI error body.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import quote, urlencode

import orjson

from llmplex.batches.types import Batch, BatchRequestCounts, ListPage
from llmplex.batches.wire import ERRORS_SUFFIX, OUTPUT_SUFFIX, BatchWire, InlineRequest
from llmplex.providers.anthropic import API_VERSION, AnthropicAdapter
from llmplex.providers.base import CompletionRequest, Endpoint, HTTPRequest

__all__ = ["AnthropicBatchWire", "epoch"]

_STATUS = {"in_progress": "in_progress", "canceling": "cancelling"}
# Anthropic error types -> the HTTP status the same error has on /v1/messages
_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


def epoch(stamp: Any) -> int | None:
    """An RFC 3339 timestamp as Unix seconds (None stays None)."""
    if not isinstance(stamp, str) or not stamp:
        return None
    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp())


class AnthropicBatchWire(BatchWire):
    name: str = "anthropic"
    native_files: ClassVar[bool] = False
    max_requests: ClassVar[int] = 100_000
    max_bytes: ClassVar[int] = 256 * 1024 * 1024

    def __init__(self) -> None:
        self._adapter = AnthropicAdapter()

    def headers(self, endpoint: Endpoint) -> dict[str, str]:
        headers = {"anthropic-version": API_VERSION}
        if endpoint.api_key:
            headers["x-api-key"] = endpoint.api_key
        return {**headers, **endpoint.headers}

    def _url(self, endpoint: Endpoint, path: str = "") -> str:
        base = endpoint.base_url.rstrip("/").removesuffix("/v1")
        return f"{base}/v1/messages/batches{path}"

    def create_inline(self, endpoint: Endpoint, requests: list[InlineRequest]) -> HTTPRequest:
        items = [{"custom_id": r.custom_id, "params": self._adapter.build_body(r.request)} for r in requests]
        return HTTPRequest.post_json(self._url(endpoint), self.headers(endpoint), {"requests": items})

    def get_batch(self, endpoint: Endpoint, batch_id: str) -> HTTPRequest:
        return HTTPRequest("GET", self._url(endpoint, "/" + quote(batch_id, safe="")), self.headers(endpoint))

    def cancel_batch(self, endpoint: Endpoint, batch_id: str) -> HTTPRequest:
        url = self._url(endpoint, f"/{quote(batch_id, safe='')}/cancel")
        return HTTPRequest("POST", url, self.headers(endpoint), b"")

    def list_batches(self, endpoint: Endpoint, after: str | None, limit: int | None) -> HTTPRequest:
        query = {k: v for k, v in {"after_id": after, "limit": limit}.items() if v is not None}
        url = self._url(endpoint) + (f"?{urlencode(query)}" if query else "")
        return HTTPRequest("GET", url, self.headers(endpoint))

    def results_request(self, endpoint: Endpoint, batch_id: str) -> HTTPRequest:
        # results_url is this same path on the API host; building it keeps api_base (and a proxy) in charge
        url = self._url(endpoint, f"/{quote(batch_id, safe='')}/results")
        return HTTPRequest("GET", url, self.headers(endpoint))

    def parse_batch(self, body: Any) -> Batch:
        counts = body.get("request_counts") or {}
        failed = sum(int(counts.get(k) or 0) for k in ("errored", "canceled", "expired"))
        succeeded = int(counts.get("succeeded") or 0)
        ended = body.get("processing_status") == "ended"
        cancelled = body.get("cancel_initiated_at") is not None
        status = ("cancelled" if cancelled else "completed") if ended else _STATUS.get(body["processing_status"], "")
        ended_at = epoch(body.get("ended_at"))
        batch = Batch(
            id=body["id"],
            status=status or "in_progress",
            input_file_id=None,
            created_at=epoch(body.get("created_at")) or 0,
            in_progress_at=epoch(body.get("created_at")),
            expires_at=epoch(body.get("expires_at")),
            cancelling_at=epoch(body.get("cancel_initiated_at")),
            completed_at=ended_at if ended and not cancelled else None,
            cancelled_at=ended_at if ended and cancelled else None,
            request_counts=BatchRequestCounts(
                total=succeeded + failed + int(counts.get("processing") or 0), completed=succeeded, failed=failed
            ),
            output_file_id=body["id"] + OUTPUT_SUFFIX if ended and succeeded else None,
            error_file_id=body["id"] + ERRORS_SUFFIX if ended and failed else None,
        )
        batch._hidden_params = {"custom_llm_provider": self.name, "native": body}
        return batch

    def parse_batch_list(self, body: Any) -> ListPage[Batch]:
        data = [self.parse_batch(item) for item in body.get("data") or []]
        return ListPage[Batch](
            data=data, first_id=body.get("first_id"), last_id=body.get("last_id"), has_more=bool(body.get("has_more"))
        )

    def result_lines(self, raw: bytes, errors: bool) -> list[dict[str, Any]]:
        lines = []
        for text in raw.splitlines():
            if not text.strip():
                continue
            entry = orjson.loads(text)
            result = entry.get("result") or {}
            kind = result.get("type")
            if (kind == "succeeded") == errors:
                continue
            line: dict[str, Any] = {"id": f"batch_req_{entry['custom_id']}", "custom_id": entry["custom_id"]}
            if kind == "succeeded":
                message = result["message"]
                response = self._adapter.parse_response(message, CompletionRequest(message.get("model", ""), []))
                line["response"] = {"status_code": 200, "request_id": message.get("id"), "body": response.model_dump()}
                line["error"] = None
            elif kind == "errored":
                error = (result.get("error") or {}).get("error") or {}
                body = {"error": {"message": error.get("message", ""), "type": error.get("type"), "code": None}}
                status = _ERROR_STATUS.get(str(error.get("type")), 500)
                line["response"] = {"status_code": status, "request_id": None, "body": body}
                line["error"] = None
            else:  # canceled / expired: never sent, as OpenAI reports lines a cancelled batch did not run
                line["response"] = None
                line["error"] = {"code": f"batch_{kind}", "message": f"This request was {kind} before it ran."}
            lines.append(line)
        return lines
