"""llmplex: fan LLM calls out and back in.

``completion`` / ``acompletion`` speak each provider's wire format and return OpenAI-shaped
responses; the batch functions fan one prompt out to many models (fastest wins, or all answers)
or many prompts into one model. Sync functions run on one background event loop.
"""

import typing as _typing

from llmplex._api import (
    abatch_completion,
    abatch_completion_models,
    abatch_completion_models_all_responses,
    acompletion,
    aembedding,
    aiter_batch_completion,
    atext_completion,
    batch_completion,
    batch_completion_models,
    batch_completion_models_all_responses,
    completion,
    embedding,
    iter_batch_completion,
    text_completion,
)
from llmplex._streaming import CompletionStream
from llmplex._sync import Client, SyncStream
from llmplex.batches.api import (
    SyncBatchJob,
    acancel_batch,
    acreate_batch,
    acreate_file,
    afile_content,
    afile_delete,
    afile_list,
    afile_retrieve,
    alist_batches,
    aretrieve_batch,
    asubmit_batch_completion,
    cancel_batch,
    create_batch,
    create_file,
    file_content,
    file_delete,
    file_list,
    file_retrieve,
    list_batches,
    retrieve_batch,
    submit_batch_completion,
)
from llmplex.client import AsyncClient
from llmplex.config import ClientConfig
from llmplex.cost import completion_cost
from llmplex.endpoint_types import EmbeddingResponse, TextCompletionResponse
from llmplex.exceptions import (
    AllModelsFailedError,
    APIConnectionError,
    APIError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConfigError,
    ConflictError,
    ContentPolicyViolationError,
    ContextWindowExceededError,
    InternalServerError,
    LLMplexError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServiceUnavailableError,
    StreamError,
    Timeout,
    UnknownModelError,
    UnprocessableEntityError,
    UnsupportedParamsError,
)
from llmplex.providers import register_provider, resolve_model
from llmplex.text_completions import TextCompletionStream
from llmplex.types import ModelResponse, ModelResponseStream, Usage

if _typing.TYPE_CHECKING:
    from llmplex.router import Router

__version__ = "0.1.0"


def __getattr__(name: str) -> _typing.Any:
    # the Router (and its routing core) costs ~80 ms to import: loaded on first use, not by ``import llmplex``
    if name == "Router":
        from llmplex.router import Router

        globals()["Router"] = Router
        return Router
    raise AttributeError(f"module 'llmplex' has no attribute {name!r}")


__all__ = [
    "AllModelsFailedError",
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "AsyncClient",
    "AuthenticationError",
    "BadRequestError",
    "Client",
    "ClientConfig",
    "CompletionStream",
    "ConfigError",
    "ConflictError",
    "ContentPolicyViolationError",
    "ContextWindowExceededError",
    "EmbeddingResponse",
    "InternalServerError",
    "LLMplexError",
    "ModelResponse",
    "ModelResponseStream",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "Router",
    "ServiceUnavailableError",
    "StreamError",
    "SyncBatchJob",
    "SyncStream",
    "TextCompletionResponse",
    "TextCompletionStream",
    "Timeout",
    "UnknownModelError",
    "UnprocessableEntityError",
    "UnsupportedParamsError",
    "Usage",
    "__version__",
    "abatch_completion",
    "abatch_completion_models",
    "abatch_completion_models_all_responses",
    "acancel_batch",
    "acompletion",
    "acreate_batch",
    "acreate_file",
    "aembedding",
    "afile_content",
    "afile_delete",
    "afile_list",
    "afile_retrieve",
    "aiter_batch_completion",
    "alist_batches",
    "aretrieve_batch",
    "asubmit_batch_completion",
    "atext_completion",
    "batch_completion",
    "batch_completion_models",
    "batch_completion_models_all_responses",
    "cancel_batch",
    "completion",
    "completion_cost",
    "create_batch",
    "create_file",
    "embedding",
    "file_content",
    "file_delete",
    "file_list",
    "file_retrieve",
    "iter_batch_completion",
    "list_batches",
    "register_provider",
    "resolve_model",
    "retrieve_batch",
    "submit_batch_completion",
    "text_completion",
]
