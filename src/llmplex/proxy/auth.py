"""Authentication: which header carries the key (``presented_key``), and whether it is valid (``Authenticator``).

Keys are read the way LiteLLM's proxy reads them: ``x-litellm-api-key``, ``Authorization: Bearer <key>``
(or a bare ``Authorization: <key>``), ``api-key`` (Azure clients), ``x-api-key`` (Anthropic clients),
``x-goog-api-key`` (Gemini clients); the first one present wins. Extraction and verification are separate
so another kind of key (virtual keys) plugs in as one more verifier; the master key is checked first
(one constant-time comparison of UTF-8 bytes: auth stays cheap on the hot path).

The key is never logged or echoed: failures say what was missing, not what was sent.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from llmplex.exceptions import ConfigError
from llmplex.proxy.errors import ProxyError

if TYPE_CHECKING:
    from llmplex.proxy.keys.model import Principal

__all__ = ["KEY_HEADERS", "Authenticator", "KeyVerifier", "master_key_setting", "presented_key"]

_AUTH_TYPE = "authentication_error"
# the headers a key is read from, in LiteLLM's order of precedence
KEY_HEADERS = ("x-litellm-api-key", "authorization", "api-key", "x-api-key", "x-goog-api-key")
_MISSING = (
    "Authentication error: no API key passed. Send 'Authorization: Bearer <key>' (the key is also read from "
    "a bare 'Authorization: <key>' and from the 'x-litellm-api-key', 'api-key', 'x-api-key' and "
    "'x-goog-api-key' headers)."
)

# a verifier gets the presented key as UTF-8 bytes and returns who is calling (a virtual key's ``Principal``),
# or None for a key it does not know; it may raise a ``ProxyError`` for a key it knows but refuses (expired,
# blocked). It runs on every request, so it must be cheap (virtual keys: an in-memory lookup)
KeyVerifier = Callable[[bytes], "Principal | None"]


def master_key_setting(value: str | None, where: str) -> str | None:
    """The configured master key, stripped; ``None`` when not configured. Empty or whitespace -> ``ConfigError``.

    Clients strip the keys they send (and HTTP drops surrounding whitespace from header values), so a
    padded key could never match; a blank one would pass the "no authentication" guard yet admit nobody.
    """
    if value is None:
        return None
    key = value.strip()
    if not key:
        raise ConfigError(f"{where}: the master key is empty (or only whitespace); set a real key or remove it")
    return key


class Authenticator:
    __slots__ = ("_key", "_verifiers")

    def __init__(self, master_key: str | None, verifiers: Sequence[KeyVerifier] = ()) -> None:
        key = master_key_setting(master_key, "master_key")
        self._key = key.encode() if key is not None else None
        self._verifiers = tuple(verifiers)

    @property
    def enabled(self) -> bool:
        return self._key is not None or bool(self._verifiers)

    def check(self, headers: Mapping[str, str]) -> Principal | None:
        """None for the master key (or when auth is off); a verifier's caller for another valid key; else 401."""
        if not self.enabled:
            return None
        given = presented_key(headers)
        if given is None:
            raise ProxyError(401, _MISSING, type=_AUTH_TYPE)
        # UTF-8 bytes: compare_digest on str accepts ASCII only, and Starlette decodes headers as Latin-1
        raw = given.encode("latin-1", "replace")
        if self._key is not None and hmac.compare_digest(raw, self._key):
            return None
        for verify in self._verifiers:
            principal = verify(raw)
            if principal is not None:
                return principal
        raise ProxyError(401, "Authentication error: invalid API key.", type=_AUTH_TYPE)

    def is_master(self, headers: Mapping[str, str]) -> bool:
        """Whether the request carries the master key (management endpoints)."""
        given = presented_key(headers)
        if self._key is None or given is None:
            return False
        return hmac.compare_digest(given.encode("latin-1", "replace"), self._key)

    def __repr__(self) -> str:
        return f"Authenticator(enabled={self.enabled})"


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key a request presents, from the first of ``KEY_HEADERS`` that is set; ``None`` when there is none."""
    for name in KEY_HEADERS:
        value = headers.get(name)
        if not value:
            continue
        value = value.strip()
        if name in ("authorization", "x-litellm-api-key"):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer":
                value = token.strip()
        if value:
            return value
    return None
