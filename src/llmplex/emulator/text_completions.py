"""OpenAI's legacy ``POST /v1/completions``: ``text_completion`` bodies, and streams of ``text_completion``
chunks ending in ``[DONE]``. The reply echoes the prompt (``"Echo: " + prompt``); a list of prompts gets one
choice per prompt (a stream echoes the last one).
"""

from __future__ import annotations

from typing import Any

import orjson

from llmplex.emulator.conversation import Conversation, Reply, new_id, word_count
from llmplex.emulator.dialect import SSE, Failure, Incoming, StreamPlan
from llmplex.emulator.openai import OpenAIDialect
from llmplex.emulator.sse import DONE, data_event

__all__ = ["TextCompletionDialect"]


def _prompts(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value:
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return [" ".join(str(v) for v in value)]
        if all(isinstance(v, str) for v in value):
            return list(value)
    return None


class TextCompletionDialect(OpenAIDialect):
    name = "openai-text"

    def validate(self, payload: dict[str, Any]) -> Failure | None:
        if not isinstance(payload.get("model"), str):
            return self._error(400, "invalid_request_error", None, "you must provide a model parameter")
        if _prompts(payload.get("prompt")) is None:
            return self._error(400, "invalid_request_error", None, "'$.prompt' is invalid.", "prompt")
        if "stream_options" in payload and payload.get("stream") is not True:
            message = "The 'stream_options' parameter is only allowed when 'stream' is enabled."
            return self._error(400, "invalid_request_error", None, message, "stream_options")
        return None

    def conversation(self, payload: dict[str, Any]) -> Conversation:
        prompts = _prompts(payload["prompt"]) or [""]
        return Conversation(prompts[-1], word_count(prompts), None)

    def completion(self, reply: Reply, incoming: Incoming, payload: dict[str, Any]) -> bytes:
        prompts = _prompts(payload["prompt"]) or [""]
        texts = ["Echo: " + prompt for prompt in prompts]
        choices = [{"text": t, "index": i, "logprobs": None, "finish_reason": "stop"} for i, t in enumerate(texts)]
        completion_tokens = word_count(texts)
        usage = {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": reply.prompt_tokens + completion_tokens,
        }
        body = {
            "id": new_id("cmpl-"),
            "object": "text_completion",
            "created": reply.created,
            "model": reply.model,
            "system_fingerprint": None,
            "choices": choices,
            "usage": usage,
        }
        return orjson.dumps(body)

    def stream(self, reply: Reply, incoming: Incoming, payload: dict[str, Any]) -> StreamPlan:
        options = payload.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        base = {"id": new_id("cmpl-"), "object": "text_completion", "created": reply.created, "model": reply.model}

        def chunk(text: str, finish: str | None = None) -> bytes:
            choice = {"text": text, "index": 0, "logprobs": None, "finish_reason": finish}
            return data_event({**base, "choices": [choice]})

        epilogue = chunk("", "stop")
        if include_usage:
            usage = {
                "prompt_tokens": reply.prompt_tokens,
                "completion_tokens": reply.completion_tokens,
                "total_tokens": reply.total_tokens,
            }
            epilogue += data_event({**base, "choices": [], "usage": usage})
        return StreamPlan(
            media_type=SSE,
            prelude=b"",
            chunks=[chunk(piece) for piece in reply.pieces],
            epilogue=epilogue + DONE,
            error_event=data_event(orjson.loads(self.failure(500).body)),
            malformed=b'data: {"id": "cmpl-malformed", "object": "text_completion", "choices": [{"text": \n\n',
        )
