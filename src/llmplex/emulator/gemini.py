"""Gemini ``generateContent`` / ``streamGenerateContent``: candidates with parts, Google RPC errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from llmplex.emulator.conversation import TOOL_ARGUMENTS, Conversation, Reply, new_id, word_count
from llmplex.emulator.dialect import JSON, SSE, Dialect, Failure, Incoming, StreamPlan

__all__ = ["GeminiDialect"]

METHODS = frozenset({"generateContent", "streamGenerateContent"})
# status -> (RPC status, stock message); {model} is filled in
_ERRORS: dict[int, tuple[str, str]] = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: ("UNAUTHENTICATED", "Request had invalid authentication credentials."),
    403: ("PERMISSION_DENIED", "The caller does not have permission"),
    404: (
        "NOT_FOUND",
        "models/{model} is not found for API version v1beta, or is not supported for generateContent. "
        "Call ListModels to see the list of available models and their supported methods.",
    ),
    409: ("ABORTED", "The operation was aborted."),
    429: ("RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    500: (
        "INTERNAL",
        "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
    ),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
}
_KEY_INVALID = {
    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
    "reason": "API_KEY_INVALID",
    "domain": "googleapis.com",
    "metadata": {"service": "generativelanguage.googleapis.com"},
}


def split_target(incoming: Incoming) -> tuple[str, str]:
    """``gemini-2.0-flash:generateContent`` (the last path segment) -> (model, method)."""
    model, _, method = incoming.path_params.get("target", "").rpartition(":")
    return model, method


def _part_texts(parts: Any) -> Iterator[str]:
    for part in parts if isinstance(parts, list) else ():
        if not isinstance(part, dict):
            continue
        if isinstance(part.get("text"), str):
            yield part["text"]
        response = part.get("functionResponse") or part.get("function_response")
        if isinstance(response, dict) and isinstance(response.get("response"), dict):
            yield from (value for value in response["response"].values() if isinstance(value, str))


def _first_declaration(tools: Any) -> str | None:
    for tool in tools if isinstance(tools, list) else ():
        declarations = (
            tool.get("functionDeclarations") or tool.get("function_declarations") if isinstance(tool, dict) else None
        )
        if isinstance(declarations, list) and declarations and isinstance(declarations[0], dict):
            name = declarations[0].get("name")
            return name if isinstance(name, str) else None
    return None


class GeminiDialect(Dialect):
    name = "gemini"

    def authenticate(self, incoming: Incoming) -> Failure | None:
        key = incoming.headers.get("x-goog-api-key") or incoming.query.get("key")
        if not key or key == "bad-key":
            body = self._body(
                400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", [_KEY_INVALID]
            )
            return Failure(400, body)
        if split_target(incoming)[1] not in METHODS:
            return self.failure(404, "Method not found.")
        return None

    def validate(self, payload: dict[str, Any]) -> Failure | None:
        contents = payload.get("contents")
        if not isinstance(contents, list) or not contents:
            return self.failure(400, "* GenerateContentRequest.contents: contents is not specified\n")
        return None

    def model_name(self, incoming: Incoming, payload: dict[str, Any]) -> str:
        return split_target(incoming)[0]

    def wants_stream(self, incoming: Incoming, payload: dict[str, Any]) -> bool:
        return split_target(incoming)[1] == "streamGenerateContent"

    def conversation(self, payload: dict[str, Any]) -> Conversation:
        system = payload.get("systemInstruction") or payload.get("system_instruction")
        texts = list(_part_texts(system.get("parts"))) if isinstance(system, dict) else []
        last_user = ""
        for content in payload["contents"]:
            if not isinstance(content, dict):
                continue
            own = list(_part_texts(content.get("parts")))
            texts.extend(own)
            plain = [
                p["text"] for p in content.get("parts") or () if isinstance(p, dict) and isinstance(p.get("text"), str)
            ]
            if content.get("role", "user") == "user" and plain:
                last_user = " ".join(plain)
        return Conversation(last_user, word_count(texts), _first_declaration(payload.get("tools")))

    def failure(
        self, status: int, message: str | None = None, *, model: str = "", retry_after: int | None = None
    ) -> Failure:
        rpc_status, stock = _ERRORS.get(status, ("INTERNAL" if status >= 500 else "FAILED_PRECONDITION", ""))
        text = message or stock.format(model=model) or f"Emulated error (status {status})."
        details: list[dict[str, Any]] = []
        if retry_after is not None:
            details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_after}s"})
        return Failure(status, self._body(status, rpc_status, text, details))

    @staticmethod
    def _body(status: int, rpc_status: str, message: str, details: list[dict[str, Any]]) -> bytes:
        error: dict[str, Any] = {"code": status, "message": message, "status": rpc_status}
        if details:
            error["details"] = details
        return orjson.dumps({"error": error})

    def completion(self, reply: Reply, incoming: Incoming, payload: dict[str, Any]) -> bytes:
        part = _call_part(reply) if reply.tool_name is not None else {"text": reply.text}
        return orjson.dumps(_response(reply, new_id(""), [part], reply.completion_tokens, "STOP"))

    def stream(self, reply: Reply, incoming: Incoming, payload: dict[str, Any]) -> StreamPlan:
        response_id = new_id("")
        if reply.tool_name is not None:  # Gemini delivers a function call whole, in one chunk
            chunks = [_response(reply, response_id, [_call_part(reply)], reply.completion_tokens, "STOP")]
            final: dict[str, Any] | None = None
        else:
            chunks, running = [], ""
            for piece in reply.pieces:
                running += piece
                chunks.append(_response(reply, response_id, [{"text": piece}], word_count((running,)), None))
            final = _response(reply, response_id, [{"text": ""}], reply.completion_tokens, "STOP")
        error = orjson.loads(self.failure(500).body)
        if incoming.query.get("alt") == "sse":
            return _sse_plan(chunks, final, error)
        return _array_plan(chunks, final, error)


def _sse_plan(chunks: list[dict[str, Any]], final: dict[str, Any] | None, error: dict[str, Any]) -> StreamPlan:
    def frame(payload: dict[str, Any]) -> bytes:
        return b"data: " + orjson.dumps(payload) + b"\r\n\r\n"  # Google's SSE uses CRLF line ends

    return StreamPlan(
        media_type=SSE,
        prelude=b"",
        chunks=[frame(chunk) for chunk in chunks],
        epilogue=frame(final) if final is not None else b"",
        error_event=frame(error),
        malformed=b'data: {"candidates": [{"content": {"parts": [{"text": \r\n\r\n',
    )


def _array_plan(chunks: list[dict[str, Any]], final: dict[str, Any] | None, error: dict[str, Any]) -> StreamPlan:
    """Without ``alt=sse`` the stream is one JSON array delivered element by element."""
    frames = [(b"" if index == 0 else b",\r\n") + orjson.dumps(chunk) for index, chunk in enumerate(chunks)]
    return StreamPlan(
        media_type=JSON,
        prelude=b"[",
        chunks=frames,
        epilogue=(b",\r\n" + orjson.dumps(final) if final is not None else b"") + b"]",
        error_event=b",\r\n" + orjson.dumps(error) + b"]",
        malformed=b',\r\n{"candidates": [{"content": ',
    )


def _call_part(reply: Reply) -> dict[str, Any]:
    return {"functionCall": {"name": reply.tool_name, "args": dict(TOOL_ARGUMENTS)}}


def _response(
    reply: Reply, response_id: str, parts: list[dict[str, Any]], candidates_tokens: int, finish: str | None
) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if finish is not None:
        candidate["finishReason"] = finish
    usage = {
        "promptTokenCount": reply.prompt_tokens,
        "candidatesTokenCount": candidates_tokens,
        "totalTokenCount": reply.prompt_tokens + candidates_tokens,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": reply.prompt_tokens}],
    }
    return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": reply.model, "responseId": response_id}
