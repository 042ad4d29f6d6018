"""Master-key authentication: ``Authorization: Bearer``, ``api-key`` or ``x-api-key``, compared in constant time.

The key is never logged or echoed: failures say what was missing, not what was sent.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from llmplex.proxy.errors import ProxyError

if TYPE_CHECKING:
    from llmplex.proxy.keys.model import Principal

__all__ = ["Authenticator"]

_AUTH_TYPE = "authentication_error"


class Authenticator:
    __slots__ = ("_key", "_verify")

    def __init__(self, master_key: str | None, verify: Callable[[str], Principal | None] | None = None) -> None:
        self._key = master_key.encode() if master_key else None
        self._verify = verify  # virtual keys (proxy/keys): a cache lookup that raises ProxyError when refused

    @property
    def enabled(self) -> bool:
        return self._key is not None

    def check(self, headers: Mapping[str, str]) -> Principal | None:
        """None for the master key (or no auth); the caller of a virtual key; else a 401 ``ProxyError``.

        ``verify`` (virtual keys) returns None for a key it does not know, or raises for one it refuses.
        """
        if self._key is None:
            return None
        given = _presented_key(headers)
        if given is None:
            raise ProxyError(
                401,
                "Authentication error: no API key passed. Send 'Authorization: Bearer <key>' "
                "(or an 'api-key' / 'x-api-key' header).",
                type=_AUTH_TYPE,
            )
        if hmac.compare_digest(given.encode(), self._key):
            return None
        principal = self._verify(given) if self._verify is not None else None
        if principal is not None:
            return principal
        raise ProxyError(401, "Authentication error: invalid API key.", type=_AUTH_TYPE)

    def is_master(self, headers: Mapping[str, str]) -> bool:
        given = _presented_key(headers)
        return self._key is not None and given is not None and hmac.compare_digest(given.encode(), self._key)

    def presented(self, headers: Mapping[str, str]) -> str | None:
        """The key the request carries (never log it)."""
        return _presented_key(headers)

    def __repr__(self) -> str:
        return f"Authenticator(enabled={self.enabled})"


def _presented_key(headers: Mapping[str, str]) -> str | None:
    authorization = headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() == "bearer" and token:
            return token
    for name in ("api-key", "x-api-key"):
        value = headers.get(name)
        if value:
            return value.strip()
    return None
