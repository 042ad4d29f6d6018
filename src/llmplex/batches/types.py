"""OpenAI's Files and Batches shapes, which every provider's batch API is mapped to and from.

Fields are OpenAI's (and LiteLLM's ``OpenAIFileObject`` / ``LiteLLMBatch``); unknown fields are kept
(``extra="allow"``). ``hidden_params`` says which provider answered and holds its native object.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

__all__ = ["Batch", "BatchRequestCounts", "FileContent", "FileDeleted", "FileObject", "ListPage"]

T = TypeVar("T")


class _Shape(BaseModel):
    model_config = ConfigDict(extra="allow")
    _hidden_params: dict[str, Any] = PrivateAttr(default_factory=dict)

    @property
    def hidden_params(self) -> dict[str, Any]:
        return self._hidden_params


class FileObject(_Shape):
    id: str
    object: str = "file"
    bytes: int = 0
    created_at: int = 0
    filename: str = ""
    purpose: str = "batch"
    status: str | None = "processed"
    status_details: str | None = None
    expires_at: int | None = None


class FileDeleted(_Shape):
    id: str
    object: str = "file"
    deleted: bool = True


class BatchRequestCounts(BaseModel):
    model_config = ConfigDict(extra="allow")
    total: int = 0
    completed: int = 0
    failed: int = 0


class Batch(_Shape):
    id: str
    object: str = "batch"
    endpoint: str = "/v1/chat/completions"
    errors: Any = None
    input_file_id: str | None = None
    completion_window: str = "24h"
    status: str = "validating"
    output_file_id: str | None = None
    error_file_id: str | None = None
    created_at: int = 0
    in_progress_at: int | None = None
    expires_at: int | None = None
    finalizing_at: int | None = None
    completed_at: int | None = None
    failed_at: int | None = None
    expired_at: int | None = None
    cancelling_at: int | None = None
    cancelled_at: int | None = None
    request_counts: BatchRequestCounts = Field(default_factory=BatchRequestCounts)
    metadata: dict[str, str] | None = None

    @property
    def ended(self) -> bool:
        return self.status in ("completed", "failed", "expired", "cancelled")


class ListPage(BaseModel, Generic[T]):
    """OpenAI's list envelope."""

    model_config = ConfigDict(extra="allow")
    object: str = "list"
    data: list[T]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False


class FileContent:
    """A downloaded file (LiteLLM's ``HttpxBinaryResponseContent`` surface: ``content``, ``text``, ``read()``)."""

    def __init__(self, content: bytes) -> None:
        self.content = content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8")

    def read(self) -> bytes:
        return self.content

    def json_lines(self) -> Iterator[Any]:
        """Each non-empty JSONL line, parsed."""
        for line in self.content.splitlines():
            if line.strip():
                yield orjson.loads(line)
