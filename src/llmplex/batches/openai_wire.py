"""OpenAI's Files + Batches API (and Azure OpenAI's, and OpenAI-compatible vendors that serve it): URLs and auth.

The bodies already are OpenAI's shapes; uploads are ``multipart/form-data`` built here as bytes.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote, urlencode

from llmplex.batches.types import Batch, ListPage
from llmplex.batches.wire import BatchWire
from llmplex.providers.base import Endpoint, HTTPRequest

__all__ = ["AzureBatchWire", "OpenAIBatchWire", "multipart_body"]

AZURE_API_VERSION = "2024-10-21"


def multipart_body(fields: dict[str, str], filename: str, data: bytes) -> tuple[str, bytes]:
    """``(content type, body)`` of a form with text ``fields`` and one ``file`` part."""
    boundary = "llmplex-" + os.urandom(12).hex()
    parts: list[bytes] = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    safe_name = filename.replace('"', "").replace("\r", "").replace("\n", "")
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{safe_name}"\r\n'
        "Content-Type: application/jsonl\r\n\r\n".encode()
    )
    parts.append(data)
    parts.append(f"\r\n--{boundary}--\r\n".encode())
    return f"multipart/form-data; boundary={boundary}", b"".join(parts)


class OpenAIBatchWire(BatchWire):
    name: str = "openai"

    def headers(self, endpoint: Endpoint) -> dict[str, str]:
        auth = {"Authorization": f"Bearer {endpoint.api_key}"} if endpoint.api_key else {}
        return {**auth, **endpoint.headers}

    def url(self, endpoint: Endpoint, path: str, query: dict[str, Any] | None = None) -> str:
        base = endpoint.base_url.rstrip("/")
        params = {k: v for k, v in (query or {}).items() if v is not None}
        return f"{base}/{path}" + (f"?{urlencode(params)}" if params else "")

    def _get(self, endpoint: Endpoint, path: str, query: dict[str, Any] | None = None) -> HTTPRequest:
        return HTTPRequest("GET", self.url(endpoint, path, query), self.headers(endpoint))

    def upload_file(self, endpoint: Endpoint, filename: str, data: bytes, purpose: str) -> HTTPRequest:
        content_type, body = multipart_body({"purpose": purpose}, filename, data)
        headers = {**self.headers(endpoint), "Content-Type": content_type}
        return HTTPRequest("POST", self.url(endpoint, "files"), headers, body)

    def get_file(self, endpoint: Endpoint, file_id: str) -> HTTPRequest:
        return self._get(endpoint, f"files/{quote(file_id, safe='')}")

    def file_content(self, endpoint: Endpoint, file_id: str) -> HTTPRequest:
        return self._get(endpoint, f"files/{quote(file_id, safe='')}/content")

    def delete_file(self, endpoint: Endpoint, file_id: str) -> HTTPRequest:
        return HTTPRequest("DELETE", self.url(endpoint, f"files/{quote(file_id, safe='')}"), self.headers(endpoint))

    def list_files(self, endpoint: Endpoint, purpose: str | None) -> HTTPRequest:
        return self._get(endpoint, "files", {"purpose": purpose})

    def create_from_file(
        self, endpoint: Endpoint, input_file_id: str, url: str, window: str, metadata: dict[str, str] | None
    ) -> HTTPRequest:
        body: dict[str, Any] = {"input_file_id": input_file_id, "endpoint": url, "completion_window": window}
        if metadata is not None:
            body["metadata"] = metadata
        return HTTPRequest.post_json(self.url(endpoint, "batches"), self.headers(endpoint), body)

    def get_batch(self, endpoint: Endpoint, batch_id: str) -> HTTPRequest:
        return self._get(endpoint, f"batches/{quote(batch_id, safe='')}")

    def cancel_batch(self, endpoint: Endpoint, batch_id: str) -> HTTPRequest:
        url = self.url(endpoint, f"batches/{quote(batch_id, safe='')}/cancel")
        return HTTPRequest("POST", url, self.headers(endpoint), b"")

    def list_batches(self, endpoint: Endpoint, after: str | None, limit: int | None) -> HTTPRequest:
        return self._get(endpoint, "batches", {"after": after, "limit": limit})

    def parse_batch(self, body: Any) -> Batch:
        batch = Batch.model_validate(body)
        batch._hidden_params = {"custom_llm_provider": self.name}
        return batch

    def parse_batch_list(self, body: Any) -> ListPage[Batch]:
        page = ListPage[Batch].model_validate(body)
        for batch in page.data:
            batch._hidden_params = {"custom_llm_provider": self.name}
        return page


class AzureBatchWire(OpenAIBatchWire):
    """Azure OpenAI: ``{api_base}/openai/files?api-version=...``, key in ``api-key``."""

    name: str = "azure"

    def headers(self, endpoint: Endpoint) -> dict[str, str]:
        auth = {"api-key": endpoint.api_key} if endpoint.api_key else {}
        return {**auth, **endpoint.headers}

    def url(self, endpoint: Endpoint, path: str, query: dict[str, Any] | None = None) -> str:
        base = endpoint.base_url.rstrip("/").removesuffix("/openai")
        params = {k: v for k, v in (query or {}).items() if v is not None}
        params["api-version"] = endpoint.api_version or AZURE_API_VERSION
        return f"{base}/openai/{path}?{urlencode(params)}"
