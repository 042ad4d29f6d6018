"""Module-level file and batch functions (LiteLLM's names), each with an async twin, over the default clients.

The implementation modules are imported on the first call (they cost ~40 ms of ``import llmplex``).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from llmplex._api import _default_async, _default_sync

if TYPE_CHECKING:
    from llmplex.batches.job import BatchJob, JobStatus
    from llmplex.batches.ops import FileInput
    from llmplex.batches.types import Batch, FileContent, FileDeleted, FileObject, ListPage

__all__ = [
    "SyncBatchJob",
    "acancel_batch",
    "acreate_batch",
    "acreate_file",
    "afile_content",
    "afile_delete",
    "afile_list",
    "afile_retrieve",
    "alist_batches",
    "aretrieve_batch",
    "asubmit_batch_completion",
    "cancel_batch",
    "create_batch",
    "create_file",
    "file_content",
    "file_delete",
    "file_list",
    "file_retrieve",
    "list_batches",
    "retrieve_batch",
    "submit_batch_completion",
]


_CHAT_URL = "/v1/chat/completions"


# --- files ----------------------------------------------------------------------------------------


def create_file(file: FileInput, purpose: str = "batch", **options: Any) -> FileObject:
    from llmplex.batches import ops

    client = _default_sync()
    return client.run(ops.create_file(client.async_client, file, purpose, **options))


async def acreate_file(file: FileInput, purpose: str = "batch", **options: Any) -> FileObject:
    from llmplex.batches import ops

    return await ops.create_file(_default_async(), file, purpose, **options)


def file_retrieve(file_id: str, **options: Any) -> FileObject:
    from llmplex.batches import ops

    client = _default_sync()
    return client.run(ops.file_retrieve(client.async_client, file_id, **options))


async def afile_retrieve(file_id: str, **options: Any) -> FileObject:
    from llmplex.batches import ops

    return await ops.file_retrieve(_default_async(), file_id, **options)


def file_content(file_id: str, **options: Any) -> FileContent:
    from llmplex.batches import ops

    client = _default_sync()
    return client.run(ops.file_content(client.async_client, file_id, **options))


async def afile_content(file_id: str, **options: Any) -> FileContent:
    from llmplex.batches import ops

    return await ops.file_content(_default_async(), file_id, **options)


def file_delete(file_id: str, **options: Any) -> FileDeleted:
    from llmplex.batches import ops

    client = _default_sync()
    return client.run(ops.file_delete(client.async_client, file_id, **options))


async def afile_delete(file_id: str, **options: Any) -> FileDeleted:
    from llmplex.batches import ops

    return await ops.file_delete(_default_async(), file_id, **options)


def file_list(purpose: str | None = None, **options: Any) -> ListPage[FileObject]:
    from llmplex.batches import ops

    client = _default_sync()
    return client.run(ops.file_list(client.async_client, purpose, **options))


async def afile_list(purpose: str | None = None, **options: Any) -> ListPage[FileObject]:
    from llmplex.batches import ops

    return await ops.file_list(_default_async(), purpose, **options)


# --- batches --------------------------------------------------------------------------------------


def create_batch(
    completion_window: str = "24h", endpoint: str = _CHAT_URL, input_file_id: str = "", **options: Any
) -> Batch:
    from llmplex.batches import ops

    client = _default_sync()
    return client.run(ops.create_batch(client.async_client, completion_window, endpoint, input_file_id, **options))


async def acreate_batch(
    completion_window: str = "24h", endpoint: str = _CHAT_URL, input_file_id: str = "", **options: Any
) -> Batch:
    from llmplex.batches import ops

    return await ops.create_batch(_default_async(), completion_window, endpoint, input_file_id, **options)


def retrieve_batch(batch_id: str, **options: Any) -> Batch:
    from llmplex.batches import ops

    client = _default_sync()
    return client.run(ops.retrieve_batch(client.async_client, batch_id, **options))


async def aretrieve_batch(batch_id: str, **options: Any) -> Batch:
    from llmplex.batches import ops

    return await ops.retrieve_batch(_default_async(), batch_id, **options)


def cancel_batch(batch_id: str, **options: Any) -> Batch:
    from llmplex.batches import ops

    client = _default_sync()
    return client.run(ops.cancel_batch(client.async_client, batch_id, **options))


async def acancel_batch(batch_id: str, **options: Any) -> Batch:
    from llmplex.batches import ops

    return await ops.cancel_batch(_default_async(), batch_id, **options)


def list_batches(after: str | None = None, limit: int | None = None, **options: Any) -> ListPage[Batch]:
    from llmplex.batches import ops

    client = _default_sync()
    return client.run(ops.list_batches(client.async_client, after, limit, **options))


async def alist_batches(after: str | None = None, limit: int | None = None, **options: Any) -> ListPage[Batch]:
    from llmplex.batches import ops

    return await ops.list_batches(_default_async(), after, limit, **options)


# --- batch_completion through a batch API, without blocking ----------------------------------------


class SyncBatchJob:
    """The blocking face of a ``BatchJob`` (its calls run on the default client's loop)."""

    def __init__(self, job: BatchJob) -> None:
        self.job = job

    @property
    def id(self) -> str:
        return self.job.id

    @classmethod
    def load(cls, job_id_or_checkpoint: str | os.PathLike[str], **options: Any) -> SyncBatchJob:
        from llmplex.batches import job

        return cls(job.BatchJob.load(_default_sync().async_client, job_id_or_checkpoint, **options))

    def status(self) -> JobStatus:
        return _default_sync().run(self.job.status())

    def wait(self, **options: Any) -> JobStatus:
        return _default_sync().run(self.job.wait(**options))

    def results(self) -> list[Any]:
        return _default_sync().run(self.job.results())

    def cancel(self) -> JobStatus:
        return _default_sync().run(self.job.cancel())


def submit_batch_completion(model: str, messages: list[list[dict[str, Any]]], **options: Any) -> SyncBatchJob:
    """Submit prompts to the provider's batch API (half price) and return a handle without waiting."""
    from llmplex.batches import job

    client = _default_sync()
    return SyncBatchJob(client.run(job.submit_batch_completion(client.async_client, model, messages, **options)))


async def asubmit_batch_completion(model: str, messages: list[list[dict[str, Any]]], **options: Any) -> BatchJob:
    """Submit prompts to the provider's batch API (half price) and return a ``BatchJob`` without waiting."""
    from llmplex.batches import job

    return await job.submit_batch_completion(_default_async(), model, messages, **options)
