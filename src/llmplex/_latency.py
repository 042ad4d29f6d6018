"""Latency samples per model and the adaptive hedge delay derived from them (``hedge_delay="auto"``).

The rule is the classic one ("The Tail at Scale", Dean & Barroso, 2013): send the backup request
once the primary has taken longer than its p90-p95 latency. Only the slowest ~10 % of calls are
hedged, which cuts most of the tail for ~10 % extra requests. With fewer than ``MIN_SAMPLES``
samples a quantile means little, so the documented default applies.

Pure bookkeeping, no I/O: the SDK's ``AsyncClient`` keeps one ``LatencyTracker`` (recording costs a
deque append); the proxy keeps one ``LatencyWindow`` per deployment in its router state.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "DEFAULT_HEDGE_DELAY",
    "DEFAULT_QUANTILE",
    "MAX_AUTO_DELAY",
    "MIN_AUTO_DELAY",
    "MIN_SAMPLES",
    "WINDOW",
    "LatencyTracker",
    "LatencyWindow",
    "auto_hedge_delay",
    "quantile",
    "valid_quantile",
]

WINDOW = 64  # samples kept per model: recent enough to follow a shift, enough for a p90
MAX_LABELS = 1024  # models tracked per client; the least recently recorded one is dropped
MIN_SAMPLES = 8  # below this the quantile is noise: the default delay applies
DEFAULT_QUANTILE = 0.9
DEFAULT_HEDGE_DELAY = 0.5  # seconds, when there are too few samples
MIN_AUTO_DELAY = 0.01  # seconds: hedging sooner would double nearly every request
MAX_AUTO_DELAY = 30.0  # seconds: a slower primary is better raced at once (hedge_delay=None)


def valid_quantile(q: Any) -> bool:
    """A number in (0, 1]; bool is not a number here."""
    return isinstance(q, (int, float)) and not isinstance(q, bool) and 0 < q <= 1


def quantile(ordered: Sequence[float], q: float) -> float:
    """The ``q``-quantile of sorted, non-empty ``ordered``, interpolating linearly between ranks."""
    position = q * (len(ordered) - 1)
    low = int(position)
    if low + 1 >= len(ordered):
        return ordered[-1]
    return ordered[low] + (ordered[low + 1] - ordered[low]) * (position - low)


def auto_hedge_delay(samples_ms: Iterable[float], q: float = DEFAULT_QUANTILE) -> tuple[float, int]:
    """``(delay in seconds, samples used)``: the clamped ``q``-quantile, or the default with too few samples."""
    ordered = sorted(samples_ms)
    if len(ordered) < MIN_SAMPLES:
        return DEFAULT_HEDGE_DELAY, len(ordered)
    seconds = quantile(ordered, q) / 1000.0
    return min(max(seconds, MIN_AUTO_DELAY), MAX_AUTO_DELAY), len(ordered)


class LatencyWindow:
    """The last ``size`` latency samples (milliseconds) of one model or deployment."""

    __slots__ = ("_samples",)

    def __init__(self, size: int = WINDOW) -> None:
        self._samples: deque[float] = deque(maxlen=size)

    def add(self, ms: float) -> None:
        self._samples.append(ms)

    def extend(self, samples_ms: Iterable[float]) -> None:
        self._samples.extend(samples_ms)

    def samples(self) -> list[float]:
        return list(self._samples)

    def __len__(self) -> int:
        return len(self._samples)


class LatencyTracker:
    """Latency windows per model label, bounded in labels (LRU) and in samples per label.

    Completion latency and first-token latency (``stream=True``) are kept apart: a streamed race
    is decided on the first token, so its hedge delay must come from first-token latencies.
    """

    def __init__(self, *, window: int = WINDOW, max_labels: int = MAX_LABELS) -> None:
        self._window = window
        self._max_labels = max_labels
        self._windows: OrderedDict[tuple[str, bool], LatencyWindow] = OrderedDict()

    def record(self, label: str, ms: float, *, stream: bool = False) -> None:
        """Add one sample (milliseconds) for ``label``."""
        key = (label, stream)
        found = self._windows.get(key)
        if found is None:
            found = self._windows[key] = LatencyWindow(self._window)
            if len(self._windows) > self._max_labels:
                self._windows.popitem(last=False)
        else:
            self._windows.move_to_end(key)
        found.add(ms)

    def samples(self, label: str, *, stream: bool = False) -> list[float]:
        """The recorded samples of ``label``, oldest first (empty when unknown)."""
        found = self._windows.get((label, stream))
        return [] if found is None else found.samples()

    def hedge_delay(self, label: str, *, quantile: float = DEFAULT_QUANTILE, stream: bool = False) -> float:
        """The adaptive hedge delay for ``label`` in seconds (see ``auto_hedge_delay``)."""
        return auto_hedge_delay(self.samples(label, stream=stream), quantile)[0]

    def forget(self, label: str | None = None) -> None:
        """Drop the samples of ``label`` (both kinds), or of every label."""
        if label is None:
            self._windows.clear()
            return
        for stream in (False, True):
            self._windows.pop((label, stream), None)

    def __len__(self) -> int:
        return len(self._windows)
