"""Choosing one deployment among the group's available ones: LiteLLM's routing strategies.

- ``simple-shuffle``: random, weighted by ``weight``, else ``rpm``, else ``tpm`` (a deployment
  without the setting gets the average share);
- ``least-busy``: fewest requests in flight; ``latency-based-routing``: lowest moving average
  latency; ``usage-based-routing`` (and ``-v2``): fewest tokens in the current window.
Ties are broken at random. The numbers come from the ``RouterState`` (shared with Redis).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence

from llmplex.router.deployments import Deployment
from llmplex.router.state import RouterState

__all__ = ["choose"]


def choose(strategy: str, deployments: Sequence[Deployment], state: RouterState, rng: random.Random) -> Deployment:
    if strategy == "least-busy":
        return _lowest(deployments, state.in_flight, rng)
    if strategy == "latency-based-routing":
        return _lowest(deployments, lambda d: state.latency_ms(d) or 0.0, rng)
    if strategy.startswith("usage-based-routing"):
        return _lowest(deployments, state.tokens, rng)
    weights = _weights(deployments)
    if weights is None:
        return rng.choice(deployments)
    return rng.choices(deployments, weights=weights, k=1)[0]


def _lowest(deployments: Sequence[Deployment], key: Callable[[Deployment], float], rng: random.Random) -> Deployment:
    # a non-finite score (a NaN compares false with everything) counts as the worst, so a pick always exists
    scores = [score if math.isfinite(score := key(d)) else math.inf for d in deployments]
    best = min(scores)
    return rng.choice([d for d, score in zip(deployments, scores, strict=True) if score == best])


def _weights(deployments: Sequence[Deployment]) -> list[float] | None:
    for attr in ("weight", "rpm", "tpm"):
        values = [getattr(d, attr) for d in deployments]
        if any(v is not None for v in values):
            known = [v for v in values if v is not None]
            fill = sum(known) / len(known)  # a deployment without the setting gets the average share
            weights = [float(fill if v is None else v) for v in values]
            return weights if sum(weights) > 0 else None
    return None
