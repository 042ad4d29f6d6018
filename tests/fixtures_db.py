"""Databases for tests: a fresh SQLite file per test, and one PostgreSQL database per test session.

PostgreSQL runs on 127.0.0.1:5432 (trust auth, user postgres). The session creates a uniquely named
database and drops it at the end; ``pg_url`` is that database's ``postgresql://`` URL. Tests that
need an empty schema call ``fresh_pg_url()`` for their own database (dropped at the end too).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

PG_HOST = os.environ.get("LLMPLEX_TEST_PG", "postgresql://postgres@127.0.0.1:5432")


async def _admin(statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(f"{PG_HOST}/postgres", timeout=5)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def _run(statement: str) -> None:
    # in a thread of its own: callers may be inside a running event loop (async tests)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _admin(statement)).result(timeout=30)


def _create(name: str) -> None:
    _run(f'CREATE DATABASE "{name}"')


def _drop(name: str) -> None:
    _run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[Callable[[], str]]:
    """``new()`` -> the URL of a new empty database; every one is dropped when the session ends."""
    names: list[str] = []
    prefix = f"llmplex_test_{uuid.uuid4().hex[:8]}"

    def new() -> str:
        name = f"{prefix}_{len(names)}"
        _create(name)
        names.append(name)
        return f"{PG_HOST}/{name}"

    yield new
    for name in names:
        _drop(name)


@pytest.fixture(scope="session")
def pg_url(pg_databases: Callable[[], str]) -> str:
    return pg_databases()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'llmplex.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test that takes it runs twice: on a new SQLite file, and on a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'llmplex.db'}"
    new: Callable[[], str] = request.getfixturevalue("pg_databases")
    return new()
