"""Cohere Chat v2: ``message`` bodies with ``usage{billed_units,tokens}``; named-event streams up to ``message-end``."""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from llmplex.emulator.conversation import Conversation, Reply, word_count
from llmplex.emulator.dialect import SSE, Dialect, Failure, Incoming, StreamPlan, bearer_token
from llmplex.emulator.openai import first_function_name, message_texts
from llmplex.emulator.sse import named_event

__all__ = ["CohereDialect"]

_MESSAGES = {
    400: "invalid request: emulated error",
    401: "invalid api token",
    403: "Forbidden",
    404: "model '{model}' not found, make sure the correct model ID was used and that you have access to the model.",
    429: "You are using a Trial key, which is limited to 10 API calls / minute. You can continue to use the Trial "
    "key for free or upgrade to a Production key with higher rate limits at 'https://dashboard.cohere.com/api-keys'.",
    500: "internal server error, this has been reported to our developers",
    503: "service unavailable",
}


def _document_texts(messages: list[Any]) -> list[str]:
    """Tool results given as ``document`` parts (``{"type": "document", "document": {"data": ...}}``)."""
    texts = []
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        for part in content if isinstance(content, list) else ():
            document = part.get("document") if isinstance(part, dict) else None
            if isinstance(document, dict) and isinstance(document.get("data"), str):
                texts.append(document["data"])
    return texts


class CohereDialect(Dialect):
    name = "cohere"

    def response_headers(self) -> list[tuple[bytes, bytes]]:
        return [(b"x-debug-trace-id", uuid.uuid4().hex.encode())]

    def authenticate(self, incoming: Incoming) -> Failure | None:
        key = bearer_token(incoming.headers)
        if key is None:
            return self.failure(401, "no api key supplied")
        if key == "bad-key":
            return self.failure(401, "invalid api token")
        return None

    def validate(self, payload: dict[str, Any]) -> Failure | None:
        if not isinstance(payload.get("model"), str):
            return self.failure(400, "invalid request: model must be specified")
        messages = payload.get("messages")
        if not isinstance(messages, list) or not messages:
            return self.failure(400, "invalid request: messages must contain at least one message")
        return None

    def model_name(self, incoming: Incoming, payload: dict[str, Any]) -> str:
        return str(payload.get("model", ""))

    def conversation(self, payload: dict[str, Any]) -> Conversation:
        last_user, texts = message_texts(payload["messages"])
        texts += _document_texts(payload["messages"])
        return Conversation(last_user, word_count(texts), first_function_name(payload.get("tools")))

    def failure(
        self, status: int, message: str | None = None, *, model: str = "", retry_after: int | None = None
    ) -> Failure:
        text = message or _MESSAGES.get(status, "").format(model=model) or f"Emulated error (status {status})."
        return Failure(status, orjson.dumps({"id": str(uuid.uuid4()), "message": text}))

    def completion(self, reply: Reply, incoming: Incoming, payload: dict[str, Any]) -> bytes:
        message: dict[str, Any]
        if reply.tool_name is not None:
            message = {
                "role": "assistant",
                "tool_plan": _plan(reply),
                "tool_calls": [_tool_call(reply, reply.arguments)],
            }
        else:
            message = {"role": "assistant", "content": [{"type": "text", "text": reply.text}]}
        body = {"id": str(uuid.uuid4()), "finish_reason": _finish(reply), "message": message, "usage": _usage(reply)}
        return orjson.dumps(body)

    def stream(self, reply: Reply, incoming: Incoming, payload: dict[str, Any]) -> StreamPlan:
        opening = {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}
        prelude = _event({"id": str(uuid.uuid4()), "type": "message-start", "delta": {"message": opening}})
        if reply.tool_name is not None:
            prelude += _event({"type": "tool-plan-delta", "delta": {"message": {"tool_plan": _plan(reply)}}})
            start = {"tool_calls": _tool_call(reply, "")}  # a single object here, not a list
            prelude += _event({"type": "tool-call-start", "index": 0, "delta": {"message": start}})
            chunks = [_tool_delta(piece) for piece in reply.pieces]
            closing = _event({"type": "tool-call-end", "index": 0})
        else:
            content = {"content": {"type": "text", "text": ""}}
            prelude += _event({"type": "content-start", "index": 0, "delta": {"message": content}})
            chunks = [_content_delta(piece) for piece in reply.pieces]
            closing = _event({"type": "content-end", "index": 0})
        end = {"finish_reason": _finish(reply), "usage": _usage(reply)}
        error = {"finish_reason": "ERROR", "error": _MESSAGES[500]}
        return StreamPlan(
            media_type=SSE,
            prelude=prelude,
            chunks=chunks,
            epilogue=closing + _event({"type": "message-end", "delta": end}),
            error_event=_event({"type": "message-end", "delta": error}),
            malformed=b'event: content-delta\ndata: {"type": "content-delta", "index": 0, "delta": {\n\n',
        )


def _plan(reply: Reply) -> str:
    return f"I will use the {reply.tool_name} tool."


def _tool_call(reply: Reply, arguments: str) -> dict[str, Any]:
    function = {"name": reply.tool_name, "arguments": arguments}
    return {"id": f"{reply.tool_name}_{uuid.uuid4().hex[:12]}", "type": "function", "function": function}


def _tool_delta(piece: str) -> bytes:
    delta = {"message": {"tool_calls": {"function": {"arguments": piece}}}}
    return _event({"type": "tool-call-delta", "index": 0, "delta": delta})


def _content_delta(piece: str) -> bytes:
    return _event({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": piece}}}})


def _finish(reply: Reply) -> str:
    return "TOOL_CALL" if reply.tool_name is not None else "COMPLETE"


def _usage(reply: Reply) -> dict[str, Any]:
    counts = {"input_tokens": reply.prompt_tokens, "output_tokens": reply.completion_tokens}
    return {"billed_units": dict(counts), "tokens": dict(counts)}


def _event(payload: dict[str, Any]) -> bytes:
    return named_event(payload["type"], payload)
