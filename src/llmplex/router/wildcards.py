"""Wildcard deployments, routed as LiteLLM routes them.

A ``model_name`` with ``*`` (``"*"``, ``"openai/*"``, ``"anthropic/claude-*"``) is a pattern: each ``*``
matches any text, and what it matched fills the ``*`` of the deployment's ``litellm_params.model``
in order (``model_name: "*"`` + ``model: "openai/*"``: a request for ``gpt-4o`` calls ``openai/gpt-4o``).
An exact ``model_name`` always wins; among patterns the longest (most specific) is tried first, as in
LiteLLM's ``PatternMatchRouter``. A pattern whose ``*`` in the model cannot be filled is refused at
startup with its place in the file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

__all__ = ["Pattern", "WildcardTable", "is_wildcard", "pattern_problem"]


class _Entry(Protocol):
    @property
    def model_name(self) -> str: ...

    @property
    def model(self) -> str: ...


E = TypeVar("E", bound=_Entry)


def is_wildcard(model_name: str) -> bool:
    return "*" in model_name


def pattern_problem(model_name: str, model: str) -> str | None:
    """Why a wildcard deployment cannot route (None when it can)."""
    stars, fills = model_name.count("*"), model.count("*")
    if fills and not stars:
        return f"model {model!r} has a '*' but model_name {model_name!r} has none, so nothing can fill it"
    if fills > stars:
        return (
            f"model {model!r} has {fills} '*' but model_name {model_name!r} matches only {stars}; "
            "each '*' in the model is filled by one '*' of the model_name"
        )
    return None


@dataclass(frozen=True, slots=True)
class Pattern(Generic[E]):
    model_name: str
    regex: re.Pattern[str]
    entries: tuple[E, ...]

    def fill(self, entry: E, match: re.Match[str]) -> str:
        model = entry.model
        for segment in match.groups():
            if "*" not in model:
                break
            before = model.partition("*")[0]
            if before.endswith("/") and segment.startswith(before):
                segment = segment[len(before) :]  # "openai/gpt-4o" through "*" -> "openai/*": not openai/openai/
            model = model.replace("*", segment, 1)
        return model


class WildcardTable(Generic[E]):
    """The wildcard deployments of a ``model_list``, most specific pattern first."""

    def __init__(self, entries: Iterable[E]) -> None:
        grouped: dict[str, list[E]] = {}
        for entry in entries:
            if is_wildcard(entry.model_name):
                grouped.setdefault(entry.model_name, []).append(entry)
        patterns = [
            Pattern(name, re.compile(re.escape(name).replace(r"\*", "(.*)") + r"\Z", re.DOTALL), tuple(members))
            for name, members in grouped.items()
        ]
        # LiteLLM's specificity order: longer patterns first, then those with more wildcards
        patterns.sort(key=lambda p: (len(p.regex.pattern), p.model_name.count("*")), reverse=True)
        self.patterns: tuple[Pattern[E], ...] = tuple(patterns)

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def match(self, requested: str) -> tuple[Pattern[E], list[tuple[E, str]]] | None:
        """The first pattern matching ``requested`` and, per deployment, the model to call."""
        for pattern in self.patterns:
            found = pattern.regex.match(requested)
            if found is not None:
                return pattern, [(entry, pattern.fill(entry, found)) for entry in pattern.entries]
        return None

    def names(self) -> Sequence[str]:
        return [p.model_name for p in self.patterns]
