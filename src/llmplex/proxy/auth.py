"""Master-key authentication: ``Authorization: Bearer``, ``api-key`` or ``x-api-key``, compared in constant time.

The key is never logged or echoed: failures say what was missing, not what was sent.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from llmplex.proxy.errors import ProxyError

__all__ = ["Authenticator"]

_AUTH_TYPE = "authentication_error"


class Authenticator:
    __slots__ = ("_key",)

    def __init__(self, master_key: str | None) -> None:
        self._key = master_key.encode() if master_key else None

    @property
    def enabled(self) -> bool:
        return self._key is not None

    def check(self, headers: Mapping[str, str]) -> None:
        """Raise a 401 ``ProxyError`` unless the request carries the master key."""
        if self._key is None:
            return
        given = _presented_key(headers)
        if given is None:
            raise ProxyError(
                401,
                "Authentication error: no API key passed. Send 'Authorization: Bearer <key>' "
                "(or an 'api-key' / 'x-api-key' header).",
                type=_AUTH_TYPE,
            )
        if not hmac.compare_digest(given.encode(), self._key):
            raise ProxyError(401, "Authentication error: invalid API key.", type=_AUTH_TYPE)

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
