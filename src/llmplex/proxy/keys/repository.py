"""Keys, users, teams and spend logs in the store: SQLAlchemy Core statements, one function per question.

Every function takes the ``AsyncConnection`` of a transaction the caller opened (``store.transaction()``
or ``store.read()``), so a management call is one transaction. Rows are plain dicts.
"""

from __future__ import annotations

import functools
import secrets
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import Table, bindparam, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from llmplex.proxy.keys.model import Entity, Kind
from llmplex.store.keys_tables import cache_epoch, keys, spend_logs, teams, users

__all__ = [
    "add_spend",
    "bump_epoch",
    "delete_rows",
    "entity_of",
    "get_row",
    "insert_logs",
    "insert_row",
    "list_keys",
    "load_all",
    "query_logs",
    "read_epoch",
    "reset_budget",
    "rows_where",
    "update_row",
]

TABLES: dict[Kind, Table] = {"key": keys, "user": users, "team": teams}
ID_COLUMN: dict[Kind, str] = {"key": "token", "user": "user_id", "team": "team_id"}


def _plain(row: Mapping[Any, Any]) -> dict[str, Any]:
    # column names come back as ``quoted_name`` (a str subclass that orjson will not take as a key)
    return {str(k): v for k, v in row.items()}


def _id(kind: Kind) -> ColumnElement[Any]:
    return TABLES[kind].c[ID_COLUMN[kind]]


async def insert_row(conn: AsyncConnection, kind: Kind, row: Mapping[str, Any]) -> None:
    await conn.execute(insert(TABLES[kind]).values(**row))


async def get_row(conn: AsyncConnection, kind: Kind, id_: str) -> dict[str, Any] | None:
    found = (await conn.execute(select(TABLES[kind]).where(_id(kind) == id_))).mappings().first()
    return _plain(found) if found is not None else None


async def rows_where(conn: AsyncConnection, kind: Kind, **equals: Any) -> list[dict[str, Any]]:
    table = TABLES[kind]
    query = select(table)
    for column, value in equals.items():
        query = query.where(table.c[column] == value)
    return [_plain(r) for r in (await conn.execute(query)).mappings()]


async def update_row(conn: AsyncConnection, kind: Kind, id_: str, values: Mapping[str, Any]) -> bool:
    result = await conn.execute(update(TABLES[kind]).where(_id(kind) == id_).values(**values))
    return bool(result.rowcount)


async def delete_rows(conn: AsyncConnection, kind: Kind, ids: Sequence[str]) -> list[str]:
    """Delete the rows that exist; returns their ids."""
    if not ids:
        return []
    column = _id(kind)
    found = list((await conn.execute(select(column).where(column.in_(ids)))).scalars())
    if found:
        await conn.execute(delete(TABLES[kind]).where(column.in_(found)))
    return found


async def list_keys(
    conn: AsyncConnection, *, page: int, size: int, filters: Mapping[str, str | None]
) -> tuple[list[dict[str, Any]], int]:
    conditions = [keys.c[name] == value for name, value in filters.items() if value is not None]
    total = (await conn.execute(select(func.count()).select_from(keys).where(*conditions))).scalar_one()
    query = select(keys).where(*conditions).order_by(keys.c.created_at.desc(), keys.c.token)
    rows = (await conn.execute(query.limit(size).offset((page - 1) * size))).mappings()
    return [_plain(r) for r in rows], int(total)


async def bump_epoch(conn: AsyncConnection) -> int:
    """Tell every replica's cache that keys, users or teams changed (they poll this one row); the new epoch."""
    stmt = (
        update(cache_epoch)
        .where(cache_epoch.c.name == "keys")
        .values(epoch=cache_epoch.c.epoch + 1)
        .returning(cache_epoch.c.epoch)
    )
    return int((await conn.execute(stmt)).scalar_one())


async def read_epoch(conn: AsyncConnection) -> int:
    value = (await conn.execute(select(cache_epoch.c.epoch).where(cache_epoch.c.name == "keys"))).scalar()
    return int(value or 0)


async def load_all(conn: AsyncConnection) -> tuple[int, list[Entity]]:
    """The epoch and every key, user and team (read in one transaction, so they agree)."""
    epoch = await read_epoch(conn)
    entities: list[Entity] = []
    for kind in ("team", "user", "key"):
        entities += [entity_of(kind, _plain(r)) for r in (await conn.execute(select(TABLES[kind]))).mappings()]
    return epoch, entities


def entity_of(kind: Kind, row: Mapping[str, Any]) -> Entity:
    return Entity(
        kind=kind,
        id=row[ID_COLUMN[kind]],
        models=tuple(row.get("models") or ()),
        max_budget=row.get("max_budget"),
        spend=float(row.get("spend") or 0.0),
        budget_duration=row.get("budget_duration"),
        budget_reset_at=row.get("budget_reset_at"),
        rpm_limit=row.get("rpm_limit"),
        tpm_limit=row.get("tpm_limit"),
        max_parallel_requests=row.get("max_parallel_requests"),
        blocked=bool(row.get("blocked")),
        alias=row.get("key_alias") or row.get("user_alias") or row.get("team_alias"),
        key_name=row.get("key_name"),
        user_id=row.get("user_id") if kind == "key" else None,
        team_id=row.get("team_id") if kind == "key" else None,
        expires=row.get("expires"),
        metadata=row.get("metadata") or {},
    )


async def add_spend(conn: AsyncConnection, amounts: Mapping[tuple[Kind, str], float]) -> None:
    """``spend = spend + amount`` for each (kind, id): one statement per kind, executed for many rows."""
    for kind in ("key", "user", "team"):
        params = [{"i": id_, "d": amount} for (k, id_), amount in amounts.items() if k == kind]
        if params:
            table = TABLES[kind]
            stmt = update(table).where(_id(kind) == bindparam("i")).values(spend=table.c.spend + bindparam("d"))
            await conn.execute(stmt, params)


_LOG_COLUMNS = tuple(c.name for c in spend_logs.columns)
# a log row as the request path builds it: a tuple in this order without the first (request_id, made here), with
# the metadata's x_request_id and status_code for the last column
LOG_COLUMNS = _LOG_COLUMNS
assert _LOG_COLUMNS[0] == "request_id" and _LOG_COLUMNS[-1] == "metadata"


async def insert_logs(conn: AsyncConnection, rows: Iterable[tuple[Any, ...]]) -> None:
    """Request-log rows (tuples in ``LOG_COLUMNS[1:]`` order) in one statement (SQLite) or one executemany.

    The request ids are time-ordered (microseconds and random bits per batch, then the row's place in
    it): each insert lands at the end of the primary-key index. Random ids spread the inserts over the
    whole index, which cost SQLite twice as much per row at 100,000 rows, and more as it grew.
    """
    batch = list(rows)
    if not batch:
        return
    prefix = f"{time.time_ns() // 1000:014x}{secrets.randbits(40):010x}"
    if conn.dialect.name == "sqlite" and sqlite3.sqlite_version_info >= (3, 32):
        await _sqlite_insert(conn, prefix, batch)
        return
    # Core's executemany builds each row's parameters through the compiler (~35 us a row): the driver's own
    dollar = conn.dialect.paramstyle == "numeric_dollar"  # asyncpg; SQLite takes qmark
    marks = [f"${i}" if dollar else "?" for i in range(1, len(_LOG_COLUMNS) + 1)]
    if dollar:  # the JSON column receives text: let PostgreSQL parse it
        marks[_LOG_COLUMNS.index("metadata")] += "::text::json"
    columns = ", ".join(f'"{c}"' for c in _LOG_COLUMNS)
    sql = f"INSERT INTO {spend_logs.name} ({columns}) VALUES ({', '.join(marks)})"
    dumps = orjson.dumps
    params = [
        (f"{prefix}{i:06x}", *row[:-2], dumps({"x_request_id": row[-2], "status_code": row[-1]}).decode())
        for i, row in enumerate(batch)
    ]
    await conn.exec_driver_sql(sql, params)


# rows per multi-row INSERT on SQLite, largest first (a few fixed sizes: sqlite3 caches their prepared statements;
# 512 rows x 16 parameters stays under SQLite's 32,766-parameter limit)
_SQLITE_CHUNKS = (512, 64, 8, 1)
_SUFFIXES = tuple(f"{i:03x}" for i in range(_SQLITE_CHUNKS[0]))  # a row's place in its chunk, in its id


async def _sqlite_insert(conn: AsyncConnection, prefix: str, batch: list[tuple[Any, ...]]) -> None:
    """Multi-row INSERTs: sqlite3's executemany releases and takes back the GIL around every row, and under
    load each of those is a thread switch against the busy event loop (~10 us of the loop's CPU a row,
    measured with the bench's proxy-keys load); one statement per chunk is one switch."""
    # aiosqlite itself: SQLAlchemy's exec_driver_sql walks every parameter of a statement (~1.5 us a row)
    driver = (await conn.get_raw_connection()).driver_connection
    assert driver is not None
    start = 0
    for size in _SQLITE_CHUNKS:
        while len(batch) - start >= size:
            flat: list[Any] = []
            extend = flat.extend
            chunk = f"{prefix}{start:06x}"
            for row, suffix in zip(batch[start : start + size], _SUFFIXES, strict=False):
                extend((chunk + suffix, *row))
            await (await driver.execute(_sqlite_values(size), flat)).close()
            start += size


@functools.cache
def _sqlite_values(rows: int) -> str:
    columns = ", ".join(f'"{c}"' for c in _LOG_COLUMNS)
    one = "(" + "?, " * (len(_LOG_COLUMNS) - 1) + "json_object('x_request_id', ?, 'status_code', ?))"
    return f"INSERT INTO {spend_logs.name} ({columns}) VALUES {', '.join([one] * rows)}"


async def reset_budget(conn: AsyncConnection, kind: Kind, id_: str, was: float, next_reset: float) -> bool:
    """Zero the spend of a window that ended; only the first replica to get here does it (``was`` must match)."""
    table = TABLES[kind]
    stmt = (
        update(table)
        .where(_id(kind) == id_, table.c.budget_reset_at == was)
        .values(spend=0.0, budget_reset_at=next_reset)
    )
    return bool((await conn.execute(stmt)).rowcount)


async def query_logs(
    conn: AsyncConnection, *, filters: Mapping[str, Any], start: float | None, end: float | None, limit: int
) -> list[dict[str, Any]]:
    query = select(spend_logs)
    for column, value in filters.items():
        if value is not None:
            query = query.where(spend_logs.c[column] == value)
    if start is not None:
        query = query.where(spend_logs.c.start_time >= start)
    if end is not None:
        query = query.where(spend_logs.c.start_time < end)
    query = query.order_by(spend_logs.c.start_time.desc()).limit(limit)
    return [_plain(r) for r in (await conn.execute(query)).mappings()]
