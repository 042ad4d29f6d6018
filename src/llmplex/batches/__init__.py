"""Batch jobs: the providers' batch APIs (OpenAI, Azure, Anthropic, Gemini, ...) in OpenAI's Files + Batches shapes.

``ops`` does the I/O, one ``*_wire`` module per provider maps shapes (no I/O), ``job`` runs
``batch_completion(..., batch_api=True)`` as a ``BatchJob``; ``api`` holds the module-level functions.
"""

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
