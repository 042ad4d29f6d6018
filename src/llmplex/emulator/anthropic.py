"""Anthropic Messages: ``message`` bodies and named-event streams (``message_start`` ... ``message_stop``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from llmplex.emulator.conversation import TOOL_ARGUMENTS, Conversation, Reply, new_id, word_count
from llmplex.emulator.dialect import SSE, Dialect, Failure, Incoming, StreamPlan, bearer_token
from llmplex.emulator.sse import named_event

__all__ = ["AnthropicCountTokensDialect", "AnthropicDialect"]

# status -> (error.type, stock message); {model} is filled in
_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request (emulated)."),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low to access the Anthropic API."),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "model: {model}"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: (
        "rate_limit_error",
        "This request would exceed the rate limit for your organization of 50 requests per minute. "
        "For details, refer to: https://docs.claude.com/en/api/rate-limits.",
    ),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timed out"),
    529: ("overloaded_error", "Overloaded"),
}


def _block_texts(content: Any) -> Iterator[str]:
    """Text of a content value: a string, text blocks, and tool results' text."""
    if isinstance(content, str):
        yield content
        return
    if not isinstance(content, list):
        return
    for block in content:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text" and isinstance(block.get("text"), str):
            yield block["text"]
        elif block.get("type") == "tool_result":
            yield from _block_texts(block.get("content"))


def _user_text(content: Any) -> str | None:
    """The user's own words (tool results are not something to echo); None when there are none."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return None
    texts = [
        b["text"] for b in content if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
    ]
    return " ".join(texts) if texts else None


class AnthropicDialect(Dialect):
    name = "anthropic"

    def response_headers(self) -> list[tuple[bytes, bytes]]:
        return [(b"request-id", new_id("req_").encode())]

    def authenticate(self, incoming: Incoming) -> Failure | None:
        key = incoming.headers.get("x-api-key") or bearer_token(incoming.headers)
        if key is None:
            return self.failure(401, "x-api-key header is required")
        if key == "bad-key":
            return self.failure(401, "invalid x-api-key")
        if "anthropic-version" not in incoming.headers:
            return self.failure(400, "anthropic-version: header is required")
        return None

    def validate(self, payload: dict[str, Any]) -> Failure | None:
        for name in ("model", "max_tokens", "messages"):
            if name not in payload:
                return self.failure(400, f"{name}: Field required")
        if not isinstance(payload["max_tokens"], int) or payload["max_tokens"] < 1:
            return self.failure(400, "max_tokens: Input should be greater than or equal to 1")
        if not isinstance(payload["messages"], list) or not payload["messages"]:
            return self.failure(400, "messages: at least one message is required")
        return None

    def model_name(self, incoming: Incoming, payload: dict[str, Any]) -> str:
        return str(payload.get("model", ""))

    def conversation(self, payload: dict[str, Any]) -> Conversation:
        texts = list(_block_texts(payload.get("system")))
        last_user = ""
        for message in payload["messages"]:
            if not isinstance(message, dict):
                continue
            texts.extend(_block_texts(message.get("content")))
            own = _user_text(message.get("content")) if message.get("role") == "user" else None
            if own is not None:
                last_user = own
        tools = payload.get("tools")
        tool = None
        if isinstance(tools, list) and tools and isinstance(tools[0], dict) and isinstance(tools[0].get("name"), str):
            tool = tools[0]["name"]
        return Conversation(last_user, word_count(texts), tool)

    def failure(
        self, status: int, message: str | None = None, *, model: str = "", retry_after: int | None = None
    ) -> Failure:
        kind, stock = _ERRORS.get(status, ("api_error" if status >= 500 else "invalid_request_error", ""))
        text = message or stock.format(model=model) or f"Emulated error (status {status})."
        body = {"type": "error", "error": {"type": kind, "message": text}, "request_id": new_id("req_")}
        return Failure(status, orjson.dumps(body))

    def completion(self, reply: Reply, incoming: Incoming, payload: dict[str, Any]) -> bytes:
        body = {
            "id": new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": reply.model,
            "content": [self._block(reply, full=True)],
            "stop_reason": self._stop_reason(reply),
            "stop_sequence": None,
            "usage": self._usage(reply, reply.completion_tokens),
        }
        return orjson.dumps(body)

    def stream(self, reply: Reply, incoming: Incoming, payload: dict[str, Any]) -> StreamPlan:
        message: dict[str, Any] = {
            "id": new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": reply.model,
            "stop_reason": None,
            "stop_sequence": None,
            "usage": self._usage(reply, 1),
        }
        prelude = _event({"type": "message_start", "message": message})
        prelude += _event({"type": "content_block_start", "index": 0, "content_block": self._block(reply, full=False)})
        prelude += _event({"type": "ping"})
        if reply.tool_name is not None:
            prelude += _event(_delta({"type": "input_json_delta", "partial_json": ""}))
            deltas = [_delta({"type": "input_json_delta", "partial_json": piece}) for piece in reply.pieces]
        else:
            deltas = [_delta({"type": "text_delta", "text": piece}) for piece in reply.pieces]
        epilogue = _event({"type": "content_block_stop", "index": 0})
        finish = {"stop_reason": self._stop_reason(reply), "stop_sequence": None}
        epilogue += _event(
            {"type": "message_delta", "delta": finish, "usage": {"output_tokens": reply.completion_tokens}}
        )
        epilogue += _event({"type": "message_stop"})
        overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
        return StreamPlan(
            media_type=SSE,
            prelude=prelude,
            chunks=[_event(delta) for delta in deltas],
            epilogue=epilogue,
            error_event=_event(overloaded),
            malformed=b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, "delta": {\n\n',
        )

    @staticmethod
    def _block(reply: Reply, *, full: bool) -> dict[str, Any]:
        """The answer's content block; a stream opens it empty (``input`` is always ``{}`` there)."""
        if reply.tool_name is not None:
            tool_input = dict(TOOL_ARGUMENTS) if full else {}
            return {"type": "tool_use", "id": new_id("toolu_"), "name": reply.tool_name, "input": tool_input}
        return {"type": "text", "text": reply.text if full else ""}

    @staticmethod
    def _stop_reason(reply: Reply) -> str:
        return "tool_use" if reply.tool_name is not None else "end_turn"

    @staticmethod
    def _usage(reply: Reply, output_tokens: int) -> dict[str, Any]:
        return {
            "input_tokens": reply.prompt_tokens,
            "output_tokens": output_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "service_tier": "standard",
        }


def _delta(delta: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": 0, "delta": delta}


def _event(payload: dict[str, Any]) -> bytes:
    return named_event(payload["type"], payload)


class AnthropicCountTokensDialect(AnthropicDialect):
    """``POST /v1/messages/count_tokens``: ``{"input_tokens": n}`` (whitespace words, as the replies count them);
    no ``max_tokens`` needed."""

    def validate(self, payload: dict[str, Any]) -> Failure | None:
        for name in ("model", "messages"):
            if name not in payload:
                return self.failure(400, f"{name}: Field required")
        return None

    def completion(self, reply: Reply, incoming: Incoming, payload: dict[str, Any]) -> bytes:
        return orjson.dumps({"input_tokens": reply.prompt_tokens})

    def wants_stream(self, incoming: Incoming, payload: dict[str, Any]) -> bool:
        return False
