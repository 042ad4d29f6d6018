"""Response types of the endpoints beyond chat, in OpenAI's exact shapes: ``EmbeddingResponse``
(``{"object": "list", "data": [{"object": "embedding", "index", "embedding"}], "model", "usage"}``) and
``TextCompletionResponse`` (``object: "text_completion"``, ``choices[{text, index, logprobs, finish_reason}]``).
"""

from __future__ import annotations

import os
import time
from typing import Any, Literal

from llmplex.types import OpenAIObject, Usage, _HasHiddenParams

__all__ = [
    "Embedding",
    "EmbeddingResponse",
    "EmbeddingUsage",
    "TextChoices",
    "TextCompletionResponse",
    "new_text_completion_id",
]


def new_text_completion_id() -> str:
    return "cmpl-" + os.urandom(16).hex()


class Embedding(OpenAIObject):
    object: Literal["embedding"] = "embedding"
    index: int
    # a list of floats, or a base64 string of little-endian float32 values (encoding_format="base64")
    embedding: list[float] | str


class EmbeddingUsage(OpenAIObject):
    prompt_tokens: int = 0
    total_tokens: int = 0


class EmbeddingResponse(_HasHiddenParams):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str | None = None
    usage: EmbeddingUsage | None = None

    @classmethod
    def build(cls, model: str, vectors: list[Any], prompt_tokens: int) -> EmbeddingResponse:
        data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
        usage = {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}
        return cls.model_validate({"object": "list", "data": data, "model": model, "usage": usage})


class TextChoices(OpenAIObject):
    text: str = ""
    index: int = 0
    logprobs: Any = None
    finish_reason: str | None = None


class TextCompletionResponse(_HasHiddenParams):
    """A ``text_completion`` body; also each chunk of a text-completion stream (same object name)."""

    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str | None = None
    system_fingerprint: str | None = None
    choices: list[TextChoices]
    usage: Usage | None = None

    @classmethod
    def build(
        cls, *, model: str, texts: list[str], finish_reasons: list[str | None], usage: dict[str, int] | None
    ) -> TextCompletionResponse:
        choices = [
            {"text": t, "index": i, "logprobs": None, "finish_reason": f}
            for i, (t, f) in enumerate(zip(texts, finish_reasons, strict=True))
        ]
        body: dict[str, Any] = {
            "id": new_text_completion_id(),
            "object": "text_completion",
            "created": int(time.time()),
            "model": model,
            "choices": choices,
        }
        if usage is not None:
            body["usage"] = usage
        return cls.model_validate(body)
