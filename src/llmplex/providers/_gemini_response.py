"""Gemini response side: candidates, parts, finish reasons and usage -> OpenAI shapes. Pure."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from llmplex.providers._chunks import arguments_json
from llmplex.providers._gemini_request import THOUGHT_SEPARATOR

__all__ = ["CandidateOutput", "block_reason", "candidate_output", "map_finish_reason", "openai_usage"]

_FILTERED = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "LANGUAGE",
        "OTHER",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
        "IMAGE_OTHER",
    }
)


def map_finish_reason(reason: Any, has_tool_calls: bool = False) -> str:
    """Gemini ``finishReason`` -> OpenAI; function calls come with STOP, so their presence decides."""
    reason = str(reason or "").upper()
    if reason == "MAX_TOKENS":
        return "length"
    if reason in _FILTERED:
        return "content_filter"
    return "tool_calls" if has_tool_calls else "stop"


@dataclass(slots=True)
class CandidateOutput:
    index: int
    text: str = ""
    reasoning: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str | None = None  # Gemini's value, unmapped


def candidate_output(candidate: dict[str, Any], position: int) -> CandidateOutput:
    index = candidate.get("index")
    out = CandidateOutput(index=index if isinstance(index, int) else position)
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    for part in parts if isinstance(parts, list) else []:
        if not isinstance(part, dict):
            continue
        if isinstance(part.get("functionCall"), dict):
            out.tool_calls.append(_tool_call(part["functionCall"], part.get("thoughtSignature")))
        elif isinstance(part.get("text"), str):
            if part.get("thought"):
                out.reasoning += part["text"]
            else:
                out.text += part["text"]
    if candidate.get("finishReason"):
        out.finish_reason = str(candidate["finishReason"])
    return out


def _tool_call(call: dict[str, Any], signature: Any) -> dict[str, Any]:
    call_id = str(call.get("id") or "") or "call_" + uuid.uuid4().hex[:24]
    if isinstance(signature, str) and signature:
        call_id += THOUGHT_SEPARATOR + signature
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": call.get("name"), "arguments": arguments_json(call.get("args"))},
    }


def block_reason(body: dict[str, Any]) -> str | None:
    """The reason a prompt was blocked (no candidates at all), if it was."""
    feedback = body.get("promptFeedback")
    if isinstance(feedback, dict) and feedback.get("blockReason"):
        return str(feedback["blockReason"])
    return None


def openai_usage(metadata: Any) -> dict[str, Any] | None:
    if not isinstance(metadata, dict):
        return None
    prompt = int(metadata.get("promptTokenCount") or 0)
    thoughts = int(metadata.get("thoughtsTokenCount") or 0)
    completion = int(metadata.get("candidatesTokenCount") or 0) + thoughts
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": int(metadata.get("totalTokenCount") or prompt + completion),
    }
    if thoughts:
        usage["completion_tokens_details"] = {"reasoning_tokens": thoughts}
    cached = metadata.get("cachedContentTokenCount")
    if cached:
        usage["prompt_tokens_details"] = {"cached_tokens": int(cached)}
    return usage
