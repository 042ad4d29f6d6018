"""Which providers have a batch API llmplex speaks, and their mapping."""

from __future__ import annotations

from collections.abc import Callable

from llmplex.batches.wire import BatchWire
from llmplex.exceptions import BadRequestError
from llmplex.providers import ALIASES

__all__ = ["BATCH_PROVIDERS", "batch_wire"]


def _openai(name: str) -> Callable[[], BatchWire]:
    def build() -> BatchWire:
        from llmplex.batches.openai_wire import OpenAIBatchWire

        wire = OpenAIBatchWire()
        wire.name = name
        return wire

    return build


def _azure() -> BatchWire:
    from llmplex.batches.openai_wire import AzureBatchWire

    return AzureBatchWire()


def _anthropic() -> BatchWire:
    from llmplex.batches.anthropic_wire import AnthropicBatchWire

    return AnthropicBatchWire()


def _gemini() -> BatchWire:
    from llmplex.batches.gemini_wire import GeminiBatchWire

    return GeminiBatchWire()


# groq and together_ai document OpenAI's own /files + /batches API on their OpenAI-compatible base URL
BATCH_PROVIDERS: dict[str, Callable[[], BatchWire]] = {
    "anthropic": _anthropic,
    "azure": _azure,
    "gemini": _gemini,
    "groq": _openai("groq"),
    "openai": _openai("openai"),
    "together_ai": _openai("together_ai"),
}


def batch_wire(provider: str) -> BatchWire:
    """The mapping for ``provider``; a provider without a batch API is a clear error naming those with one."""
    key = ALIASES.get(provider, provider)
    build = BATCH_PROVIDERS.get(key)
    if build is None:
        raise BadRequestError(
            f"{provider} has no batch API llmplex can use. Providers with one: {', '.join(sorted(BATCH_PROVIDERS))}. "
            "Use batch_completion without batch_api=True to send the requests one by one, or the llmplex proxy's "
            "/v1/batches, which runs batches for any provider.",
            provider=key,
            param="custom_llm_provider",
        )
    return build()
