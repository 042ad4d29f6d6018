"""``/key/*`` operations (LiteLLM's key management): each is one store transaction, then a cache reload.

Only ``generate`` and ``regenerate`` ever return a key; everything else names keys by their sha256
``token`` or their ``key_name`` (``sk-...abcd``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError

from llmplex.proxy.errors import ProxyError
from llmplex.proxy.keys import repository as repo
from llmplex.proxy.keys.admin_common import limit_values, now, public, store_of
from llmplex.proxy.keys.model import duration_seconds, hash_key, key_name, new_key, token_of
from llmplex.proxy.keys.requests import (
    DeleteKeysRequest,
    GenerateKeyRequest,
    RegenerateKeyRequest,
    UpdateKeyRequest,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from llmplex.proxy.keys.service import KeyService

__all__ = ["KeyAdmin", "key_row"]

_MAX_PAGE = 100


def _not_found(what: str = "Key not found in database") -> ProxyError:
    return ProxyError(404, what, type="not_found_error", param="key")


def key_row(token: str, name: str, request: GenerateKeyRequest, at: float, created_by: str | None) -> dict[str, Any]:
    row = limit_values(request, at, creating=True)
    row.update(
        token=token,
        key_name=name,
        key_alias=request.key_alias,
        user_id=request.user_id,
        team_id=request.team_id,
        expires=at + duration_seconds(request.duration) if request.duration else None,
        created_by=created_by,
    )
    return row


class KeyAdmin:
    def __init__(self, service: KeyService) -> None:
        self.service = service

    async def _find(self, conn: AsyncConnection, key: str | None, alias: str | None = None) -> dict[str, Any]:
        row = await repo.get_row(conn, "key", token_of(key)) if key else None
        if row is None and alias is not None:
            found = await repo.rows_where(conn, "key", key_alias=alias)
            row = found[0] if found else None
        if row is None:
            raise _not_found()
        return row

    async def _check_owner(self, conn: AsyncConnection, request: GenerateKeyRequest) -> None:
        team_id = request.team_id if "team_id" in request.model_fields_set else None
        if team_id is not None and await repo.get_row(conn, "team", team_id) is None:
            raise ProxyError(400, f"team_id: team {team_id!r} does not exist", param="team_id")

    async def generate(self, request: GenerateKeyRequest, created_by: str | None = "admin") -> dict[str, Any]:
        store = await store_of(self.service)
        key = request.key or new_key()
        at = now()
        row = key_row(hash_key(key), key_name(key), request, at, created_by)
        try:
            async with store.transaction() as conn:
                await self._check_owner(conn, request)
                await repo.insert_row(conn, "key", row)
                epoch = await repo.bump_epoch(conn)
        except IntegrityError:
            raise ProxyError(400, "key or key_alias already exists", param="key_alias") from None
        await self.service.changed(epoch, put=[row])
        return {**public(row, hide=("token",)), "key": key, "token": key, "token_id": row["token"]}

    async def update(self, request: UpdateKeyRequest) -> dict[str, Any]:
        store = await store_of(self.service)
        at = now()
        values = limit_values(request, at, creating=False)
        for name in ("user_id", "team_id"):
            if name in request.model_fields_set:
                values[name] = getattr(request, name)
        if "duration" in request.model_fields_set:
            values["expires"] = at + duration_seconds(request.duration) if request.duration else None
        try:
            async with store.transaction() as conn:
                row = await self._find(conn, request.key, request.key_alias)
                if request.key is not None and "key_alias" in request.model_fields_set:
                    values["key_alias"] = request.key_alias
                await self._check_owner(conn, request)
                await repo.update_row(conn, "key", row["token"], values)
                epoch = await repo.bump_epoch(conn)
        except IntegrityError:
            raise ProxyError(400, "key_alias already exists", param="key_alias") from None
        await self.service.changed(epoch, put=[{**row, **values}])
        return {"key": request.key or row["token"], **public({**row, **values})}

    async def delete(self, request: DeleteKeysRequest) -> dict[str, Any]:
        store = await store_of(self.service)
        async with store.transaction() as conn:
            wanted = {token_of(k): k for k in request.keys or []}
            for alias in request.key_aliases or []:
                for row in await repo.rows_where(conn, "key", key_alias=alias):
                    wanted[row["token"]] = alias
            deleted = await repo.delete_rows(conn, "key", list(wanted))
            missing = [name for token, name in wanted.items() if token not in deleted]
            if missing:  # LiteLLM refuses the whole call when a key does not exist; nothing is deleted
                raise _not_found(f"Key not found in database: {len(missing)} of {len(wanted)} keys do not exist")
            epoch = await repo.bump_epoch(conn)
        await self.service.changed(epoch, removed=deleted)
        return {"deleted_keys": [wanted[t] for t in deleted]}

    async def info(self, key: str) -> dict[str, Any]:
        store = await store_of(self.service)
        async with store.read() as conn:
            row = await self._find(conn, key)
        return {"key": key, "info": public(row, hide=("token",))}

    async def list(self, *, page: int, size: int, filters: dict[str, str | None], full: bool) -> dict[str, Any]:
        if page < 1 or not 1 <= size <= _MAX_PAGE:
            raise ProxyError(400, f"page must be >= 1 and size between 1 and {_MAX_PAGE}", param="size")
        store = await store_of(self.service)
        async with store.read() as conn:
            rows, total = await repo.list_keys(conn, page=page, size=size, filters=filters)
        return {
            "keys": [public(r) for r in rows] if full else [r["token"] for r in rows],
            "total_count": total,
            "current_page": page,
            "total_pages": -(-total // size),
        }

    async def set_blocked(self, key: str, blocked: bool) -> dict[str, Any]:
        store = await store_of(self.service)
        async with store.transaction() as conn:
            row = await self._find(conn, key)
            values = {"blocked": blocked, "updated_at": now()}
            await repo.update_row(conn, "key", row["token"], values)
            epoch = await repo.bump_epoch(conn)
        await self.service.changed(epoch, put=[{**row, **values}])
        return public({**row, **values})

    async def regenerate(self, key: str | None, request: RegenerateKeyRequest) -> dict[str, Any]:
        """A new key for the same row (limits, spend and owner kept; fields sent in the body updated)."""
        if not key:
            raise ProxyError(400, "key: the key to regenerate is required", param="key")
        store = await store_of(self.service)
        fresh = request.new_key or new_key()
        at = now()
        values = limit_values(request, at, creating=False)
        if "duration" in request.model_fields_set:
            values["expires"] = at + duration_seconds(request.duration) if request.duration else None
        values.update(token=hash_key(fresh), key_name=key_name(fresh))
        try:
            async with store.transaction() as conn:
                row = await self._find(conn, key)
                await repo.delete_rows(conn, "key", [row["token"]])
                await repo.insert_row(conn, "key", {**row, **values})
                epoch = await repo.bump_epoch(conn)
        except IntegrityError:
            raise ProxyError(400, "new_key already exists", param="new_key") from None
        await self.service.changed(epoch, put=[{**row, **values}], removed=[row["token"]])
        merged = {**row, **values}
        return {**public(merged, hide=("token",)), "key": fresh, "token": fresh, "token_id": merged["token"]}
