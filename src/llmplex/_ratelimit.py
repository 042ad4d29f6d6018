"""Client-side pacing for a batch: keep requests per minute and tokens per minute under given limits.

Requests are spread evenly rather than sent in a burst: each start reserves the next free slot on
one timeline, whose gap is the larger of ``60 / rpm`` and ``tokens * 60 / tpm``. Providers count
``max_tokens`` against TPM when the request arrives, so the token estimate includes it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["Pacer", "estimate_tokens"]

_CHARS_PER_TOKEN = 4  # the usual rule of thumb for English text with BPE tokenizers
_TOKENS_PER_MESSAGE = 4  # role and framing


def estimate_tokens(messages: Sequence[Mapping[str, Any]], max_tokens: int | None = None) -> int:
    """Rough token count of a request: message text / 4 plus framing, plus the completion budget."""
    chars = 0
    for message in messages:
        chars += _text_length(message.get("content"))
    return chars // _CHARS_PER_TOKEN + _TOKENS_PER_MESSAGE * len(messages) + (max_tokens or 0)


def _text_length(content: Any) -> int:
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):  # content parts: count the text ones
        return sum(len(part.get("text") or "") for part in content if isinstance(part, dict))
    return 0


class Pacer:
    """Reserve start times so that at most ``rpm`` requests and ``tpm`` tokens start per minute."""

    def __init__(self, rpm: float | None = None, tpm: float | None = None) -> None:
        self._request_gap = 60.0 / rpm if rpm else 0.0
        self._token_gap = 60.0 / tpm if tpm else 0.0
        self._next: float | None = None

    @property
    def limits_tokens(self) -> bool:
        return self._token_gap > 0

    async def acquire(self, tokens: int = 0) -> None:
        """Wait for this request's slot. Slots are handed out in call order, so waiters never starve."""
        now = asyncio.get_running_loop().time()
        start = now if self._next is None or self._next < now else self._next
        self._next = start + max(self._request_gap, tokens * self._token_gap)
        if start > now:
            await asyncio.sleep(start - now)
