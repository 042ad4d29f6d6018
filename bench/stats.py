"""Small statistics helpers: percentiles, median and spread across rounds, formatting."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], pct: float) -> float:
    """Linear-interpolated percentile (pct in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    k = (len(ordered) - 1) * pct / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    if lo == hi:
        return ordered[lo]
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(values: Sequence[float]) -> dict[str, float]:
    """Median and spread (min..max) of per-round values."""
    if not values:
        return {"median": math.nan, "min": math.nan, "max": math.nan, "n": 0}
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not b or math.isnan(a) or math.isnan(b):
        return None
    return a / b


def fmt(value: float | None, digits: int = 1, unit: str = "") -> str:
    if value is None or math.isnan(value):
        return "-"
    text = f"{value:,.0f}" if abs(value) >= 1000 and digits <= 1 else f"{value:,.{digits}f}"
    return f"{text}{unit}"


def fmt_spread(s: dict[str, float], digits: int = 1, unit: str = "") -> str:
    """``median (min..max)``; just the value when there is one round."""
    if not s.get("n"):
        return "-"
    if s["n"] == 1:
        return fmt(s["median"], digits, unit)
    return f"{fmt(s['median'], digits, unit)} ({fmt(s['min'], digits)}..{fmt(s['max'], digits)})"


def fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}x" if value >= 10 else f"{value:,.2f}x"
