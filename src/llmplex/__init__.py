"""llmplex: fan LLM calls out and back in.

``completion`` / ``acompletion`` speak each provider's wire format and return OpenAI-shaped
responses; the batch functions fan one prompt out to many models (fastest wins, or all answers)
or many prompts into one model. Sync functions run on one background event loop.
"""

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
from llmplex.router import Router
from llmplex.text_completions import TextCompletionStream
from llmplex.types import ModelResponse, ModelResponseStream, Usage

__version__ = "0.1.0"

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
    "acompletion",
    "aembedding",
    "aiter_batch_completion",
    "atext_completion",
    "batch_completion",
    "batch_completion_models",
    "batch_completion_models_all_responses",
    "completion",
    "completion_cost",
    "embedding",
    "iter_batch_completion",
    "register_provider",
    "resolve_model",
    "text_completion",
]
