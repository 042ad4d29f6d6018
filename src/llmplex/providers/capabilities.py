"""Which provider serves which capability beyond chat, and through which adapter.

``embedding_adapter("cohere")`` -> the Cohere embedding adapter; a provider absent from the table does not
serve embeddings (``UnsupportedParamsError`` names the ones that do). Text completions need no table: the
OpenAI wire format is the only native one (``openai_text``), the routing rule is ``text_completions``'.
"""

from __future__ import annotations

import threading

from llmplex.exceptions import UnsupportedParamsError
from llmplex.providers import get_adapter
from llmplex.providers.embedding_base import EmbeddingAdapter

__all__ = ["embedding_adapter", "embedding_providers"]

_adapters: dict[str, EmbeddingAdapter] = {}
_lock = threading.Lock()


def embedding_providers() -> list[str]:
    from llmplex.providers.openai_embeddings import EMBEDDING_ROWS

    return sorted({*EMBEDDING_ROWS, "cohere", "gemini"})


def embedding_adapter(provider: str) -> EmbeddingAdapter:
    """The embedding adapter of ``provider`` (a resolved provider key)."""
    adapter = _adapters.get(provider)
    if adapter is not None:
        return adapter
    with _lock:
        adapter = _adapters.get(provider)
        if adapter is None:
            adapter = _build(provider)
            _adapters[provider] = adapter
    return adapter


def _build(provider: str) -> EmbeddingAdapter:
    from llmplex.providers.openai_embeddings import EMBEDDING_ROWS, AzureEmbeddings, OpenAIEmbeddings

    chat = get_adapter(provider)
    if provider == "cohere":
        from llmplex.providers.cohere_embeddings import CohereEmbeddings

        return CohereEmbeddings(chat)
    if provider == "gemini":
        from llmplex.providers.gemini_embeddings import GeminiEmbeddings

        return GeminiEmbeddings(chat)
    row = EMBEDDING_ROWS.get(provider)
    if row is None:
        raise UnsupportedParamsError(
            f"{provider} does not serve embeddings through llmplex; providers with embeddings: "
            f"{', '.join(embedding_providers())}",
            provider=provider,
        )
    return (AzureEmbeddings if provider == "azure" else OpenAIEmbeddings)(chat, row)
