"""Shared by the virtual-key tests: a config with priced models on the emulator, and small HTTP helpers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from multidict import CIMultiDict

from tests.fixtures_emulator import EmulatorServer

MASTER = "sk-master-1234"
ADMIN = {"Authorization": f"Bearer {MASTER}"}
MESSAGES = [{"role": "user", "content": "hello keys"}]


def keys_config(emulator: EmulatorServer, database_url: str | None, **extra: Any) -> dict[str, Any]:
    """Three groups on the emulator: gpt-4o-mini and gpt-4o are priced (genai-prices), ``slow`` waits 300 ms."""

    def entry(name: str, model: str, **info: Any) -> dict[str, Any]:
        params = {"model": f"openai/{model}", "api_base": emulator.openai_base, "api_key": "k"}
        return {"model_name": name, "litellm_params": params, "model_info": {"id": name, **info}}

    general: dict[str, Any] = {"master_key": MASTER}
    if database_url is not None:
        general["database_url"] = database_url
    return {
        "model_list": [
            entry("cheap", "gpt-4o-mini", access_groups=["basic"]),
            entry("smart", "gpt-4o", access_groups=["premium"]),
            entry("slow", "gpt-4o-mini-delay-300", access_groups=["basic"]),
        ],
        "general_settings": general,
        **extra,
    }


async def call(
    http: aiohttp.ClientSession, url: str, path: str, body: dict[str, Any] | None = None, *, key: str = MASTER
) -> tuple[int, Any, CIMultiDict[str]]:
    """POST ``body`` (or GET when None) with ``key``; (status, JSON, headers)."""
    headers = {"Authorization": f"Bearer {key}"}
    if body is None:
        async with http.get(url + path, headers=headers) as resp:
            return resp.status, await resp.json(content_type=None), CIMultiDict(resp.headers)
    async with http.post(url + path, json=body, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None), CIMultiDict(resp.headers)


async def chat(
    http: aiohttp.ClientSession, url: str, key: str, model: str = "cheap"
) -> tuple[int, Any, CIMultiDict[str]]:
    return await call(http, url, "/v1/chat/completions", {"model": model, "messages": MESSAGES}, key=key)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float, step: float = 0.05) -> float:
    """Seconds until ``check()`` is true; fails after ``timeout``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if await check():
            return time.monotonic() - start
        await asyncio.sleep(step)
    raise AssertionError(f"not true within {timeout} s")


async def early_in_a_wall_window(window: float, needed: float) -> None:
    """Wait, when needed, until a fresh key window (aligned on the wall clock) has ``needed`` seconds left."""
    left = window - time.time() % window
    if left < needed:
        await asyncio.sleep(left + 0.05)
