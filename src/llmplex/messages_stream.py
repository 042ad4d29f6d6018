"""OpenAI ``chat.completion.chunk``s -> Anthropic's stream events, in Anthropic's exact order. Pure, no I/O.

``message_start``, ``ping``, then per content block ``content_block_start`` / ``content_block_delta``
(``text_delta`` or ``input_json_delta``) / ``content_block_stop`` (text and tool blocks share the numbering),
then ``message_delta`` (``stop_reason``, cumulative ``usage``) and ``message_stop``. Feed each chunk as a dict
(``feed``), then call ``finish()``; ``error(status, message)`` is the mid-stream error event.
"""

from __future__ import annotations

from typing import Any

import orjson

from llmplex.messages_format import anthropic_error_type, message_id, stop_reason

__all__ = ["AnthropicStreamTranslator", "encode_event"]

Event = tuple[str, dict[str, Any]]


def encode_event(name: str, payload: dict[str, Any]) -> bytes:
    """One SSE event with its ``event:`` name (Anthropic's framing; the name equals the payload's type)."""
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


class AnthropicStreamTranslator:
    """Stateful: which block is open, which tool call it belongs to, the stop reason and usage seen so far."""

    def __init__(self, model: str, input_tokens: int = 0) -> None:
        self.model = model
        self.input_tokens = input_tokens
        self.output_tokens = 0
        self.cache_read = 0
        self.stop = "end_turn"
        self._started = False
        self._finished = False
        self._block = -1  # index of the open block, -1 when none is open
        self._blocks = 0  # blocks opened so far
        self._kind = ""  # "text" or "tool"
        self._tool_index: int | None = None  # OpenAI tool_calls index of the open tool block

    def feed(self, chunk: dict[str, Any]) -> list[Event]:
        events: list[Event] = []
        if not self._started:
            events.extend(self._start(chunk))
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self._take_usage(usage)
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue  # Anthropic has one message: only the first choice is carried
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if isinstance(text, str) and text:
                events.extend(self._text(text))
            for call in delta.get("tool_calls") or ():
                if isinstance(call, dict):
                    events.extend(self._tool(call))
            reason = choice.get("finish_reason")
            if reason:
                self.stop = stop_reason(reason)
        return events

    def finish(self) -> list[Event]:
        """The closing events (once); a stream that carried no chunk still gets a whole, empty message."""
        if self._finished:
            return []
        self._finished = True
        events: list[Event] = [] if self._started else self._start({})
        events.extend(self._close())
        usage = {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}
        if self.cache_read:
            usage["cache_read_input_tokens"] = self.cache_read
        delta = {"stop_reason": self.stop, "stop_sequence": None}
        events.append(("message_delta", {"type": "message_delta", "delta": delta, "usage": usage}))
        events.append(("message_stop", {"type": "message_stop"}))
        return events

    @staticmethod
    def error(status: int, message: str) -> Event:
        return ("error", {"type": "error", "error": {"type": anthropic_error_type(status), "message": message}})

    # --- steps ---------------------------------------------------------------------------------------

    def _start(self, chunk: dict[str, Any]) -> list[Event]:
        self._started = True
        message: dict[str, Any] = {
            "id": message_id(chunk.get("id")),
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self.input_tokens, "output_tokens": 1},
        }
        return [("message_start", {"type": "message_start", "message": message}), ("ping", {"type": "ping"})]

    def _take_usage(self, usage: dict[str, Any]) -> None:
        prompt = int(usage.get("prompt_tokens") or 0)
        details = usage.get("prompt_tokens_details")
        cached = int(details.get("cached_tokens") or 0) if isinstance(details, dict) else 0
        if prompt:
            self.input_tokens = max(prompt - cached, 0)
            self.cache_read = cached
        self.output_tokens = int(usage.get("completion_tokens") or self.output_tokens)

    def _close(self) -> list[Event]:
        if self._block < 0:
            return []
        index, self._block = self._block, -1
        self._tool_index = None
        return [("content_block_stop", {"type": "content_block_stop", "index": index})]

    def _open(self, kind: str, block: dict[str, Any]) -> list[Event]:
        events = self._close()
        self._block = self._blocks
        self._blocks += 1
        self._kind = kind
        start = {"type": "content_block_start", "index": self._block, "content_block": block}
        events.append(("content_block_start", start))
        return events

    def _text(self, text: str) -> list[Event]:
        events = [] if self._block >= 0 and self._kind == "text" else self._open("text", {"type": "text", "text": ""})
        delta = {"type": "text_delta", "text": text}
        events.append(("content_block_delta", {"type": "content_block_delta", "index": self._block, "delta": delta}))
        return events

    def _tool(self, call: dict[str, Any]) -> list[Event]:
        events: list[Event] = []
        index = call.get("index", 0)
        function = call.get("function") or {}
        starts_new = call.get("id") or self._kind != "tool" or self._block < 0 or index != self._tool_index
        if starts_new:
            block: dict[str, Any] = {
                "type": "tool_use",
                "id": call.get("id") or f"toolu_{self._blocks}",
                "name": function.get("name") or "",
                "input": {},
            }
            events.extend(self._open("tool", block))
            self._tool_index = index
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            delta = {"type": "input_json_delta", "partial_json": arguments}
            payload = {"type": "content_block_delta", "index": self._block, "delta": delta}
            events.append(("content_block_delta", payload))
        return events
