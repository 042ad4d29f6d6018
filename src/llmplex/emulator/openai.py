"""OpenAI Chat Completions: ``chat.completion`` bodies, ``chat.completion.chunk`` streams ending in ``[DONE]``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from llmplex.emulator.conversation import Conversation, Reply, new_id, word_count
from llmplex.emulator.dialect import SSE, Dialect, Failure, Incoming, StreamPlan, bearer_token, mask_key
from llmplex.emulator.sse import DONE, data_event

__all__ = ["OpenAIDialect", "message_texts"]

_MISSING_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer "
    "auth (i.e. Authorization: Bearer YOUR_KEY). You can obtain an API key from "
    "https://platform.openai.com/account/api-keys."
)
# status -> (type, code, message); {model} is filled in
_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request (emulated)."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: (
        "invalid_request_error",
        "unsupported_country_region_territory",
        "Country, region, or territory not supported",
    ),
    404: (
        "invalid_request_error",
        "model_not_found",
        "The model `{model}` does not exist or you do not have access to it.",
    ),
    429: (
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for {model} in organization org-emulator on requests per min (RPM): Limit 3, Used 3, "
        "Requested 1. Please try again in 20s.",
    ),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    503: ("server_error", None, "The engine is currently overloaded, please try again later"),
}
_FINGERPRINT = "fp_emulator"
_MALFORMED = b'data: {"id": "chatcmpl-malformed", "object": "chat.completion.chunk", "choices": [{"delta": \n\n'
_ZERO_USAGE_DETAILS = {
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {
        "reasoning_tokens": 0,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    },
}


def _content_texts(content: Any) -> Iterator[str]:
    if isinstance(content, str):
        yield content
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                yield part["text"]


def message_texts(messages: list[Any]) -> tuple[str, list[str]]:
    """(last user message text, every message's text) for OpenAI-shaped messages (also Cohere v2)."""
    texts: list[str] = []
    last_user = ""
    for message in messages:
        if not isinstance(message, dict):
            continue
        own = list(_content_texts(message.get("content")))
        texts.extend(own)
        if message.get("role") == "user":
            last_user = " ".join(own)
    return last_user, texts


def first_function_name(tools: Any) -> str | None:
    """The first ``{"type": "function", "function": {"name": ...}}`` tool's name."""
    if isinstance(tools, list) and tools and isinstance(tools[0], dict):
        function = tools[0].get("function")
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            return str(function["name"])
    return None


class OpenAIDialect(Dialect):
    name = "openai"

    def response_headers(self) -> list[tuple[bytes, bytes]]:
        return [(b"x-request-id", new_id("req_").encode()), (b"openai-processing-ms", b"1")]

    def authenticate(self, incoming: Incoming) -> Failure | None:
        key = bearer_token(incoming.headers)
        if key is None:
            return self._error(401, "invalid_request_error", None, _MISSING_KEY)
        if key == "bad-key":
            message = f"Incorrect API key provided: {mask_key(key)}. You can find your API key at https://platform.openai.com/account/api-keys."
            return self._error(401, "invalid_request_error", "invalid_api_key", message)
        return None

    def validate(self, payload: dict[str, Any]) -> Failure | None:
        if not isinstance(payload.get("model"), str):
            return self._error(400, "invalid_request_error", None, "you must provide a model parameter")
        return self.validate_messages(payload)

    def validate_messages(self, payload: dict[str, Any]) -> Failure | None:
        messages = payload.get("messages")
        if not isinstance(messages, list):
            return self._error(
                400,
                "invalid_request_error",
                "missing_required_parameter",
                "Missing required parameter: 'messages'.",
                "messages",
            )
        if not messages:
            return self._error(400, "invalid_request_error", None, "[] is too short - 'messages'", "messages")
        if "stream_options" in payload and payload.get("stream") is not True:
            message = "The 'stream_options' parameter is only allowed when 'stream' is enabled."
            return self._error(400, "invalid_request_error", None, message, "stream_options")
        return None

    def model_name(self, incoming: Incoming, payload: dict[str, Any]) -> str:
        return str(payload.get("model", ""))

    def conversation(self, payload: dict[str, Any]) -> Conversation:
        last_user, texts = message_texts(payload["messages"])
        tool = first_function_name(payload.get("tools"))
        if tool is None:
            functions = payload.get("functions")  # the deprecated predecessor of tools
            if isinstance(functions, list) and functions and isinstance(functions[0], dict):
                tool = functions[0].get("name")
        return Conversation(last_user, word_count(texts), tool)

    def failure(
        self, status: int, message: str | None = None, *, model: str = "", retry_after: int | None = None
    ) -> Failure:
        kind, code, stock = _ERRORS.get(
            status, ("server_error" if status >= 500 else "invalid_request_error", None, "")
        )
        text = message or stock.format(model=model) or f"Emulated error (status {status})."
        return self._error(status, kind, code, text)

    def _error(self, status: int, kind: str, code: str | None, message: str, param: str | None = None) -> Failure:
        body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
        return Failure(status, orjson.dumps(body))

    def completion(self, reply: Reply, incoming: Incoming, payload: dict[str, Any]) -> bytes:
        message: dict[str, Any]
        if reply.tool_name is not None:
            message = {"role": "assistant", "content": None, "tool_calls": [self._tool_call(reply, reply.arguments)]}
            message.update(refusal=None, annotations=[])
        else:
            message = {"role": "assistant", "content": reply.text, "refusal": None, "annotations": []}
        body = {
            "id": new_id("chatcmpl-"),
            "object": "chat.completion",
            "created": reply.created,
            "model": reply.model,
            "system_fingerprint": _FINGERPRINT,
            "service_tier": "default",
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": self._finish(reply)}],
            "usage": self._usage(reply),
        }
        self.decorate_completion(body)
        return orjson.dumps(body)

    def decorate_completion(self, body: dict[str, Any]) -> None:
        """Hook for OpenAI-compatible services that add fields (Azure's content filter results)."""

    def stream(self, reply: Reply, incoming: Incoming, payload: dict[str, Any]) -> StreamPlan:
        options = payload.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        base: dict[str, Any] = {
            "id": new_id("chatcmpl-"),
            "object": "chat.completion.chunk",
            "created": reply.created,
            "model": reply.model,
            "system_fingerprint": _FINGERPRINT,
        }
        if include_usage:
            base["usage"] = None

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return data_event({**base, "choices": [choice]})

        if reply.tool_name is not None:
            opening = {"role": "assistant", "content": None, "tool_calls": [{"index": 0, **self._tool_call(reply, "")}]}
            pieces = [chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}) for piece in reply.pieces]
        else:
            opening = {"role": "assistant", "content": "", "refusal": None}
            pieces = [chunk({"content": piece}) for piece in reply.pieces]
        epilogue = chunk({}, self._finish(reply))
        if include_usage:
            epilogue += data_event({**base, "choices": [], "usage": self._usage(reply)})
        return StreamPlan(
            media_type=SSE,
            prelude=self.stream_preamble(reply) + chunk(opening),
            chunks=pieces,
            epilogue=epilogue + DONE,
            error_event=data_event(orjson.loads(self.failure(500).body)),
            malformed=_MALFORMED,
        )

    def stream_preamble(self, reply: Reply) -> bytes:
        """Hook for events some OpenAI-compatible services send before the first choice (Azure)."""
        return b""

    @staticmethod
    def _tool_call(reply: Reply, arguments: str) -> dict[str, Any]:
        function = {"name": reply.tool_name, "arguments": arguments}
        return {"id": new_id("call_"), "type": "function", "function": function}

    @staticmethod
    def _finish(reply: Reply) -> str:
        return "tool_calls" if reply.tool_name is not None else "stop"

    @staticmethod
    def _usage(reply: Reply) -> dict[str, Any]:
        counts = {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.total_tokens,
        }
        return {**counts, **_ZERO_USAGE_DETAILS}
