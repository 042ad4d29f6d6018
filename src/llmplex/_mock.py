"""``mock_response=...``: a well-formed response or stream without any network call (LiteLLM-compatible)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from llmplex.cost import HiddenParams
from llmplex.exceptions import (
    APIStatusError,
    BadRequestError,
    ContentPolicyViolationError,
    ContextWindowExceededError,
    InternalServerError,
    RateLimitError,
)
from llmplex.providers.base import StreamState
from llmplex.types import ModelResponse, ModelResponseStream, new_completion_id

if TYPE_CHECKING:
    from llmplex._request import ResolvedCall
    from llmplex._streaming import CompletionStream

__all__ = ["mock_completion"]

_MOCK_ERRORS: dict[str, type[APIStatusError]] = {
    "litellm.RateLimitError": RateLimitError,
    "litellm.ContextWindowExceededError": ContextWindowExceededError,
    "litellm.ContentPolicyViolationError": ContentPolicyViolationError,
    "litellm.InternalServerError": InternalServerError,
}


async def mock_completion(call: ResolvedCall) -> ModelResponse | CompletionStream:
    mock = call.mock_response
    if call.mock_delay > 0:
        await asyncio.sleep(call.mock_delay)
    if isinstance(mock, BaseException):
        raise mock
    if isinstance(mock, ModelResponse):
        return mock
    if not isinstance(mock, str):
        raise BadRequestError("mock_response must be a string, a ModelResponse or an exception", param="mock_response")
    model = call.request.model
    error = _MOCK_ERRORS.get(mock)
    if error is not None:  # LiteLLM's named mock errors, e.g. mock_response="litellm.RateLimitError"
        raise error(f"This is a mock {mock.removeprefix('litellm.')}", provider=call.adapter.name, model=model)
    n = call.request.params.get("n") or 1
    prompt_tokens = sum(len(str(m.get("content") or "").split()) for m in call.request.messages)
    completion_tokens = len(mock.split()) * n
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    if call.request.stream:
        return _mock_stream(call, mock, usage, n)
    response = ModelResponse.build(model=model, content=mock, usage=usage)
    if n > 1:  # LiteLLM's mock: n identical choices
        first = response.choices[0]
        response.choices = [first, *(first.model_copy(update={"index": i}, deep=True) for i in range(1, n))]
    hidden = HiddenParams(call.hidden)
    hidden["mock"] = True
    hidden.bind_response(response)
    response._hidden_params = hidden
    return response


class _EmptyRaw:
    """Stands in for an HTTP body that is already fully read."""

    headers: Mapping[str, str] = MappingProxyType({})

    async def read_chunk(self) -> bytes:
        return b""

    def release_if_received(self) -> bool:
        return True

    def close(self) -> None:
        pass


def _mock_stream(call: ResolvedCall, text: str, usage: dict[str, int], n: int) -> CompletionStream:
    from llmplex._streaming import CompletionStream

    response_id, created, model = new_completion_id(), int(time.time()), call.request.model

    def chunk(delta: dict[str, Any], finish: str | None = None, index: int = 0, **extra: Any) -> ModelResponseStream:
        choice = {"index": index, "delta": delta, "finish_reason": finish, "logprobs": None}
        body = {"id": response_id, "object": "chat.completion.chunk", "created": created, "model": model}
        return ModelResponseStream.model_validate({**body, "system_fingerprint": None, "choices": [choice], **extra})

    words = text.split(" ")
    chunks = []
    for index in range(n):
        chunks.append(chunk({"role": "assistant", "content": ""}, index=index))
        chunks += [chunk({"content": w if i == 0 else " " + w}, index=index) for i, w in enumerate(words)]
        chunks.append(chunk({}, "stop", index=index))
    if call.request.include_usage:
        last = chunk({}, None, usage=usage)
        last.choices = []
        chunks.append(last)
    stream = CompletionStream(
        _EmptyRaw(),  # type: ignore[arg-type]
        _MockAdapter(),  # type: ignore[arg-type]
        call.request,
        first_token_timeout=call.first_token_timeout,
        idle_timeout=call.idle_timeout,
        hidden_params={**call.hidden, "mock": True},
    )
    stream.preload(chunks)
    return stream


class _MockAdapter:
    name = "mock"
    relays_wire = False

    def parse_event(self, event: Any, state: StreamState) -> list[ModelResponseStream]:
        return []  # never called: the stream is preloaded and finished

    def new_stream_state(self, request: Any) -> StreamState:
        state = StreamState(request.model)
        state.finished = True
        return state
