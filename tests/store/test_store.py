"""``Store`` on a real SQLite file and a real PostgreSQL database: migrations, transactions, health, outages."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, text

from llmplex.exceptions import ConfigError
from llmplex.store import Store, StoreUnavailable
from llmplex.store.keys_tables import cache_epoch, teams
from llmplex.store.url import async_url, database_url, describe_url, sqlite_path


def test_urls_map_to_async_drivers(tmp_path: Path) -> None:
    assert async_url("sqlite:///rel.db") == "sqlite+aiosqlite:///rel.db"
    assert async_url("postgres://u:p@h/db") == "postgresql+asyncpg://u:p@h/db"
    assert async_url("postgresql://u@h:5433/db") == "postgresql+asyncpg://u@h:5433/db"
    assert database_url(None, tmp_path) == f"sqlite+aiosqlite:///{tmp_path}/llmplex.db"
    assert database_url("sqlite:////x/y.db", tmp_path) == "sqlite+aiosqlite:////x/y.db"
    assert sqlite_path("sqlite+aiosqlite:////x/y.db") == Path("/x/y.db")
    assert sqlite_path("sqlite+aiosqlite:///:memory:") is None
    assert describe_url("postgresql+asyncpg://user:secret@h/db") == "postgresql+asyncpg://h/db"
    for bad in ("mysql://h/db", "nothing"):
        with pytest.raises(ConfigError, match="database_url"):
            async_url(bad)


async def test_open_migrates_and_transactions_commit_or_roll_back(db_url: str) -> None:
    store = Store(db_url)
    await store.open()
    try:
        assert (
            await store.revision() == "0003_batch_creator"
        )  # the head: keys (0001), batch jobs (0002), their creator (0003)
        assert await store.ping()
        await store.migrate()  # idempotent: a second replica starting later finds the schema in place
        row = {"team_id": "t1", "models": [], "members_with_roles": [], "metadata": {}, "created_at": 1.0}
        async with store.transaction() as conn:
            await conn.execute(insert(teams).values(**row, updated_at=1.0))
        with pytest.raises(RuntimeError):
            async with store.transaction() as conn:
                await conn.execute(insert(teams).values(**{**row, "team_id": "t2"}, updated_at=1.0))
                raise RuntimeError("abort")
        async with store.read() as conn:
            ids = (await conn.execute(select(teams.c.team_id))).scalars().all()
            epoch = (await conn.execute(select(cache_epoch.c.epoch).where(cache_epoch.c.name == "keys"))).scalar()
        assert ids == ["t1"] and epoch == 0
    finally:
        await store.close()
    assert not await store.ping()


async def test_concurrent_migrations_on_one_database(db_url: str) -> None:
    """Replicas starting together: one migrates, the others wait for it and find the schema done."""
    stores = [Store(db_url) for _ in range(3)]
    try:
        await asyncio.wait_for(asyncio.gather(*(s.open() for s in stores)), 30)
        async with stores[0].read() as conn:
            count = (await conn.execute(select(func.count()).select_from(cache_epoch))).scalar()
        assert count == 1
    finally:
        for s in stores:
            await s.close()


async def test_sqlite_file_and_directory_are_created(tmp_path: Path) -> None:
    store = Store(database_url(None, tmp_path / "data"))
    await store.open()
    await store.close()
    assert (tmp_path / "data" / "llmplex.db").is_file()


async def test_unreachable_database_is_store_unavailable() -> None:
    store = Store("postgresql://postgres@127.0.0.1:1/none", connect_timeout=1.0)
    with pytest.raises(StoreUnavailable) as info:
        await asyncio.wait_for(store.open(), 10)
    assert "127.0.0.1:1/none" in str(info.value)
    assert not await store.ping()


async def test_password_never_in_errors() -> None:
    store = Store("postgresql://postgres:hunter2@127.0.0.1:1/none", connect_timeout=1.0)
    with pytest.raises(StoreUnavailable) as info:
        await asyncio.wait_for(store.open(), 10)
    assert "hunter2" not in str(info.value) and "hunter2" not in repr(store)


async def test_postgres_is_a_real_postgres(pg_url: str) -> None:
    store = Store(pg_url)
    await store.open()
    try:
        async with store.read() as conn:
            version = (await conn.execute(text("SHOW server_version"))).scalar()
        assert version and store.dialect == "postgresql"
    finally:
        await store.close()


def test_importing_llmplex_store_url_does_not_import_sqlalchemy() -> None:
    code = "import sys, llmplex.store.url, llmplex.proxy.app; assert 'sqlalchemy' not in sys.modules, 'imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
