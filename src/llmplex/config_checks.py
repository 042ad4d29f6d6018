"""Typed access to config values: every failure names the key path and line; ignored keys are collected."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmplex.config_source import SourceDoc, join

__all__ = ["Checker"]

_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false", dict: "a mapping"}


class Checker:
    def __init__(self, doc: SourceDoc) -> None:
        self.doc = doc
        self._ignored: dict[str, str | None] = {}
        self._notes: list[str] = []  # other startup warnings (disabled deployments, missing keys)

    def note(self, message: str) -> None:
        """One more startup warning, said as given."""
        if message not in self._notes:
            self._notes.append(message)

    def mapping(self, value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.doc.error(path, f"must be a mapping, got {self._kind(path, value)}")
        return value

    def seq(self, value: Any, path: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.doc.error(path, f"must be a list, got {self._kind(path, value)}")
        return value

    def section(self, top: Mapping[str, Any], name: str, known: frozenset[str]) -> dict[str, Any]:
        """A top-level section; keys outside ``known`` are reported as ignored."""
        raw = top.get(name)
        section = self.mapping(raw if raw is not None else {}, name)
        for key in section:
            if key not in known:
                self.ignored(join(name, key))
        return section

    def required(self, parent: Mapping[str, Any], path: str, kind: type) -> Any:
        key = path.rsplit(".", 1)[-1]
        if parent.get(key) is None:
            raise self.doc.error(path, "is required")
        value = self.optional(parent, path, kind)
        if kind is str and not value.strip():
            raise self.doc.error(path, "must not be empty")
        return value

    def optional(self, parent: Mapping[str, Any], path: str, kind: type, *, minimum: float | None = None) -> Any:
        key = path.rsplit(".", 1)[-1]
        value = parent.get(key)
        if value is None:
            return None
        value = self._coerce(value, path, kind)
        if minimum is not None and value < minimum:
            raise self.doc.error(path, f"must be at least {minimum:g}, got {self.doc.shown(path, value)}")
        return value

    def _coerce(self, value: Any, path: str, kind: type) -> Any:
        if isinstance(value, str) and kind is not str and path in self.doc.from_env:
            value = _from_text(value, kind)  # os.environ/VAR always yields text
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if kind is dict and isinstance(value, dict):
            return value
        if isinstance(value, bool) and kind is not bool:
            raise self.doc.error(
                path, f"must be {_TYPE_NAMES.get(kind, kind.__name__)}, got {self.doc.shown(path, value)}"
            )
        if not isinstance(value, kind):
            raise self.doc.error(path, f"must be {_TYPE_NAMES.get(kind, kind.__name__)}, got {self._kind(path, value)}")
        return value

    def is_ignored(self, path: str) -> bool:
        """True when ``path`` or a key above it was reported as ignored."""
        probe = path
        while probe:
            if probe in self._ignored:
                return True
            cut = max(probe.rfind("."), probe.rfind("["))
            probe = probe[:cut] if cut > 0 else ""
        return False

    def _kind(self, path: str, value: Any) -> str:
        if value is None:
            return "nothing"
        if path in self.doc.from_env:
            return self.doc.shown(path, value)
        if isinstance(value, str):
            return f"the string {value[:40]!r}"
        return type(value).__name__

    def ignored(self, path: str, *, note: str | None = None) -> None:
        self._ignored.setdefault(path, note)

    def _line(self, path: str) -> int:
        where = self.doc.where(path)
        return int(where.rsplit("line ", 1)[1].rstrip(")")) if "line " in where else 0

    def warnings(self) -> list[str]:
        if not self._ignored:
            return list(self._notes)
        ordered = sorted(self._ignored.items(), key=lambda item: self._line(item[0]))
        items = [f"  {self.doc.where(path)}{f' - {note}' if note else ''}" for path, note in ordered]
        ignored = f"{self.doc.source}: llmplex ignores these keys (not supported yet):\n" + "\n".join(items)
        return [ignored, *self._notes]


def _from_text(value: str, kind: type) -> Any:
    text = value.strip()
    try:
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
    except ValueError:
        return value
    if kind is bool and text.lower() in ("true", "false"):
        return text.lower() == "true"
    return value
