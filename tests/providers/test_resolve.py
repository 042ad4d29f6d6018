"""Model-name resolution, table-driven (LiteLLM-compatible names)."""

from __future__ import annotations

import pytest

from llmplex import BadRequestError, UnknownModelError, resolve_model
from llmplex.providers import get_adapter, provider_keys

CASES = [
    # prefix rule: the text before the first slash, model id kept whole
    ("groq/llama3-8b-8192", "groq", "llama3-8b-8192"),
    ("anthropic/claude-3-5-sonnet-latest", "anthropic", "claude-3-5-sonnet-latest"),
    ("openrouter/meta-llama/llama-3-8b", "openrouter", "meta-llama/llama-3-8b"),
    ("openai/smollm2-135m", "openai", "smollm2-135m"),
    ("openai/gpt-4o", "openai", "gpt-4o"),
    ("azure/my-deployment", "azure", "my-deployment"),
    ("gemini/gemini-1.5-flash", "gemini", "gemini-1.5-flash"),
    ("cohere/command-r", "cohere", "command-r"),
    ("mistral/mistral-large-latest", "mistral", "mistral-large-latest"),
    ("deepseek/deepseek-chat", "deepseek", "deepseek-chat"),
    ("together_ai/meta-llama/Llama-3-8b-chat-hf", "together_ai", "meta-llama/Llama-3-8b-chat-hf"),
    ("fireworks_ai/accounts/fireworks/models/llama-v3-8b", "fireworks_ai", "accounts/fireworks/models/llama-v3-8b"),
    ("perplexity/sonar", "perplexity", "sonar"),
    ("xai/grok-2", "xai", "grok-2"),
    ("ollama/llama3", "ollama", "llama3"),
    ("hosted_vllm/Qwen/Qwen2-7B", "hosted_vllm", "Qwen/Qwen2-7B"),
    ("lm_studio/local-model", "lm_studio", "local-model"),
    ("openai/claude-3-haiku", "openai", "claude-3-haiku"),  # the prefix wins over the catalog
    # LiteLLM aliases
    ("cohere_chat/command-r", "cohere", "command-r"),
    ("vllm/my-model", "hosted_vllm", "my-model"),
    ("togetherai/x", "together_ai", "x"),
    ("ollama_chat/llama3", "ollama", "llama3"),
    # bare names from the catalog
    ("gpt-4o", "openai", "gpt-4o"),
    ("gpt-3.5-turbo", "openai", "gpt-3.5-turbo"),
    ("chatgpt-4o-latest", "openai", "chatgpt-4o-latest"),
    ("ft:gpt-4o-mini:org::abc", "openai", "ft:gpt-4o-mini:org::abc"),
    ("o1", "openai", "o1"),
    ("o1-mini", "openai", "o1-mini"),
    ("o3", "openai", "o3"),
    ("o3-mini", "openai", "o3-mini"),
    ("o4-mini", "openai", "o4-mini"),
    ("claude-2", "anthropic", "claude-2"),
    ("claude-2.1", "anthropic", "claude-2.1"),
    ("claude-instant-1.2", "anthropic", "claude-instant-1.2"),
    ("claude-3-haiku-20240307", "anthropic", "claude-3-haiku-20240307"),
    ("claude-3-5-sonnet-latest", "anthropic", "claude-3-5-sonnet-latest"),
    ("command-nightly", "cohere", "command-nightly"),
    ("command-r", "cohere", "command-r"),
    ("command-r-plus", "cohere", "command-r-plus"),
    ("command-a-03-2025", "cohere", "command-a-03-2025"),
    ("gemini-1.5-pro", "gemini", "gemini-1.5-pro"),
    ("gemini-2.0-flash", "gemini", "gemini-2.0-flash"),
    ("  gpt-4o  ", "openai", "gpt-4o"),
]


@pytest.mark.parametrize(("model", "provider", "model_id"), CASES, ids=[c[0].strip() for c in CASES])
def test_resolve(model: str, provider: str, model_id: str) -> None:
    assert resolve_model(model) == (provider, model_id)


@pytest.mark.parametrize(
    ("model", "custom", "expected"),
    [
        ("llama3-8b-8192", "groq", ("groq", "llama3-8b-8192")),
        ("groq/llama3-8b-8192", "groq", ("groq", "llama3-8b-8192")),
        ("my-model", "openai", ("openai", "my-model")),
        ("command-r", "cohere_chat", ("cohere", "command-r")),
        ("cohere_chat/command-r", "cohere_chat", ("cohere", "command-r")),
    ],
)
def test_custom_llm_provider(model: str, custom: str, expected: tuple[str, str]) -> None:
    assert resolve_model(model, custom_llm_provider=custom) == expected


def test_unknown_custom_provider_lists_known_keys() -> None:
    with pytest.raises(UnknownModelError, match=r"Unknown provider 'nope'.*groq"):
        resolve_model("x", custom_llm_provider="nope")


@pytest.mark.parametrize("model", ["llama3-8b-8192", "o100-custom", "mixtral", "o5x", "gpt4"])
def test_unknown_bare_name_says_how_to_prefix(model: str) -> None:
    with pytest.raises(UnknownModelError) as info:
        resolve_model(model)
    message = str(info.value)
    assert f"Unknown model {model!r}" in message
    assert f"'groq/{model}'" in message
    assert f"'openai/{model}' with api_base" in message
    assert "Known providers: " in message and "anthropic" in message and "groq" in message
    assert isinstance(info.value, BadRequestError)
    assert info.value.status_code == 400


@pytest.mark.parametrize("model", ["meta-llama/Llama-3-8B", "notaprovider/gpt-4o"])
def test_slash_with_unknown_prefix(model: str) -> None:
    with pytest.raises(UnknownModelError, match="is not a known provider"):
        resolve_model(model)


@pytest.mark.parametrize("model", ["", "   ", "groq/"])
def test_empty_or_dangling(model: str) -> None:
    with pytest.raises(UnknownModelError):
        resolve_model(model)


def test_every_registered_openai_compatible_key_has_an_adapter() -> None:
    for key in ("openai", "azure", "groq", "mistral", "deepseek", "together_ai", "fireworks_ai", "openrouter"):
        assert key in provider_keys()
        assert get_adapter(key).name == key
    for key in ("perplexity", "xai", "ollama", "hosted_vllm", "lm_studio"):
        assert get_adapter(key).name == key
