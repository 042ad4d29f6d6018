"""Router state: per process by default, shared through Redis when ``redis_host``/``redis_url`` is configured."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from llmplex.router.deployments import Deployment
from llmplex.router.settings import RedisSettings, RouterSettings
from llmplex.router.state.local import LocalState, RouterState, Stats

__all__ = ["LocalState", "RouterState", "Stats", "make_state"]


def make_state(
    deployments: Sequence[Deployment],
    settings: RouterSettings,
    redis: RedisSettings | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> RouterState:
    if redis is None:
        return LocalState(deployments, settings, clock=clock)
    from llmplex.router.state.shared import RedisState  # the redis package is only needed when configured

    return RedisState(deployments, settings, redis, clock=clock)
