"""Client configuration: immutable, explicit, shared by the SDK and the proxy.

The environment is read here and only here (``ClientConfig.from_env``); everything else gets a
``ClientConfig`` passed in, so two clients with different settings coexist in one process.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

__all__ = ["ClientConfig"]

_EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """Settings of one ``AsyncClient`` / ``Client``.

    ``environ`` is a snapshot used to look up provider keys and base URLs
    (``OPENAI_API_KEY``, ``ANTHROPIC_BASE_URL``, ...); explicit call arguments always win.
    ``max_response_bytes`` caps a response body (after decompression; a larger one is a ``StreamError``),
    ``max_embedding_response_bytes`` an embeddings one (2,048 inputs x 3,072 floats as JSON: ~135 MB),
    ``max_buffered_response_bytes`` the bodies being read at once (each one's first MiB not counted; a body
    read alone may pass it up to its own cap; one that would overdraw it beside others is a ``StreamError``
    at once), ``max_stream_event_bytes`` one event of a stream.
    ``secrets`` are values (keys) never shown in an error message, besides the request's own key, which is
    always redacted.
    """

    environ: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    num_retries: int = 2
    timeout: float = 600.0
    stream_first_token_timeout: float | None = None
    stream_idle_timeout: float = 120.0
    max_connections: int = 1000
    drop_params: bool = False
    trust_env: bool = True
    retry_max_delay: float = 60.0
    default_headers: Mapping[str, str] = field(default_factory=dict)
    max_response_bytes: int = 32 * 1024 * 1024
    max_embedding_response_bytes: int = 256 * 1024 * 1024
    max_buffered_response_bytes: int = 48 * 1024 * 1024
    max_stream_event_bytes: int = 8 * 1024 * 1024
    secrets: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ClientConfig:
        source = os.environ if environ is None else environ
        return cls(environ=MappingProxyType(dict(source)), **overrides)

    def with_overrides(self, **overrides: Any) -> ClientConfig:
        return replace(self, **overrides)

    def lookup(self, names: Sequence[str]) -> str | None:
        """The first non-empty environment value among ``names``."""
        for name in names:
            value = self.environ.get(name)
            if value:
                return value
        return None

    def __repr__(self) -> str:
        # never print the environment: it holds secrets
        return (
            f"ClientConfig(num_retries={self.num_retries}, timeout={self.timeout}, "
            f"max_connections={self.max_connections}, drop_params={self.drop_params})"
        )
