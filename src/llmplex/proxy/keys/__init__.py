"""Virtual keys, users, teams, budgets and spend (LiteLLM's key management), on ``llmplex.store``.

``KeyService`` (service.py) is what the proxy holds; ``auth.py`` asks it about a key, it never asks
``auth.py``. The request path reads only the in-process cache; the store is written off the path.
"""
