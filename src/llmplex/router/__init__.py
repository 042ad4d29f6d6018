"""The Router: one routing core under the SDK (``llmplex.Router``) and the proxy.

``router.py`` LiteLLM's ``Router`` API; ``core.py`` the per-call engine (pick, call, retry);
``strategies.py``; ``fallbacks.py`` (fallback groups, backoff, cooldown rules); ``deployments.py``
(the one ``model_list`` parser); ``settings.py``; ``state/`` (in-process or Redis-shared counters).
Nothing here imports ``llmplex.proxy``.
"""

from llmplex.router.core import Routed
from llmplex.router.deployments import Deployment
from llmplex.router.router import Router
from llmplex.router.settings import RedisSettings, RouterSettings

__all__ = ["Deployment", "RedisSettings", "Routed", "Router", "RouterSettings"]
