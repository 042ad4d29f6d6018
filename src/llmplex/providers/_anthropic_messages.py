"""OpenAI chat messages -> Anthropic ``system`` + ``messages`` (pure translation, no I/O).

Anthropic takes the system prompt as a top-level field, only ``user``/``assistant`` turns, tool calls
as ``tool_use`` blocks with an *object* input, and tool results as ``tool_result`` blocks inside a
user turn. Consecutive same-role turns are merged here so that parallel tool results land in one
user turn, right after the assistant turn that asked for them.
"""

from __future__ import annotations

from typing import Any

import orjson

from llmplex.exceptions import BadRequestError

__all__ = ["convert_messages"]

PROVIDER = "anthropic"
# Anthropic-native block types a caller may pass inside OpenAI content lists; forwarded unchanged.
_NATIVE_BLOCKS = frozenset({"image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking"})


def convert_messages(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Return ``(system_blocks, turns)``; each turn is ``{"role", "content": [blocks]}``."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_content_blocks(message.get("content"), index))
            continue
        if role == "user":
            blocks = _content_blocks(message.get("content"), index)
        elif role == "assistant":
            blocks = _assistant_blocks(message, index)
        elif role == "tool":
            role, blocks = "user", [_tool_result(message, index)]
        else:
            raise BadRequestError(
                f"messages[{index}]: role {role!r} is not supported by anthropic (use tools and role 'tool')",
                provider=PROVIDER,
                param="messages",
            )
        if not blocks:
            continue  # Anthropic rejects empty turns and empty text blocks
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    if not turns:
        raise BadRequestError("anthropic needs at least one user or assistant message", provider=PROVIDER)
    return system, turns


def _content_blocks(content: Any, index: int) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise BadRequestError(f"messages[{index}].content must be a string or a list", param="messages")
    blocks: list[dict[str, Any]] = []
    for part in content:
        block = _part_block(part, index)
        if block is not None:
            blocks.append(block)
    return blocks


def _part_block(part: Any, index: int) -> dict[str, Any] | None:
    if isinstance(part, str):
        return {"type": "text", "text": part} if part else None
    if not isinstance(part, dict):
        raise BadRequestError(f"messages[{index}].content has a part that is not an object", param="messages")
    kind = part.get("type")
    block: dict[str, Any] | None
    if kind == "text":
        text = part.get("text") or ""
        block = {"type": "text", "text": text} if text else None
    elif kind == "image_url":
        block = _image_block(part.get("image_url"), index)
    elif kind in _NATIVE_BLOCKS:
        return dict(part)
    else:
        raise BadRequestError(
            f"messages[{index}]: content part type {kind!r} is not supported by anthropic",
            provider=PROVIDER,
            param="messages",
        )
    if block is not None and "cache_control" in part:
        block["cache_control"] = part["cache_control"]  # prompt caching marks survive translation
    return block


def _image_block(image: Any, index: int) -> dict[str, Any]:
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url:
        raise BadRequestError(f"messages[{index}]: image_url needs a url", param="messages")
    if url.startswith("data:"):
        header, sep, data = url[5:].partition(",")
        media_type, _, encoding = header.partition(";")
        if not sep or encoding != "base64" or not media_type:
            raise BadRequestError(
                f"messages[{index}]: image data URLs must look like data:<media type>;base64,<data>",
                provider=PROVIDER,
                param="messages",
            )
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _assistant_blocks(message: dict[str, Any], index: int) -> list[dict[str, Any]]:
    blocks = _content_blocks(message.get("content"), index)
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        blocks.append(
            {
                "type": "tool_use",
                "id": call.get("id"),
                "name": function.get("name"),
                "input": _tool_input(function.get("arguments"), index),
            }
        )
    return blocks


def _tool_input(arguments: Any, index: int) -> dict[str, Any]:
    if arguments is None or arguments == "":
        return {}
    if isinstance(arguments, dict):
        return arguments
    try:
        value = orjson.loads(arguments)
    except (orjson.JSONDecodeError, TypeError):
        value = None
    if not isinstance(value, dict):
        # Anthropic's tool_use input must be an object; a model's broken JSON cannot be replayed as is
        raise BadRequestError(
            f"messages[{index}].tool_calls arguments must be a JSON object string, got {str(arguments)[:200]!r}",
            provider=PROVIDER,
            param="messages",
        )
    return value


def _tool_result(message: dict[str, Any], index: int) -> dict[str, Any]:
    tool_call_id = message.get("tool_call_id")
    if not tool_call_id:
        raise BadRequestError(f"messages[{index}]: tool messages need a tool_call_id", param="messages")
    content = message.get("content")
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_call_id}
    if isinstance(content, list):
        block["content"] = _content_blocks(content, index)
    elif content is not None and content != "":
        block["content"] = str(content)
    return block
