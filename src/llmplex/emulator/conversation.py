"""What the emulated model says: an echo of the last user message, with whitespace-word token counts."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass

from llmplex.emulator.directives import Directives

__all__ = ["TOOL_ARGUMENTS", "Conversation", "Reply", "build_reply", "new_id", "split_pieces", "word_count"]

TOOL_ARGUMENTS = {"query": "emulated"}
_TOOL_ARGUMENTS_JSON = '{"query": "emulated"}'

# ids only need to be unique, so a random process prefix plus a counter avoids a uuid per request
_ID_PREFIX = os.urandom(4).hex()
_ID_COUNTER = itertools.count(1)


def new_id(prefix: str) -> str:
    return f"{prefix}{_ID_PREFIX}{next(_ID_COUNTER):08x}"


def word_count(texts: Iterable[str]) -> int:
    return sum(len(text.split()) for text in texts)


def split_pieces(text: str, count: int) -> list[str]:
    """``count`` non-empty pieces of ``text`` (fewer when the text is shorter than ``count``)."""
    size = len(text)
    count = max(1, min(count, size))
    return [text[index * size // count : (index + 1) * size // count] for index in range(count)]


@dataclass(frozen=True, slots=True)
class Conversation:
    """The parts of a request the emulated model reacts to, extracted by each provider's dialect."""

    last_user_text: str
    prompt_tokens: int
    first_tool: str | None


@dataclass(frozen=True, slots=True)
class Reply:
    """The answer, provider-neutral: either text or one tool call, plus the pieces a stream sends."""

    model: str
    text: str
    tool_name: str | None
    arguments: str
    pieces: list[str]
    prompt_tokens: int
    completion_tokens: int
    created: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def build_reply(conversation: Conversation, model: str, directives: Directives) -> Reply:
    created = int(time.time())
    if directives.tool and conversation.first_tool is not None:
        arguments = _TOOL_ARGUMENTS_JSON
        return Reply(
            model=model,
            text="",
            tool_name=conversation.first_tool,
            arguments=arguments,
            pieces=split_pieces(arguments, directives.chunks),
            prompt_tokens=conversation.prompt_tokens,
            completion_tokens=word_count((arguments,)),
            created=created,
        )
    text = "Echo: " + conversation.last_user_text
    return Reply(
        model=model,
        text=text,
        tool_name=None,
        arguments="",
        pieces=split_pieces(text, directives.chunks),
        prompt_tokens=conversation.prompt_tokens,
        completion_tokens=word_count((text,)),
        created=created,
    )
