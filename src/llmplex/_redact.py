"""Keeping secrets out of what llmplex shows: URLs without credentials, texts without keys. Pure functions.

Anything built from an upstream's answer or from a configured URL passes through here before it reaches
an exception message, a log line or a response header.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

__all__ = ["MASK", "SECRET_HEADERS", "display_url", "redact_text", "request_secrets"]

# Request headers that carry a provider key (compared lower-cased).
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key", "cookie"})
MASK = "***"
# Shorter values are not redacted by exact match (replacing "ab" everywhere would garble the message).
_MIN_SECRET = 4

_PATTERNS = (
    # "Bearer sk-...", "Basic dXNlcjpwYXNz"
    (re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]+"), r"\1\2" + MASK),
    # "x-api-key: ...", "'api-key': '...'", "authorization=...", api_key="..."
    (
        re.compile(
            r"""(?i)\b(x-api-key|api-key|x-goog-api-key|api_key|apikey|authorization)(["']?\s*[:=]\s*["']?)"""
            r"""(?!(?:bearer|basic)\b)[^\s"',;&}\]]+"""
        ),
        r"\1\2" + MASK,
    ),
    # ?key=... / &key=... (Gemini puts the key in the query string)
    (re.compile(r"(?i)([?&](?:key|api[-_]?key)=)[^&\s\"'#]+"), r"\1" + MASK),
    # http://user:pass@host
    (re.compile(r"(://)[^\s/@\"']+@"), r"\1"),
)


def display_url(url: str) -> str:
    """``url`` as it may be shown: no ``user:pass@`` and no query string or fragment (keys live there)."""
    if "@" not in url and "?" not in url and "#" not in url:
        return url
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    # everything up to the last "@" is treated as userinfo: a password holding "/", "?" or "#" stays hidden
    at = rest.rfind("@")
    if at >= 0:
        rest = rest[at + 1 :]
    rest = rest.split("?", 1)[0].split("#", 1)[0]
    return f"{scheme}://{rest}" if sep else rest


def request_secrets(url: str, headers: Mapping[str, str]) -> list[str]:
    """The secret values one request carries: key headers, a ``key=`` query value, URL credentials."""
    found: list[str] = []
    for name, value in headers.items():
        if name.lower() in SECRET_HEADERS and value:
            scheme, space, token = value.partition(" ")
            found.append(token.strip() if space and scheme.lower() in ("bearer", "basic") else value)
    if "@" in url:
        authority = url.partition("://")[2]
        userinfo = authority[: authority.rfind("@")]
        found.extend(part for part in userinfo.split(":", 1) if part)
    if "?" in url:
        for pair in url.split("?", 1)[1].split("&"):
            name, _, value = pair.partition("=")
            if value and name.lower() in ("key", "api_key", "apikey", "api-key"):
                found.append(value)
    return found


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with each of ``secrets`` and anything shaped like a credential replaced by ``***``."""
    for secret in sorted({s for s in secrets if len(s) >= _MIN_SECRET}, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text
