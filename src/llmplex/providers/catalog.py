"""Bare model names -> provider, as data: exact names first, then family prefixes, longest first."""

from __future__ import annotations

__all__ = ["EXACT_NAMES", "PREFIXES", "provider_for_bare_name"]

EXACT_NAMES: dict[str, str] = {
    "claude-2": "anthropic",
    "claude-2.0": "anthropic",
    "claude-2.1": "anthropic",
    "claude-instant-1": "anthropic",
    "claude-instant-1.2": "anthropic",
    "command": "cohere",
    "command-light": "cohere",
    "command-nightly": "cohere",
    "command-r": "cohere",
    "command-r-plus": "cohere",
    "mistral-embed": "mistral",
    "davinci-002": "openai",
    "babbage-002": "openai",
}

PREFIXES: tuple[tuple[str, str], ...] = tuple(
    sorted(
        (
            ("gpt-", "openai"),
            ("ft:gpt-", "openai"),
            ("chatgpt-", "openai"),
            ("o1", "openai"),
            ("o3", "openai"),
            ("o4", "openai"),
            ("claude-", "anthropic"),
            ("command", "cohere"),
            ("c4ai-", "cohere"),
            ("gemini-", "gemini"),
            ("text-embedding-", "openai"),
            ("embed-", "cohere"),
        ),
        key=lambda row: -len(row[0]),
    )
)


def provider_for_bare_name(model: str) -> str | None:
    exact = EXACT_NAMES.get(model)
    if exact is not None:
        return exact
    for prefix, provider in PREFIXES:
        if model.startswith(prefix):
            # "o1"/"o3"/"o4" must be the family, not e.g. "o100-custom"
            if len(prefix) == 2 and len(model) > 2 and model[2] not in "-.":
                continue
            return provider
    return None
