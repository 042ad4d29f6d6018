"""Everything llmplex raises.

::

    LLMplexError
    ├── ConfigError                         bad client or proxy configuration
    ├── APIError                            .provider .model .status_code .body .code .type .param
    │   ├── APIConnectionError                  .request_id .retry_after .retryable
    │   │   └── Timeout
    │   ├── APIStatusError                  one class per status, see status_error_class()
    │   │   ├── BadRequestError (400)
    │   │   │   ├── ContextWindowExceededError, ContentPolicyViolationError
    │   │   │   ├── UnsupportedParamsError   param not supported by the provider (drop_params off)
    │   │   │   └── UnknownModelError        raised locally, before any request
    │   │   ├── AuthenticationError (401)    also raised locally for a missing key
    │   │   ├── PermissionDeniedError (403), NotFoundError (404), ConflictError (409),
    │   │   │   UnprocessableEntityError (422)
    │   │   ├── RateLimitError (429)
    │   │   └── InternalServerError (5xx)
    │   │       └── ServiceUnavailableError (503, Anthropic 529)
    │   └── StreamError                     error event, malformed data, or no terminal event
    └── AllModelsFailedError                also an ExceptionGroup: one typed error per model
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import ValidationError

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "AllModelsFailedError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigError",
    "ConflictError",
    "ContentPolicyViolationError",
    "ContextWindowExceededError",
    "InternalServerError",
    "LLMplexError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ServiceUnavailableError",
    "StreamError",
    "Timeout",
    "UnknownModelError",
    "UnprocessableEntityError",
    "UnsupportedParamsError",
    "status_error_class",
]


class LLMplexError(Exception):
    """Base of every error llmplex raises."""


class ConfigError(LLMplexError, ValueError):
    """Bad configuration; the message names the place (key path, line)."""


class APIError(LLMplexError):
    status_code: int | None = None
    error_type: str = "api_error"

    def __init__(  # noqa: PLR0913
        self,
        message: str,
        *,
        provider: str | None = None,
        model: str | None = None,
        status_code: int | None = None,
        body: Any = None,
        code: str | None = None,
        type: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.model = model
        if status_code is not None:
            self.status_code = status_code
        self.body = body
        self.code = code
        self.type = type or self.error_type
        self.param = param
        self.request_id = request_id
        self.retry_after = retry_after

    @property
    def llm_provider(self) -> str | None:
        """LiteLLM's name for ``provider``."""
        return self.provider

    @property
    def retryable(self) -> bool:
        return False

    def __str__(self) -> str:
        where = "/".join(p for p in (self.provider, self.model) if p)
        prefix = f"{type(self).__name__}"
        if self.status_code is not None:
            prefix += f" ({self.status_code})"
        return f"{prefix} from {where}: {self.message}" if where else f"{prefix}: {self.message}"

    def __reduce__(self) -> tuple[Any, ...]:
        # keep keyword fields through pickling (multiprocessing, checkpoint round trips)
        return (_rebuild, (type(self), self.message, self.__dict__.copy()))


def _rebuild(cls: type[APIError], message: str, state: dict[str, Any]) -> APIError:
    err = cls.__new__(cls)
    LLMplexError.__init__(err, message)
    err.__dict__.update(state)
    return err


class APIConnectionError(APIError):
    error_type = "api_connection_error"

    @property
    def retryable(self) -> bool:
        return True


class Timeout(APIConnectionError):
    status_code = 408
    error_type = "timeout"


class StreamError(APIError):
    error_type = "stream_error"


class APIStatusError(APIError):
    status_code: int | None = None

    @property
    def retryable(self) -> bool:
        return self.status_code in (408, 409, 429) or (self.status_code or 0) >= 500


class BadRequestError(APIStatusError):
    status_code = 400
    error_type = "invalid_request_error"


class ContextWindowExceededError(BadRequestError):
    pass


class ContentPolicyViolationError(BadRequestError):
    pass


class UnsupportedParamsError(BadRequestError):
    pass


class UnknownModelError(BadRequestError):
    pass


class AuthenticationError(APIStatusError):
    status_code = 401
    error_type = "authentication_error"


class PermissionDeniedError(APIStatusError):
    status_code = 403
    error_type = "permission_error"


class NotFoundError(APIStatusError):
    status_code = 404
    error_type = "not_found_error"


class ConflictError(APIStatusError):
    status_code = 409
    error_type = "conflict_error"


class UnprocessableEntityError(APIStatusError):
    status_code = 422
    error_type = "invalid_request_error"


class RateLimitError(APIStatusError):
    status_code = 429
    error_type = "rate_limit_error"


class InternalServerError(APIStatusError):
    status_code = 500
    error_type = "server_error"


class ServiceUnavailableError(InternalServerError):
    status_code = 503
    error_type = "service_unavailable"


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
    503: ServiceUnavailableError,
    529: ServiceUnavailableError,
}


def status_error_class(status: int) -> type[APIStatusError]:
    """HTTP status -> exception class (status first, like the openai SDK)."""
    cls = _BY_STATUS.get(status)
    if cls is not None:
        return cls
    if status >= 500:
        return InternalServerError
    return APIStatusError


class AllModelsFailedError(ExceptionGroup[Exception], LLMplexError):
    """Every model of a race or fan-out failed; holds each model's own typed error.

    ``except* RateLimitError`` picks out the rate-limited models.
    """

    def __new__(cls, message: str, errors: Sequence[Exception]) -> AllModelsFailedError:
        return super().__new__(cls, message, list(errors))

    def derive(self, excs: Sequence[Exception]) -> AllModelsFailedError:  # type: ignore[override]
        return AllModelsFailedError(self.message, excs)

    @property
    def status_code(self) -> int:
        """The most meaningful member's status, for the proxy."""
        return most_meaningful(self.exceptions).status_code or 500 if self.exceptions else 500


def most_meaningful(errors: Sequence[BaseException]) -> APIError:
    """The error that best explains a set of failures: client errors over rate limits over server errors."""
    api_errors = [e for e in errors if isinstance(e, APIError)]
    if not api_errors:
        return InternalServerError("; ".join(str(e) for e in errors) or "all attempts failed")

    def rank(err: APIError) -> int:
        status = err.status_code or 500
        if isinstance(err, (BadRequestError, AuthenticationError, PermissionDeniedError, NotFoundError)):
            return 0
        if status == 429:
            return 1
        if isinstance(err, Timeout):
            return 2
        return 3

    return min(api_errors, key=rank)


def unreadable_response(exc: ValidationError, provider: str | None, model: str | None) -> StreamError:
    """The typed error for a body that is JSON but not a chat completion (what is wrong, not the content)."""
    first = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    return StreamError(
        f"{provider or 'the provider'} returned a response that is not a chat completion ({where}: {first['msg']})",
        provider=provider,
        model=model,
    )
