"""Router state: per process by default, shared through Redis when ``redis_host``/``redis_url`` is configured."""

from __future__ import annotations

import time
from collections.abc import Callable

from llmplex.proxy.config import ProxyConfig
from llmplex.router.state.local import LocalState, RouterState, Stats

__all__ = ["LocalState", "RouterState", "Stats", "make_state"]


def make_state(config: ProxyConfig, *, clock: Callable[[], float] = time.monotonic) -> RouterState:
    if config.redis is None:
        return LocalState(config.deployments, config.router, clock=clock)
    from llmplex.router.state.shared import RedisState  # the redis package is only needed when configured

    return RedisState(config.deployments, config.router, config.redis, clock=clock)
