"""Provider registry and model-name resolution (LiteLLM-compatible names).

``resolve_model("groq/llama3-8b-8192")`` -> ``("groq", "llama3-8b-8192")``: the text before the first
slash is the provider when it is a registered key; a bare name is looked up in the catalog.
"""

from __future__ import annotations

import importlib
import threading

from llmplex.exceptions import UnknownModelError
from llmplex.providers.base import ProviderAdapter
from llmplex.providers.catalog import provider_for_bare_name
from llmplex.providers.openai_compat import COMPATIBLE_PROVIDERS, OpenAICompatibleAdapter

__all__ = ["get_adapter", "provider_keys", "register_provider", "resolve_model"]

# key -> "module:Class", imported on first use so that `import llmplex` stays cheap.
_BUILTIN: dict[str, str] = {
    "openai": "llmplex.providers.openai_compat:OpenAIAdapter",
    "azure": "llmplex.providers.azure:AzureAdapter",
    "anthropic": "llmplex.providers.anthropic:AnthropicAdapter",
    "cohere": "llmplex.providers.cohere:CohereAdapter",
    "gemini": "llmplex.providers.gemini:GeminiAdapter",
}

# LiteLLM spellings that mean one of our keys.
ALIASES: dict[str, str] = {
    "cohere_chat": "cohere",
    "text-completion-openai": "openai",
    "custom_openai": "openai",
    "azure_ai": "azure",
    "azure_text": "azure",
    "togetherai": "together_ai",
    "vllm": "hosted_vllm",
    "ollama_chat": "ollama",
    "google": "gemini",
}

_adapters: dict[str, ProviderAdapter] = {}
_lock = threading.Lock()


def provider_keys() -> list[str]:
    return sorted({*_BUILTIN, *COMPATIBLE_PROVIDERS, *_adapters})


def register_provider(key: str, adapter: ProviderAdapter) -> None:
    """Add (or replace) a provider; ``key/model`` then resolves to it."""
    with _lock:
        _adapters[key] = adapter


def get_adapter(key: str) -> ProviderAdapter:
    key = ALIASES.get(key, key)
    adapter = _adapters.get(key)
    if adapter is not None:
        return adapter
    with _lock:
        adapter = _adapters.get(key)
        if adapter is None:
            adapter = _load(key)
            _adapters[key] = adapter
    return adapter


def _load(key: str) -> ProviderAdapter:
    path = _BUILTIN.get(key)
    if path is not None:
        module_name, _, class_name = path.partition(":")
        cls = getattr(importlib.import_module(module_name), class_name)
        adapter: ProviderAdapter = cls()
        return adapter
    row = COMPATIBLE_PROVIDERS.get(key)
    if row is not None:
        return OpenAICompatibleAdapter(row)
    raise UnknownModelError(f"Unknown provider {key!r}. Known providers: {', '.join(provider_keys())}")


def _is_provider(key: str) -> bool:
    key = ALIASES.get(key, key)
    return key in _BUILTIN or key in COMPATIBLE_PROVIDERS or key in _adapters


def resolve_model(model: str, *, custom_llm_provider: str | None = None) -> tuple[str, str]:
    """``model`` -> ``(provider_key, provider_model_id)``; raises ``UnknownModelError``."""
    untyped: object = model  # callers outside mypy pass anything
    if not isinstance(untyped, str) or not untyped.strip():
        raise UnknownModelError("model must be a non-empty string")
    model = model.strip()
    if custom_llm_provider:
        if not _is_provider(custom_llm_provider):
            raise UnknownModelError(
                f"Unknown provider {custom_llm_provider!r}. Known providers: {', '.join(provider_keys())}"
            )
        key = ALIASES.get(custom_llm_provider, custom_llm_provider)
        for prefix in {custom_llm_provider, key}:
            if model.startswith(prefix + "/"):
                model = model[len(prefix) + 1 :]
        return key, model
    prefix, slash, rest = model.partition("/")
    if slash and rest and _is_provider(prefix):
        return ALIASES.get(prefix, prefix), rest
    bare = provider_for_bare_name(model)
    if bare is not None:
        return bare, model
    known = ", ".join(provider_keys())
    hint = f"its prefix {prefix!r} is not a known provider" if slash else "it is not a known model name"
    raise UnknownModelError(
        f"Unknown model {model!r}: {hint}. Prefix it with its provider, e.g. 'groq/{model}', or use "
        f"'openai/{model}' with api_base=... for an OpenAI-compatible server. Known providers: {known}",
        model=model,
    )
