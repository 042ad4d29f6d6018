"""The routes of the endpoints beyond chat, for ``create_app`` to mount (one list, one import).

``CAPABILITY_HANDLERS``: the fixed paths, which ``ProxyApp`` serves without Starlette's router and middleware
stack (as it serves chat); the Azure-style paths with a ``{model}`` in them take the Starlette route.
"""

from __future__ import annotations

from starlette.routing import Route

from llmplex.proxy.routes_completions import AZURE_COMPLETIONS_PATH, completions
from llmplex.proxy.routes_embeddings import AZURE_EMBEDDINGS_PATH, embeddings
from llmplex.proxy.routes_messages import count_tokens_endpoint, messages_endpoint

__all__ = ["CAPABILITY_HANDLERS", "capability_routes"]


def capability_routes() -> list[Route]:
    return [
        Route("/v1/embeddings", embeddings, methods=["POST"]),
        Route("/embeddings", embeddings, methods=["POST"]),
        Route(AZURE_EMBEDDINGS_PATH, embeddings, methods=["POST"]),
        Route("/v1/completions", completions, methods=["POST"]),
        Route("/completions", completions, methods=["POST"]),
        Route(AZURE_COMPLETIONS_PATH, completions, methods=["POST"]),
        Route("/v1/messages", messages_endpoint, methods=["POST"]),
        Route("/v1/messages/count_tokens", count_tokens_endpoint, methods=["POST"]),
    ]


CAPABILITY_HANDLERS = {route.path: route.endpoint for route in capability_routes() if "{" not in route.path}
