"""``Store``: one async SQLAlchemy engine (SQLite via aiosqlite, PostgreSQL via asyncpg) and its migrations.

Everything that keeps state in a database (virtual keys and spend, batch jobs) goes through one
``Store`` per process: ``await store.open()`` (runs the migrations), ``store.transaction()`` for
writes, ``store.read()`` for reads, ``await store.ping()`` for health, ``await store.close()``.
Nothing lives in module globals. Code uses SQLAlchemy Core on the ``AsyncConnection`` it is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from llmplex.store.errors import StoreUnavailable
from llmplex.store.url import async_url, describe_url, is_sqlite, sqlite_path

__all__ = ["Store", "StoreUnavailable"]

logger = logging.getLogger("llmplex.store")

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
VERSION_TABLE = "llmplex_alembic_version"
_PG_MIGRATION_LOCK = 0x6C6C6D70  # "llmp": one replica migrates at a time
_SQLITE_BUSY_MS = 5000
_SQLITE_CONNECT_TRIES = 5


class Store:
    """One database: engine, migrations, transactions, health. ``url`` as the user wrote it or an async URL."""

    def __init__(self, url: str, *, pool_size: int = 5, connect_timeout: float = 5.0) -> None:
        self.url = async_url(url)
        self.sqlite = is_sqlite(self.url)
        self._pool_size = pool_size
        self._connect_timeout = connect_timeout
        self._engine: AsyncEngine | None = None

    def __repr__(self) -> str:
        return f"Store({describe_url(self.url)!r}, open={self._engine is not None})"

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise StoreUnavailable("the store is not open")
        return self._engine

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``: for the few statements that differ (upserts, row locks)."""
        return "sqlite" if self.sqlite else "postgresql"

    async def open(self, *, migrate: bool = True) -> None:
        """Create the engine (and the SQLite file's directory), then bring the schema to the latest revision."""
        if self._engine is not None:
            return
        if self.sqlite:
            path = sqlite_path(self.url)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            engine = create_async_engine(self.url, connect_args={"timeout": _SQLITE_BUSY_MS / 1000})
            _sqlite_pragmas(engine)
        else:
            engine = create_async_engine(
                self.url,
                pool_size=self._pool_size,
                max_overflow=self._pool_size,
                pool_pre_ping=False,  # a dead connection fails its statement (StoreUnavailable); callers retry
                connect_args={"timeout": self._connect_timeout, "command_timeout": 30},
            )
        self._engine = engine
        if migrate:
            try:
                await self.migrate()
            except BaseException:
                await self.close()
                raise

    async def close(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            await engine.dispose()

    async def migrate(self, revision: str = "head") -> None:
        """Alembic ``upgrade`` to ``revision``; safe when several replicas start at once (a lock serialises them)."""
        for attempt in range(_SQLITE_CONNECT_TRIES):
            try:
                async with self._connection(immediate=True) as conn, conn.begin():
                    if not self.sqlite:
                        await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
                    await conn.run_sync(_upgrade, revision)
                return
            except StoreUnavailable as exc:
                # several processes opening a new SQLite file at once: a connection that read the file before
                # another switched it to WAL and began migrating gets "database is locked" at once from its own
                # ``PRAGMA journal_mode=WAL`` (SQLite refuses to wait there: it would deadlock), not after the busy
                # timeout. The file is in WAL mode by then, so connecting again succeeds.
                if not self.sqlite or "locked" not in str(exc) or attempt == _SQLITE_CONNECT_TRIES - 1:
                    raise
                await asyncio.sleep(0.05 * (attempt + 1))

    async def revision(self) -> str | None:
        """The schema revision in the database (None before the first migration)."""
        async with self.read() as conn:
            return await conn.run_sync(_current_revision)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction: committed on exit, rolled back on error. SQLite takes its write lock at once."""
        async with self._connection(immediate=True) as conn, conn.begin():
            yield conn

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only transaction (rolled back on exit)."""
        async with self._connection(immediate=False) as conn, conn.begin():
            yield conn

    async def ping(self, timeout: float = 2.0) -> bool:
        """True when a ``SELECT 1`` answers within ``timeout`` seconds."""
        if self._engine is None:
            return False
        try:
            async with asyncio.timeout(timeout), self.read() as conn:
                await conn.execute(text("SELECT 1"))
        except (StoreUnavailable, TimeoutError):
            return False
        return True

    @contextlib.asynccontextmanager
    async def _connection(self, *, immediate: bool) -> AsyncIterator[AsyncConnection]:
        conn = self.engine.connect()
        try:
            await conn.start()
        except (DBAPIError, OSError, TimeoutError) as exc:  # any failure to connect: refused, not accepting, auth
            raise self._unavailable(exc) from exc
        try:
            if self.sqlite and immediate:
                await conn.execution_options(llmplex_immediate=True)
            yield conn
        except (OperationalError, InterfaceError, OSError, TimeoutError) as exc:
            raise self._unavailable(exc) from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise self._unavailable(exc) from exc
            raise
        finally:
            await conn.close()

    def _unavailable(self, exc: BaseException) -> StoreUnavailable:
        return StoreUnavailable(f"database {describe_url(self.url)} unavailable: {_reason(exc)}")


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return f"{type(orig).__name__}: {str(orig).splitlines()[0] if str(orig) else ''}"[:300]


def _sqlite_pragmas(engine: AsyncEngine) -> None:
    """WAL (readers never wait for the writer), a busy timeout, and transactions that SQLAlchemy controls.

    pysqlite's own transaction handling does not cover DDL, so it is switched off and ``BEGIN`` is
    emitted here: migrations are then atomic, and writers take the lock up front (``BEGIN IMMEDIATE``)
    instead of failing to upgrade a read lock when another process wrote in between.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("llmplex_immediate")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _alembic_config(connection: Any) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    config.attributes["version_table"] = VERSION_TABLE
    return config


def _upgrade(connection: Any, revision: str) -> None:
    from alembic import command

    command.upgrade(_alembic_config(connection), revision)


def _current_revision(connection: Any) -> str | None:
    from alembic.migration import MigrationContext

    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()
