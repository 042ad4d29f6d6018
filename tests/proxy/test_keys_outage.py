"""The key database going away and coming back (real PostgreSQL), and the default SQLite file created lazily."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from tests.fixtures_db import PG_HOST
from tests.fixtures_emulator import EmulatorServer
from tests.fixtures_proxy import ProxyServer
from tests.proxy.keys_support import call, chat, eventually, keys_config


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def _admin(statement: str) -> None:
    conn = await asyncpg.connect(f"{PG_HOST}/postgres", timeout=5)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def _cut(name: str) -> None:
    await _admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    await _admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")


async def test_a_database_outage_never_fails_inference(
    proxy_factory: Callable[[Any], ProxyServer],
    emulator: EmulatorServer,
    pg_databases: Callable[[], str],
    http: aiohttp.ClientSession,
) -> None:
    url = pg_databases()
    name = url.rsplit("/", 1)[1]
    proxy = proxy_factory(keys_config(emulator, url))
    _, made, _ = await call(http, proxy.url, "/key/generate", {"key_alias": "steady"})
    key = made["key"]
    assert (await chat(http, proxy.url, key))[0] == 200
    await _cut(name)
    try:
        for _ in range(5):  # served from the cache; spend waits in the buffer
            assert (await chat(http, proxy.url, key))[0] == 200

        async def reported() -> bool:
            _, health, _ = await call(http, proxy.url, "/health/readiness", None)
            return bool(
                health["db_state"] == "unavailable"
                and health["db"] == "Not connected"
                and health["spend_buffered_rows"] > 0
            )

        await eventually(reported, 10.0)
        status, body, _ = await call(http, proxy.url, "/key/generate", {})
        assert status == 503 and body["error"]["type"] == "no_db_connection"
    finally:
        await _admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')

    async def written() -> bool:
        _, logs, _ = await call(http, proxy.url, f"/spend/logs?api_key={key}", None)
        return isinstance(logs, list) and len(logs) == 6

    await eventually(written, 20.0, step=0.2)  # every request of the outage lands once, after it
    _, health, _ = await call(http, proxy.url, "/health/readiness", None)
    assert health["db"] == "connected" and health["db_state"] == "connected" and health["spend_buffered_rows"] == 0
    _, info, _ = await call(http, proxy.url, f"/key/info?key={key}", None)
    assert info["info"]["spend"] > 0


async def test_default_sqlite_file_is_created_by_the_first_key(
    proxy_factory: Callable[[Any], ProxyServer], emulator: EmulatorServer, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    config = keys_config(emulator, None, llmplex_settings={"data_dir": str(tmp_path / "data")})
    proxy = proxy_factory(config)
    file = tmp_path / "data" / "llmplex.db"
    _, health, _ = await call(http, proxy.url, "/health/readiness", None)
    assert health["db_state"] == "not created yet" and not file.exists()  # no keys: no database, no SQLAlchemy
    _, made, _ = await call(http, proxy.url, "/key/generate", {})
    assert file.is_file()
    assert (await chat(http, proxy.url, made["key"]))[0] == 200
    await asyncio.sleep(0)
