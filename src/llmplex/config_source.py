"""Reading a config file: YAML -> plain data plus the line of every key, and ``os.environ/VAR`` references.

Errors name the key path and line (``model_list[2].litellm_params.api_key (line 14)``), so the loader
keeps the node marks that ``yaml.safe_load`` throws away.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from llmplex.exceptions import ConfigError

__all__ = ["ENV_PREFIX", "SourceDoc", "parse_yaml"]

ENV_PREFIX = "os.environ/"


@dataclass(slots=True)
class SourceDoc:
    """Parsed YAML with a key-path -> line map; paths look like ``model_list[0].litellm_params.model``."""

    data: Any
    source: str
    lines: dict[str, int] = field(default_factory=dict)
    from_env: dict[str, str] = field(default_factory=dict)  # path -> VAR, for values read from os.environ/VAR
    unset: dict[str, str] = field(default_factory=dict)  # path -> variable, for os.environ/VAR left unset

    def where(self, path: str) -> str:
        """``path (line N)``, or the nearest parent's line when the key itself is absent."""
        probe = path
        while probe:
            line = self.lines.get(probe)
            if line is not None:
                return f"{path} (line {line})" if path else f"line {line}"
            probe = _parent(probe)
        return path or "top level"

    def shown(self, path: str, value: Any) -> str:
        """How an error may show the value at ``path``: never a value read from the environment (it may be a
        secret, or part of one), which is "the value of VAR" instead."""
        var = self.from_env.get(path)
        if var is not None:
            return f"the value of {var}"
        return repr(value[:40] if isinstance(value, str) else value)

    def error(self, path: str, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: {self.where(path)}: {message}")

    def resolve_env(self, environ: Mapping[str, str]) -> None:
        """Replace every ``"os.environ/VAR"`` string with the variable's value.

        An unset (or empty) variable counts as absent, as in LiteLLM: its key is dropped and the place
        recorded in ``unset`` (for one startup warning). A required key left absent is still an error.
        """
        data = self._resolve(self.data, "", environ)
        self.data = None if data is _ABSENT else data

    def _resolve(self, value: Any, path: str, environ: Mapping[str, str]) -> Any:
        if isinstance(value, str):
            if not value.startswith(ENV_PREFIX):
                return value
            name = value[len(ENV_PREFIX) :].strip()
            if not name:
                raise self.error(path, "'os.environ/' names no variable")
            resolved = environ.get(name)
            if not resolved:
                self.unset[path] = name
                return _ABSENT
            self.from_env[path] = name
            return resolved
        if isinstance(value, dict):
            items = ((k, self._resolve(v, join(path, k), environ)) for k, v in value.items())
            return {k: v for k, v in items if v is not _ABSENT}
        if isinstance(value, list):
            items_list = (self._resolve(v, f"{path}[{i}]", environ) for i, v in enumerate(value))
            return [v for v in items_list if v is not _ABSENT]
        return value


_ABSENT: Any = object()  # an unset os.environ/VAR: the key is left out


def join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _parent(path: str) -> str:
    cut = max(path.rfind("."), path.rfind("["))
    return path[:cut] if cut > 0 else ""


def parse_yaml(text: str, source: str) -> SourceDoc:
    """Safe-load ``text`` and record where each key sits; bad YAML -> ``ConfigError`` with line and column."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "unknown place"
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"{source}: invalid YAML at {where}: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {exc}") from None
    finally:
        loader.dispose()
    doc = SourceDoc(data=data, source=source)
    if node is not None:
        _record(node, "", doc.lines)
    return doc


def _record(node: yaml.Node, path: str, lines: dict[str, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = join(path, key_node.value if isinstance(key_node, yaml.ScalarNode) else "?")
            lines.setdefault(child, key_node.start_mark.line + 1)
            _record(value_node, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            child = f"{path}[{i}]"
            lines.setdefault(child, item.start_mark.line + 1)
            _record(item, child, lines)
