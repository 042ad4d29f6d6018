"""The floor: a bare Starlette + aiohttp pass-through (no auth, no parsing, no routing), one uvicorn worker.

``python bench/floor_proxy.py --upstream http://127.0.0.1:PORT --port P``
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


def build_app(upstream: str) -> Starlette:
    state: dict[str, aiohttp.ClientSession] = {}

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state["session"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1000))
        yield
        await state["session"].close()

    async def chat(request: Request) -> Response:
        body = await request.body()
        headers = {"content-type": "application/json", "authorization": "Bearer sk-bench"}
        # the same path upstream: /v1/chat/completions, or /v1/embeddings for the embeddings scenario
        resp = await state["session"].post(upstream + request.url.path, data=body, headers=headers)
        if resp.content_type == "text/event-stream":

            async def relay() -> AsyncIterator[bytes]:
                try:
                    async for chunk in resp.content.iter_any():
                        yield chunk
                finally:
                    resp.release()

            return StreamingResponse(relay(), status_code=resp.status, media_type="text/event-stream")
        data = await resp.read()
        resp.release()
        return Response(data, status_code=resp.status, media_type="application/json")

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    routes = [
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/v1/embeddings", chat, methods=["POST"]),
        Route("/health", health),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        build_app(args.upstream.rstrip("/")),
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )
