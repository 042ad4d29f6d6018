"""Tables of the proxy's batch jobs (revisions ``0002_batches``, ``0003_batch_creator``): files, batches and
one row per request line.

A line's result lives in its row (``status_code`` + the response or error body as JSON text), written
in the same statement that marks it done, guarded by the claim: that is what makes every line land in
the output exactly once. Output and error files are rows in ``llmplex_batch_files`` whose content is
read from the lines, in line order. Timestamps are epoch seconds.
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Double, Index, Integer, SmallInteger, String, Table, Text

from llmplex.store.schema import metadata

__all__ = ["DONE", "PENDING", "RUNNING", "batch_files", "batch_lines", "batches"]

# batch_lines.state
PENDING, RUNNING, DONE = 0, 1, 2

batch_files = Table(
    "llmplex_batch_files",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("purpose", String(32), nullable=False),
    Column("filename", String(512), nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("path", Text, nullable=True),  # uploaded files: where the bytes are on disk
    Column("batch_id", String(64), nullable=True),  # output / error files: content from the batch's lines
    Column("kind", String(16), nullable=False),  # "upload" | "output" | "errors"
    Column("lines", Integer, nullable=False, default=0),
)

batches = Table(
    "llmplex_batches",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("endpoint", String(64), nullable=False),
    Column("input_file_id", String(64), nullable=False),
    Column("completion_window", String(8), nullable=False),
    Column("metadata", JSON, nullable=True),
    Column("total", Integer, nullable=False),
    Column("output_file_id", String(64), nullable=True),
    Column("error_file_id", String(64), nullable=True),
    Column("errors", JSON, nullable=True),
    Column("native", JSON, nullable=True),  # provider batch ids when sent to a native batch API
    Column("created_at", Double, nullable=False),
    Column("in_progress_at", Double, nullable=True),
    Column("expires_at", Double, nullable=False),
    Column("finalizing_at", Double, nullable=True),
    Column("completed_at", Double, nullable=True),
    Column("failed_at", Double, nullable=True),
    Column("expired_at", Double, nullable=True),
    Column("cancelling_at", Double, nullable=True),
    Column("cancelled_at", Double, nullable=True),
    # the virtual key that created it (sha256 hex, as ``llmplex_keys.token``) and that key's user and team when
    # it was created: what its lines are charged to; None for the master key or no auth (nobody is charged)
    Column("key_token", String(64), nullable=True),
    Column("user_id", String(128), nullable=True),
    Column("team_id", String(128), nullable=True),
)

batch_lines = Table(
    "llmplex_batch_lines",
    metadata,
    Column("batch_id", String(64), primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("custom_id", String(512), nullable=False),
    Column("body", Text, nullable=False),  # the request body as JSON text
    Column("state", SmallInteger, nullable=False, default=PENDING),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", Double, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("status_code", Integer, nullable=True),
    Column("result", Text, nullable=True),  # response body (or OpenAI error body) as JSON text
)

Index("ix_llmplex_batch_lines_claim", batch_lines.c.batch_id, batch_lines.c.state, batch_lines.c.idx)
Index("ix_llmplex_batches_status", batches.c.status)
