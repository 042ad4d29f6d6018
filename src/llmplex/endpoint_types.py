"""Response types of the endpoints beyond chat, in OpenAI's exact shapes: ``EmbeddingResponse``
(``{"object": "list", "data": [{"object": "embedding", "index", "embedding"}], "model", "usage"}``) and
``TextCompletionResponse`` (``object: "text_completion"``, ``choices[{text, index, logprobs, finish_reason}]``).
"""

from __future__ import annotations

import os
import time
from typing import Any, Literal

import orjson
from pydantic import field_validator

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


class Embedding(dict[str, Any]):
    """One ``{"object": "embedding", "index", "embedding"}`` item: a dict (as LiteLLM's items are) that also
    reads as attributes (``item.embedding``, as the openai SDK's do). A dict, not a pydantic model, because
    a corpus has hundreds of thousands of them and each would cost a validation."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class EmbeddingUsage(OpenAIObject):
    prompt_tokens: int = 0
    total_tokens: int = 0


class EmbeddingResponse(_HasHiddenParams):
    """``data`` holds ``Embedding`` items (a float list, or a base64 string of little-endian float32 values
    with ``encoding_format="base64"``)."""

    object: Literal["list"] = "list"
    data: list[Any]
    model: str | None = None
    usage: EmbeddingUsage | None = None

    @field_validator("data")
    @classmethod
    def _items(cls, value: list[Any]) -> list[Any]:
        for i, item in enumerate(value):
            if not isinstance(item, dict) or "embedding" not in item:
                raise ValueError(f"data[{i}] is not an embedding object")
        return [item if isinstance(item, Embedding) else Embedding(item) for item in value]

    @classmethod
    def build(cls, model: str, vectors: list[Any], prompt_tokens: int) -> EmbeddingResponse:
        """Without validation: the vectors come from a provider answer already checked item by item."""
        data = [Embedding(object="embedding", index=i, embedding=v) for i, v in enumerate(vectors)]
        usage = EmbeddingUsage(prompt_tokens=prompt_tokens, total_tokens=prompt_tokens)
        return cls.model_construct(
            _fields_set={"object", "data", "model", "usage"}, object="list", data=data, model=model, usage=usage
        )

    def json_bytes(self) -> bytes:
        """Compact JSON, written straight from the items (no ``model_dump`` copy of every vector)."""
        usage = self.usage.model_dump() if self.usage is not None else None
        return orjson.dumps({"object": self.object, "data": self.data, "model": self.model, "usage": usage})


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
