"""Behaviour switches: ``-``-separated directives in the model name, overridable by ``x-emulator-*`` headers.

``fast-delay-50-chunks-3`` waits 50 ms before answering and streams 3 content chunks;
``m-status-429-retryafter-1-times-2`` answers 429 (with ``retry-after: 1``) to the first two
requests for that exact model name. Unknown tokens are part of the model's name and ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

__all__ = ["FAULTS", "Directives", "Settings", "parse_directives"]

FAULTS = frozenset(
    {
        "midstream",
        "truncate",
        "stall",
        "stallheaders",
        "malformed",
        "reset",
        # hostile upstreams (see hostile.py)
        "rolestall",
        "pingstall",
        "redirect",
        "endlessline",
        "gzipbomb",
        "hugebody",
        "echokey",
        # a router's failover cases (see refusals.py)
        "roleend",
        "contextwindow",
        "contentpolicy",
    }
)

# directive token -> Directives field holding its integer argument
_NUMERIC = {
    "delay": "delay_ms",
    "ttft": "ttft_ms",
    "chunkdelay": "chunk_delay_ms",
    "chunks": "chunks",
    "status": "status",
    "retryafter": "retry_after",
    "retryafterms": "retry_after_ms",
    "times": "times",
    "mib": "size_mib",
}
_HEADER_PREFIX = "x-emulator-"
_FALSE = frozenset({"", "0", "false", "no", "off"})


@dataclass(frozen=True, slots=True)
class Settings:
    """Process-wide defaults (CLI flags); directives override them per request."""

    latency_ms: int = 0
    chunks: int = 5
    chunk_delay_ms: int = 0


@dataclass(frozen=True, slots=True)
class Directives:
    delay_ms: int = 0
    ttft_ms: int = 0
    chunk_delay_ms: int = 0
    chunks: int = 5
    status: int | None = None
    retry_after: int | None = None
    retry_after_ms: int | None = None
    times: int | None = None
    size_mib: int | None = None  # gzipbomb / hugebody size
    fault: str | None = None
    tool: bool = False

    @property
    def faulty(self) -> bool:
        return self.status is not None or self.fault is not None


def parse_directives(model: str, headers: Mapping[str, str], settings: Settings) -> Directives:
    directives = _from_name(model, settings)
    overrides = _from_headers(headers)
    return _clean(replace(directives, **overrides)) if overrides else directives


@lru_cache(maxsize=4096)
def _from_name(model: str, settings: Settings) -> Directives:
    values: dict[str, Any] = {
        "delay_ms": settings.latency_ms,
        "chunks": settings.chunks,
        "chunk_delay_ms": settings.chunk_delay_ms,
    }
    tokens = model.split("-")
    for index, token in enumerate(tokens):
        key = token.lower()
        argument = tokens[index + 1] if index + 1 < len(tokens) else ""
        if key in _NUMERIC and argument.isdigit():
            values[_NUMERIC[key]] = int(argument)
        elif key == "fault" and argument.lower() in FAULTS:
            values["fault"] = argument.lower()
        elif key == "tool":
            values["tool"] = True
    return _clean(Directives(**values))


def _from_headers(headers: Mapping[str, str]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for name, value in headers.items():
        if not name.startswith(_HEADER_PREFIX):
            continue
        key = name[len(_HEADER_PREFIX) :]
        value = value.strip()
        if key in _NUMERIC and value.isdigit():
            overrides[_NUMERIC[key]] = int(value)
        elif key == "fault" and value.lower() in FAULTS:
            overrides["fault"] = value.lower()
        elif key == "tool":
            overrides["tool"] = value.lower() not in _FALSE
    return overrides


def _clean(directives: Directives) -> Directives:
    """Drop values that cannot mean anything (a 2xx "error" status, zero chunks)."""
    status = directives.status
    if status is not None and not 400 <= status <= 599:
        directives = replace(directives, status=None)
    if directives.chunks < 1:
        directives = replace(directives, chunks=1)
    return directives
