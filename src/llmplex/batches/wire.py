"""The contract of a provider's batch mapping: pure functions from OpenAI's shapes to HTTP requests and back.

Two kinds of provider. ``native_files`` ones (OpenAI, Azure, OpenAI-compatible rows) have OpenAI's
own Files + Batches API: the mapping is URLs and auth. The others (Anthropic Message Batches,
Gemini Batch Mode) take the requests inline: llmplex keeps the uploaded JSONL itself, converts each
line to the provider's request when the batch is created, and serves the batch's results as
OpenAI output files named ``<batch id>:output`` and ``<batch id>:errors``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from llmplex.batches.types import Batch, ListPage
from llmplex.exceptions import BadRequestError
from llmplex.providers.base import CompletionRequest, Endpoint, HTTPRequest

__all__ = ["OUTPUT_SUFFIX", "ERRORS_SUFFIX", "BatchWire", "InlineRequest", "split_result_file_id"]

OUTPUT_SUFFIX = ":output"
ERRORS_SUFFIX = ":errors"


@dataclass(slots=True)
class InlineRequest:
    """One line of an inline batch: its ``custom_id`` and the chat request, already resolved."""

    custom_id: str
    request: CompletionRequest


def split_result_file_id(file_id: str) -> tuple[str, bool]:
    """``"<batch>:output"`` -> ``(batch, False)``; ``"<batch>:errors"`` -> ``(batch, True)``."""
    for suffix, errors in ((OUTPUT_SUFFIX, False), (ERRORS_SUFFIX, True)):
        if file_id.endswith(suffix):
            return file_id[: -len(suffix)], errors
    raise BadRequestError(
        f"file {file_id!r} is not a batch result file (expected '<batch id>{OUTPUT_SUFFIX}' or "
        f"'<batch id>{ERRORS_SUFFIX}'); input files of this provider are kept by llmplex",
        param="file_id",
    )


class BatchWire:
    """One provider's batch API; subclasses override what their kind needs."""

    name: str = ""
    native_files: ClassVar[bool] = True
    max_requests: ClassVar[int] = 50_000
    max_bytes: ClassVar[int] = 200 * 1024 * 1024

    def headers(self, endpoint: Endpoint) -> dict[str, str]:
        raise NotImplementedError

    # --- native files (OpenAI's API) ---------------------------------------------------------------

    def upload_file(self, endpoint: Endpoint, filename: str, data: bytes, purpose: str) -> HTTPRequest:
        raise NotImplementedError

    def get_file(self, endpoint: Endpoint, file_id: str) -> HTTPRequest:
        raise NotImplementedError

    def file_content(self, endpoint: Endpoint, file_id: str) -> HTTPRequest:
        raise NotImplementedError

    def delete_file(self, endpoint: Endpoint, file_id: str) -> HTTPRequest:
        raise NotImplementedError

    def list_files(self, endpoint: Endpoint, purpose: str | None) -> HTTPRequest:
        raise NotImplementedError

    def create_from_file(
        self, endpoint: Endpoint, input_file_id: str, url: str, window: str, metadata: dict[str, str] | None
    ) -> HTTPRequest:
        raise NotImplementedError

    # --- inline providers --------------------------------------------------------------------------

    def create_inline(self, endpoint: Endpoint, requests: list[InlineRequest]) -> HTTPRequest:
        raise NotImplementedError

    def results_request(self, endpoint: Endpoint, batch_id: str) -> HTTPRequest:
        raise NotImplementedError

    def result_lines(self, raw: bytes, errors: bool) -> list[dict[str, Any]]:
        """The provider's results as OpenAI output lines (``errors``: the error file's lines)."""
        raise NotImplementedError

    # --- batches (both kinds) ----------------------------------------------------------------------

    def get_batch(self, endpoint: Endpoint, batch_id: str) -> HTTPRequest:
        raise NotImplementedError

    def cancel_batch(self, endpoint: Endpoint, batch_id: str) -> HTTPRequest:
        raise NotImplementedError

    def list_batches(self, endpoint: Endpoint, after: str | None, limit: int | None) -> HTTPRequest:
        raise NotImplementedError

    def parse_batch(self, body: Any) -> Batch:
        raise NotImplementedError

    def parse_batch_list(self, body: Any) -> ListPage[Batch]:
        raise NotImplementedError
