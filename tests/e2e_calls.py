"""Calls and readers shared by the end-to-end tests: ``llmplex.AsyncClient`` -> real HTTP -> the emulator."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from llmplex import AsyncClient, CompletionStream, ModelResponse, ModelResponseStream

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello brave new world"}]
ECHO = "Echo: hello brave new world"  # the emulator's answer to MESSAGES (5 words)
SEARCH_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "search",
        "description": "Search the web",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
    },
}
MAX_CHUNKS = 1000


async def complete(client: AsyncClient, model: str, api_base: str, **options: Any) -> ModelResponse:
    """A non-streamed completion of ``MESSAGES`` (or ``messages=``), with the key ``test`` unless told."""
    messages = options.pop("messages", MESSAGES)
    options.setdefault("api_key", "test")
    response = await client.completion(model, messages, api_base=api_base, **options)
    assert isinstance(response, ModelResponse)
    return response


async def collect(client: AsyncClient, model: str, api_base: str, **options: Any) -> list[ModelResponseStream]:
    """Every chunk of a streamed completion, read to the end (bounded)."""
    messages = options.pop("messages", MESSAGES)
    stream = await client.completion(model, messages, api_base=api_base, api_key="test", stream=True, **options)
    assert isinstance(stream, CompletionStream)
    chunks: list[ModelResponseStream] = []
    async with stream:
        async for chunk in stream:
            chunks.append(chunk)
            assert len(chunks) < MAX_CHUNKS
    return chunks


def text_of(chunks: list[ModelResponseStream]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def finishes(chunks: list[ModelResponseStream]) -> list[str]:
    return [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]


def assert_fields(err: BaseException, expected: Mapping[str, str]) -> None:
    """Each named attribute of ``err``, as text, fully matches its pattern."""
    for name, pattern in expected.items():
        raw = getattr(err, name)
        value = "" if raw is None else str(raw)
        assert re.fullmatch(pattern, value, re.DOTALL), f"{name}={value!r} does not match {pattern!r}"
