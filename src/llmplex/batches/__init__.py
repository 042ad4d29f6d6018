"""Batch jobs: the providers' batch APIs (OpenAI, Azure, Anthropic, Gemini, ...) in OpenAI's Files + Batches shapes.

``ops`` does the I/O, one ``*_wire`` module per provider maps shapes (no I/O), ``job`` runs
``batch_completion(..., batch_api=True)`` as a ``BatchJob``; ``api`` holds the module-level functions.
The proxy's own runner is ``jobstore`` + ``executor``. Names load on first use: ``import llmplex``
stays cheap for programs that never batch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmplex.batches.job import BatchJob, JobStatus
    from llmplex.batches.types import Batch, BatchRequestCounts, FileContent, FileDeleted, FileObject, ListPage

__all__ = [
    "Batch",
    "BatchJob",
    "BatchRequestCounts",
    "FileContent",
    "FileDeleted",
    "FileObject",
    "JobStatus",
    "ListPage",
]

_HOMES = {"BatchJob": "job", "JobStatus": "job"}


def __getattr__(name: str) -> Any:
    if name in __all__:
        module = importlib.import_module(f"llmplex.batches.{_HOMES.get(name, 'types')}")
        return getattr(module, name)
    raise AttributeError(f"module 'llmplex.batches' has no attribute {name!r}")
