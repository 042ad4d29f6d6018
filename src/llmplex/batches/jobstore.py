"""The proxy's batch jobs in the database: files, batches, line claims with a lease, results, finalization.

Claims: one statement marks up to ``n`` lines of a batch ``RUNNING`` with this process as
``lease_owner`` until ``lease_until``. On PostgreSQL the candidate rows are locked ``FOR UPDATE SKIP
LOCKED``, so replicas claiming at once take different lines; SQLite has one writer at a time (its
transactions take the write lock up front), which serialises claims. A line whose lease ran out
(its process died) is claimable again. A result is written only by the lease's owner while the line
is still ``RUNNING``: a late answer from a process whose lease was taken over is dropped, so each
line gets exactly one result.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, case, delete, func, insert, or_, select, union_all, update

from llmplex.batches.result_file import total_bytes
from llmplex.batches.tables import DONE, PENDING, RUNNING, batch_files, batch_lines, batches
from llmplex.store import Store, StoreUnavailable

__all__ = ["Claimed", "Creator", "JobStore", "LineResult"]

_PAGE = 1_000


@dataclass(frozen=True, slots=True)
class Creator:
    """The virtual key that created a batch (its sha256 token), with that key's user and team then: who pays."""

    token: str
    user_id: str | None = None
    team_id: str | None = None


@dataclass(slots=True)
class Claimed:
    batch_id: str
    idx: int
    custom_id: str
    body: str
    creator: Creator | None = None  # set by the executor from the batch it claimed from


@dataclass(slots=True)
class LineResult:
    batch_id: str
    idx: int
    status_code: int
    result: str  # JSON text


class JobStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    # --- files -----------------------------------------------------------------------------------

    async def add_file(self, row: dict[str, Any]) -> None:
        async with self.store.transaction() as conn:
            await conn.execute(insert(batch_files).values(**row))

    async def get_file(self, file_id: str) -> dict[str, Any] | None:
        async with self.store.read() as conn:
            row = (await conn.execute(select(batch_files).where(batch_files.c.id == file_id))).mappings().first()
        return dict(row) if row is not None else None

    async def list_files(self, purpose: str | None, after: str | None, limit: int) -> list[dict[str, Any]]:
        query = select(batch_files).order_by(batch_files.c.created_at.desc(), batch_files.c.id.desc())
        if purpose:
            query = query.where(batch_files.c.purpose == purpose)
        async with self.store.read() as conn:
            rows = [dict(r) for r in (await conn.execute(query)).mappings()]
        return _page_after(rows, after, limit)

    async def delete_file(self, file_id: str) -> dict[str, Any] | None:
        async with self.store.transaction() as conn:
            row = (await conn.execute(select(batch_files).where(batch_files.c.id == file_id))).mappings().first()
            if row is not None:
                await conn.execute(delete(batch_files).where(batch_files.c.id == file_id))
        return dict(row) if row is not None else None

    # --- batches ---------------------------------------------------------------------------------

    async def create_batch(
        self,
        row: dict[str, Any],
        chunks: AsyncIterable[list[tuple[int, str, str]]],
        claimed_by: str | None = None,
    ) -> None:
        """The batch and all its lines (``(index, custom_id, body)`` chunks) in one transaction: a crash
        leaves none of it. ``claimed_by``: the lines start claimed by that owner, with no lease end (a
        provider's native batch answers them; ``release`` hands back what it did not)."""
        batch_id = row["id"]
        held = {} if claimed_by is None else {"state": RUNNING, "lease_owner": claimed_by, "lease_until": 1e18}
        async with self.store.transaction() as conn:
            await conn.execute(insert(batches).values(**row))
            async for chunk in chunks:
                rows = [{"batch_id": batch_id, "idx": i, "custom_id": c, "body": b, **held} for i, c, b in chunk]
                await conn.execute(insert(batch_lines), rows)

    async def set_native(self, batch_id: str, native: dict[str, Any] | None) -> None:
        async with self.store.transaction() as conn:
            await conn.execute(update(batches).where(batches.c.id == batch_id).values(native=native))

    async def native_batches(self) -> list[dict[str, Any]]:
        """Batches sent to a provider's batch API that have not ended."""
        query = select(batches).where(
            batches.c.native.is_not(None), batches.c.status.in_(("in_progress", "cancelling"))
        )
        async with self.store.read() as conn:
            return [dict(r) for r in (await conn.execute(query)).mappings()]

    async def line_indexes(self, batch_id: str) -> dict[str, int]:
        """custom_id -> line index."""
        query = select(batch_lines.c.custom_id, batch_lines.c.idx).where(batch_lines.c.batch_id == batch_id)
        async with self.store.read() as conn:
            return {r[0]: r[1] for r in await conn.execute(query)}

    async def get_batch(self, batch_id: str) -> dict[str, Any] | None:
        async with self.store.read() as conn:
            row = (await conn.execute(select(batches).where(batches.c.id == batch_id))).mappings().first()
            if row is None:
                return None
            out = dict(row)
            out["completed"], out["failed"] = await _counts(conn, batch_id)
        return out

    async def list_batches(self, after: str | None, limit: int) -> list[dict[str, Any]]:
        query = select(batches).order_by(batches.c.created_at.desc(), batches.c.id.desc())
        async with self.store.read() as conn:
            rows = [dict(r) for r in (await conn.execute(query)).mappings()]
            page = _page_after(rows, after, limit)
            for row in page:
                row["completed"], row["failed"] = await _counts(conn, row["id"])
        return page

    async def cancel(self, batch_id: str) -> bool:
        """``in_progress`` -> ``cancelling``; False when the batch is in another state."""
        async with self.store.transaction() as conn:
            result = await conn.execute(
                update(batches)
                .where(batches.c.id == batch_id, batches.c.status.in_(("validating", "in_progress")))
                .values(status="cancelling", cancelling_at=time.time())
            )
        return bool(result.rowcount)

    # --- execution -------------------------------------------------------------------------------

    async def active_batches(self) -> dict[str, Creator | None]:
        """The ``in_progress`` batches, oldest first, with who created them (read with them: no lookup per line)."""
        c = batches.c
        query = select(c.id, c.key_token, c.user_id, c.team_id).where(c.status == "in_progress").order_by(c.created_at)
        async with self.store.read() as conn:
            return {r[0]: Creator(r[1], r[2], r[3]) if r[1] else None for r in await conn.execute(query)}

    async def claim(
        self, batch_id: str, owner: str, n: int, lease: float, results: Sequence[LineResult] = ()
    ) -> list[Claimed]:
        """Up to ``n`` lines of the batch, the first by index among the pending ones and those whose lease
        ran out (a dead process's), leased to ``owner``; one statement. ``results`` (``finish``'s) are
        written in the same transaction, before: on SQLite each transaction costs several thread round trips.

        The two kinds are picked apart, each the first ``n`` of a range of the (batch_id, state, idx) index,
        then merged: with one ``state = PENDING OR (RUNNING and expired)`` filter the lines were walked in
        index order from the first, so each claim of a 100,000-line batch stepped over every line already
        done (50 ms a claim at half the batch; the claims were what bounded the executor)."""
        now = time.time()
        lines = batch_lines.c
        pick = batch_lines.alias("pick").c  # an alias: the same table inside would correlate to the UPDATE's rows
        # a cancelled (or ended) batch gives no more lines, whatever a replica's cached list says; an expired
        # one neither: the executor then finalizes it (as expired) once its lines in flight end
        open_batch = (
            select(batches.c.id)
            .where(batches.c.id == batch_id, batches.c.status == "in_progress", batches.c.expires_at > now)
            .exists()
        )
        kinds = [
            select(pick.idx).where(pick.batch_id == batch_id, which, open_batch).order_by(pick.idx).limit(n)
            for which in (pick.state == PENDING, and_(pick.state == RUNNING, pick.lease_until < now))
        ]
        picked: list[Any]
        if self.store.dialect == "postgresql":
            # materialized CTEs run once; as plain subqueries PostgreSQL may rerun them per row, and each rerun
            # skips the rows just locked: the UPDATE would take every line
            picked = [
                kind.with_for_update(skip_locked=True).cte(f"picked{i}").prefix_with("MATERIALIZED")
                for i, kind in enumerate(kinds)
            ]
        else:
            picked = [kind.subquery(f"picked{i}") for i, kind in enumerate(kinds)]
        merged = union_all(*(select(p.c.idx) for p in picked)).subquery("merged")
        chosen = select(merged.c.idx).order_by(merged.c.idx).limit(n)
        statement = (
            update(batch_lines)
            .where(lines.batch_id == batch_id, lines.idx.in_(chosen))
            .values(state=RUNNING, lease_owner=owner, lease_until=now + lease, attempts=lines.attempts + 1)
            .returning(lines.idx, lines.custom_id, lines.body)
        )
        async with self.store.transaction() as conn:
            if results:
                await self._finish(conn, owner, results)
            rows = (await conn.execute(statement)).all()
        return sorted((Claimed(batch_id, r[0], r[1], r[2]) for r in rows), key=lambda c: c.idx)

    async def renew(self, owner: str, lease: float) -> None:
        async with self.store.transaction() as conn:
            await conn.execute(
                update(batch_lines)
                .where(batch_lines.c.lease_owner == owner, batch_lines.c.state == RUNNING)
                .values(lease_until=time.time() + lease)
            )

    async def release(self, owner: str) -> None:
        """Give back this owner's unfinished claims (a clean shutdown): they run again without waiting for the lease."""
        async with self.store.transaction() as conn:
            await conn.execute(
                update(batch_lines)
                .where(batch_lines.c.lease_owner == owner, batch_lines.c.state == RUNNING)
                .values(state=PENDING, lease_owner=None, lease_until=None)
            )

    async def finish(self, owner: str, results: Sequence[LineResult]) -> None:
        async with self.store.transaction() as conn:
            await self._finish(conn, owner, results)

    async def _finish(self, conn: Any, owner: str, results: Sequence[LineResult]) -> None:
        lines = batch_lines.c
        statement = (
            update(batch_lines)
            .where(
                lines.batch_id == bindparam("b_id"),
                lines.idx == bindparam("b_idx"),
                lines.state == RUNNING,
                lines.lease_owner == owner,
            )
            .values(state=DONE, status_code=bindparam("b_status"), result=bindparam("b_result"), lease_owner=None)
        )
        params = [
            {"b_id": r.batch_id, "b_idx": r.idx, "b_status": r.status_code, "b_result": r.result} for r in results
        ]
        await conn.execute(statement, params)

    async def finalize(self, batch_id: str) -> str | None:
        """End the batch if nothing of it is left to run (or it expired); returns the new status, or None."""
        now = time.time()
        lines = batch_lines.c
        query = select(batches).where(batches.c.id == batch_id)
        if self.store.dialect == "postgresql":
            query = query.with_for_update()  # one replica finalizes; the other then sees it ended
        async with self.store.transaction() as conn:
            row = (await conn.execute(query)).mappings().first()
            if row is None or row["status"] not in ("in_progress", "cancelling"):
                return None
            left_states = (PENDING, RUNNING) if row["status"] == "in_progress" else (RUNNING,)
            left = (
                await conn.execute(select(func.count()).where(lines.batch_id == batch_id, lines.state.in_(left_states)))
            ).scalar_one()
            expired = row["status"] == "in_progress" and now > row["expires_at"]
            if left and not expired:
                return None
            completed, failed = await _counts(conn, batch_id)
            pending = 0
            if expired:
                pending = (
                    await conn.execute(select(func.count()).where(lines.batch_id == batch_id, lines.state != DONE))
                ).scalar_one()
            status = "cancelled" if row["status"] == "cancelling" else ("expired" if expired else "completed")
            values: dict[str, Any] = {"status": status, f"{status}_at": now}
            if status == "completed":
                values["finalizing_at"] = now
            if completed:
                values["output_file_id"] = await _result_file(conn, batch_id, "output", completed, now)
            if failed or pending:
                values["error_file_id"] = await _result_file(conn, batch_id, "errors", failed + pending, now)
            await conn.execute(update(batches).where(batches.c.id == batch_id).values(**values))
        with contextlib.suppress(StoreUnavailable):
            await self._measure(batch_id, values.get("output_file_id"), values.get("error_file_id"), expired)
        return status

    async def _measure(self, batch_id: str, output_id: str | None, error_id: str | None, expired: bool) -> None:
        """The result files' ``bytes``, rendered once from the lines (streamed a page at a time); the lines no
        longer change. A failure here leaves ``bytes`` 0: the files themselves are complete."""
        for file_id, errors in ((output_id, False), (error_id, True)):
            if file_id is None:
                continue
            size = await total_bytes(batch_id, self.result_pages(batch_id, errors, expired and errors))
            async with self.store.transaction() as conn:
                await conn.execute(update(batch_files).where(batch_files.c.id == file_id).values(bytes=size))

    async def result_pages(self, batch_id: str, errors: bool, include_unrun: bool) -> AsyncIterator[list[Any]]:
        """The batch's finished lines (``errors``: failed ones, plus never-run ones if asked) in line order."""
        lines = batch_lines.c
        last = -1
        while True:
            done_filter = and_(lines.state == DONE, lines.status_code >= 400 if errors else lines.status_code < 400)
            condition = or_(done_filter, lines.state != DONE) if include_unrun else done_filter
            query = (
                select(lines.idx, lines.custom_id, lines.status_code, lines.result)
                .where(lines.batch_id == batch_id, lines.idx > last, condition)
                .order_by(lines.idx)
                .limit(_PAGE)
            )
            async with self.store.read() as conn:
                rows = list((await conn.execute(query)).all())
            if not rows:
                return
            last = rows[-1][0]
            yield rows


async def _counts(conn: Any, batch_id: str) -> tuple[int, int]:
    lines = batch_lines.c
    done_ok = func.sum(case((and_(lines.state == DONE, lines.status_code < 400), 1), else_=0))
    done_failed = func.sum(case((and_(lines.state == DONE, lines.status_code >= 400), 1), else_=0))
    row = (await conn.execute(select(done_ok, done_failed).where(lines.batch_id == batch_id))).one()
    return int(row[0] or 0), int(row[1] or 0)


async def _result_file(conn: Any, batch_id: str, kind: str, count: int, now: float) -> str:
    file_id = f"file-{kind}-{batch_id}"
    name = "batch_output.jsonl" if kind == "output" else "batch_errors.jsonl"
    row = {
        "id": file_id,
        "purpose": "batch_output",
        "filename": name,
        "bytes": 0,  # set once the batch is final (_measure): content is assembled from the lines on each read
        "created_at": now,
        "batch_id": batch_id,
        "kind": kind,
        "lines": count,
    }
    await conn.execute(insert(batch_files).values(**row))
    return file_id


def _page_after(rows: list[dict[str, Any]], after: str | None, limit: int) -> list[dict[str, Any]]:
    if after:
        ids = [r["id"] for r in rows]
        rows = rows[ids.index(after) + 1 :] if after in ids else []
    return rows[: limit + 1]  # one more than asked: the caller sets has_more from it
