"""``text_completion``: LiteLLM's legacy text-completion call, answered in OpenAI's ``text_completion`` shape.

Routing (LiteLLM's rule): the native ``/completions`` endpoint for ``text-completion-openai/<model>``,
``azure_text/<deployment>``, and ``openai/<model>`` unless the model is a known OpenAI chat model (so an
OpenAI-compatible server behind ``openai/`` + ``api_base`` gets the real endpoint); every other model goes
through chat, one chat request per prompt (run concurrently), each answer becoming one choice. A chat-path
stream carries one prompt. Token-array prompts need the native endpoint.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from types import TracebackType
from typing import TYPE_CHECKING, Any

from llmplex._request import CALL_SETTINGS, resolve_call
from llmplex._sse import SSEDecoder
from llmplex._streaming import CompletionStream
from llmplex._transport import RawStream
from llmplex.cost import HiddenParams
from llmplex.endpoint_types import TextCompletionResponse, new_text_completion_id
from llmplex.exceptions import BadRequestError, StreamError, Timeout, UnsupportedParamsError
from llmplex.providers import resolve_model
from llmplex.providers.catalog import provider_for_bare_name
from llmplex.providers.openai_text import OpenAITextCompletions
from llmplex.types import ModelResponse, ModelResponseStream

if TYPE_CHECKING:
    from llmplex.client import AsyncClient

__all__ = ["TextCompletionStream", "native_text_completion", "text_completion"]

_NATIVE_PREFIXES = {"text-completion-openai": "openai", "azure_text": "azure"}
# completion-only parameters that chat has no field for
_TEXT_ONLY = frozenset({"best_of", "echo", "suffix", "logprobs"})


def native_text_completion(model: str, custom_llm_provider: str | None = None) -> bool:
    """True when ``model`` is served by the native ``/completions`` endpoint (see the module docstring)."""
    prefix, slash, _ = model.partition("/")
    if (slash and prefix in _NATIVE_PREFIXES) or custom_llm_provider in _NATIVE_PREFIXES:
        return True
    provider, model_id = resolve_model(model, custom_llm_provider=custom_llm_provider)
    if provider != "openai":
        return False
    if "instruct" in model_id or model_id in ("davinci-002", "babbage-002"):
        return True
    return provider_for_bare_name(model_id) != "openai"  # a known OpenAI chat family goes through chat


def _prompts(prompt: Any) -> tuple[list[Any], bool]:
    """``(prompts, are_token_arrays)``; raises for empty or mistyped prompts."""
    if isinstance(prompt, str):
        return [prompt], False
    if isinstance(prompt, list) and prompt:
        if all(isinstance(p, int) and not isinstance(p, bool) for p in prompt):
            return [prompt], True
        if all(isinstance(p, str) for p in prompt):
            return list(prompt), False
        if all(isinstance(p, list) and p and all(isinstance(t, int) for t in p) for p in prompt):
            return list(prompt), True
    raise BadRequestError("prompt must be a string, a list of strings, or token arrays", param="prompt")


async def text_completion(
    client: AsyncClient, model: str, prompt: Any, **options: Any
) -> TextCompletionResponse | TextCompletionStream:
    prompts, token_arrays = _prompts(prompt)
    stream = bool(options.pop("stream", False))
    provider_hint = options.get("custom_llm_provider")
    if native_text_completion(model, provider_hint):
        return await _native(client, model, prompt, stream, options)
    if token_arrays:
        raise UnsupportedParamsError(f"{model}: token-array prompts need a native /completions endpoint")
    return await _through_chat(client, model, prompts, stream, options)


async def _native(
    client: AsyncClient, model: str, prompt: Any, stream: bool, options: dict[str, Any]
) -> TextCompletionResponse | TextCompletionStream:
    prefix, slash, rest = model.partition("/")
    if slash and prefix in _NATIVE_PREFIXES:
        model = f"{_NATIVE_PREFIXES[prefix]}/{rest}"
    settings = {k: v for k, v in options.items() if k in CALL_SETTINGS}
    call = resolve_call(model, [{"role": "user", "content": ""}], settings, client.config)
    assert call.endpoint is not None
    params: dict[str, Any] = {}
    for key, value in options.items():
        if value is None or key in CALL_SETTINGS:
            continue
        if key == "extra_body":
            if not isinstance(value, dict):
                raise BadRequestError("extra_body must be a dict", param="extra_body")
            params.update(value)
        else:
            params[key] = value  # completions parameters and provider extras alike go in the body
    adapter = OpenAITextCompletions(call.adapter)
    model_id = call.request.model
    http = adapter.build_request(model_id, prompt, params, stream, call.endpoint)
    if stream:
        raw = await client.open_raw_stream(
            http, call.adapter, model_id, timeout=call.timeout, num_retries=call.num_retries
        )
        return TextCompletionStream.native(raw, adapter, call.idle_timeout)
    started = time.perf_counter()
    _, body = await client.send_json(http, call.adapter, model_id, timeout=call.timeout, num_retries=call.num_retries)
    response = adapter.parse_response(body)
    hidden = HiddenParams(call.hidden)
    hidden["api_base"] = call.endpoint.base_url
    hidden["response_ms"] = (time.perf_counter() - started) * 1000.0
    usage = response.usage
    hidden.bind(model_id, usage.prompt_tokens if usage else 0, usage.completion_tokens if usage else 0)
    response._hidden_params = hidden
    return response


def _chat_options(options: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    drop = options.get("drop_params")
    for key, value in options.items():
        if key in _TEXT_ONLY and value is not None:
            if drop:
                continue
            raise UnsupportedParamsError(
                f"'{key}' needs a native /completions endpoint; this model is answered through chat. "
                "Pass drop_params=True to drop it.",
                param=key,
            )
        out[key] = value
    return out


async def _through_chat(
    client: AsyncClient, model: str, prompts: list[Any], stream: bool, options: dict[str, Any]
) -> TextCompletionResponse | TextCompletionStream:
    chat_options = _chat_options(options)
    if stream:
        if len(prompts) != 1:
            raise BadRequestError("a streamed text completion through chat takes one prompt", param="prompt")
        chat_stream = await client.completion(model, _messages(prompts[0]), stream=True, **chat_options)
        assert isinstance(chat_stream, CompletionStream)
        return TextCompletionStream.from_chat(chat_stream)
    answers = await asyncio.gather(*(client.completion(model, _messages(p), **chat_options) for p in prompts))
    texts: list[str] = []
    reasons: list[str | None] = []
    prompt_tokens = completion_tokens = 0
    for answer in answers:
        assert isinstance(answer, ModelResponse)
        for choice in answer.choices:
            texts.append(choice.message.content or "")
            reasons.append(choice.finish_reason)
        if answer.usage is not None:
            prompt_tokens += answer.usage.prompt_tokens
            completion_tokens += answer.usage.completion_tokens
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    first = answers[0]
    assert isinstance(first, ModelResponse)
    response = TextCompletionResponse.build(
        model=first.model or model, texts=texts, finish_reasons=reasons, usage=usage
    )
    hidden = HiddenParams(first.hidden_params)
    hidden.bind(first.hidden_params.get("model") or first.model, prompt_tokens, completion_tokens)
    response._hidden_params = hidden
    return response


def _messages(prompt: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": prompt}]


class TextCompletionStream:
    """An async iterator of ``TextCompletionResponse`` chunks (and an async context manager).

    From a native ``/completions`` stream (chunks parsed as they arrive) or from a chat stream (each content
    delta becomes a ``text`` chunk). ``close()`` abandons the upstream request.
    """

    def __init__(self, chunks: AsyncIterator[TextCompletionResponse], closer: Any) -> None:
        self._chunks = chunks
        self._closer = closer

    @classmethod
    def native(cls, raw: RawStream, adapter: OpenAITextCompletions, idle_timeout: float) -> TextCompletionStream:
        return cls(_native_chunks(raw, adapter, idle_timeout), raw.close)

    @classmethod
    def from_chat(cls, stream: CompletionStream) -> TextCompletionStream:
        return cls(_chat_chunks(stream), stream.close)

    def __aiter__(self) -> TextCompletionStream:
        return self

    async def __anext__(self) -> TextCompletionResponse:
        return await self._chunks.__anext__()

    def close(self) -> None:
        self._closer()

    async def aclose(self) -> None:
        self.close()
        closer = getattr(self._chunks, "aclose", None)
        if closer is not None:
            await closer()

    async def __aenter__(self) -> TextCompletionStream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


async def _native_chunks(
    raw: RawStream, adapter: OpenAITextCompletions, idle_timeout: float
) -> AsyncIterator[TextCompletionResponse]:
    decoder = SSEDecoder()
    try:
        while True:
            try:
                data = await asyncio.wait_for(raw.read_chunk(), idle_timeout)
            except TimeoutError:
                raise Timeout(f"no stream data for {idle_timeout:g}s", provider=adapter.name) from None
            if not data:
                raise StreamError(f"{adapter.name} ended the stream without [DONE]", provider=adapter.name)
            for event in decoder.feed(data):
                if event.data.startswith("[DONE]"):
                    raw.release_if_received()  # the body is complete: the connection goes back to the pool
                    return
                chunk = adapter.parse_event(event)
                if chunk is not None:
                    yield chunk
    finally:
        raw.close()


async def _chat_chunks(stream: CompletionStream) -> AsyncIterator[TextCompletionResponse]:
    response_id = new_text_completion_id()
    try:
        async for chunk in stream:
            text_chunk = _text_chunk(chunk, response_id)
            if text_chunk is not None:
                yield text_chunk
    finally:
        stream.close()


def _text_chunk(chunk: ModelResponseStream, response_id: str) -> TextCompletionResponse | None:
    choices = [
        {"text": c.delta.content or "", "index": c.index, "logprobs": None, "finish_reason": c.finish_reason}
        for c in chunk.choices
        if c.delta.content or c.finish_reason
    ]
    if not choices and chunk.usage is None:
        return None
    body: dict[str, Any] = {
        "id": response_id,
        "object": "text_completion",
        "created": chunk.created,
        "model": chunk.model,
        "choices": choices,
    }
    if chunk.usage is not None:
        body["usage"] = chunk.usage.model_dump()
    return TextCompletionResponse.model_validate(body)
