"""``/user/*``, ``/team/*`` and ``/spend/logs`` operations (LiteLLM's shapes), each one store transaction."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError

from llmplex.proxy.errors import ProxyError
from llmplex.proxy.keys import repository as repo
from llmplex.proxy.keys.admin_common import iso, limit_values, now, public, store_of
from llmplex.proxy.keys.admin_keys import KeyAdmin
from llmplex.proxy.keys.requests import (
    DeleteTeamsRequest,
    DeleteUsersRequest,
    GenerateKeyRequest,
    Member,
    NewTeamRequest,
    NewUserRequest,
    TeamMemberAddRequest,
    UpdateTeamRequest,
    UpdateUserRequest,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from llmplex.proxy.keys.service import KeyService

__all__ = ["KeyAdmin", "TeamAdmin"]

_MAX_LOGS = 1000


def _missing(kind: str, id_: str) -> ProxyError:
    return ProxyError(404, f"{kind} {id_!r} not found", type="not_found_error", param=f"{kind}_id")


class TeamAdmin:
    def __init__(self, service: KeyService, keys: KeyAdmin) -> None:
        self.service = service
        self.keys = keys

    # users

    async def new_user(self, request: NewUserRequest) -> dict[str, Any]:
        store = await store_of(self.service)
        at = now()
        row = limit_values(request, at, creating=True)
        user_id = request.user_id or str(uuid.uuid4())
        row.update(
            user_id=user_id,
            user_alias=request.user_alias,
            user_email=request.user_email,
            user_role=request.user_role or "internal_user",
            teams=list(request.teams or []),
        )
        try:
            async with store.transaction() as conn:
                await repo.insert_row(conn, "user", row)
                for team_id in row["teams"]:
                    await self._join(conn, team_id, Member(user_id=user_id), at)
                await repo.bump_epoch(conn)
        except IntegrityError:
            raise ProxyError(400, f"user_id: user {user_id!r} already exists", param="user_id") from None
        answer = public(row)
        if request.auto_create_key:  # LiteLLM's /user/new returns a key for the new user
            key = await self.keys.generate(
                GenerateKeyRequest(
                    user_id=user_id, key_alias=request.key_alias, duration=request.duration, models=request.models
                )
            )
            answer.update(key=key["key"], token=key["token"], token_id=key["token_id"], key_name=key["key_name"])
            answer["expires"] = key["expires"]
        else:
            await self.service.changed()
        return answer

    async def user_info(self, user_id: str) -> dict[str, Any]:
        store = await store_of(self.service)
        async with store.read() as conn:
            row = await repo.get_row(conn, "user", user_id)
            if row is None:
                raise _missing("user", user_id)
            keys = await repo.rows_where(conn, "key", user_id=user_id)
            teams = [t for t in [await repo.get_row(conn, "team", i) for i in row["teams"]] if t is not None]
        return {
            "user_id": user_id,
            "user_info": public(row),
            "keys": [public(k) for k in keys],
            "teams": [public(t) for t in teams],
        }

    async def update_user(self, request: UpdateUserRequest) -> dict[str, Any]:
        store = await store_of(self.service)
        values = limit_values(request, now(), creating=False)
        for name in ("user_alias", "user_role", "user_email"):
            if name in request.model_fields_set and (request.user_id is not None or name != "user_email"):
                values[name] = getattr(request, name)
        async with store.transaction() as conn:
            if request.user_id is not None:
                row = await repo.get_row(conn, "user", request.user_id)
            else:
                found = await repo.rows_where(conn, "user", user_email=request.user_email)
                row = found[0] if found else None
            if row is None:
                raise _missing("user", request.user_id or str(request.user_email))
            await repo.update_row(conn, "user", row["user_id"], values)
            await repo.bump_epoch(conn)
        await self.service.changed()
        return public({**row, **values})

    async def delete_users(self, request: DeleteUsersRequest) -> dict[str, Any]:
        store = await store_of(self.service)
        async with store.transaction() as conn:
            rows = [r for r in [await repo.get_row(conn, "user", i) for i in request.user_ids] if r is not None]
            deleted = await repo.delete_rows(conn, "user", request.user_ids)
            for user_id in deleted:  # the user's keys go with it, as in LiteLLM
                await repo.delete_rows(
                    conn, "key", [k["token"] for k in await repo.rows_where(conn, "key", user_id=user_id)]
                )
            await repo.bump_epoch(conn)
        await self.service.changed()
        return {"deleted_users": [public(r) for r in rows]}

    # teams

    async def new_team(self, request: NewTeamRequest) -> dict[str, Any]:
        store = await store_of(self.service)
        at = now()
        row = limit_values(request, at, creating=True)
        team_id = request.team_id or str(uuid.uuid4())
        row.update(team_id=team_id, team_alias=request.team_alias, members_with_roles=[])
        try:
            async with store.transaction() as conn:
                await repo.insert_row(conn, "team", row)
                for member in request.members_with_roles or []:
                    await self._join(conn, team_id, member, at)
                row = await repo.get_row(conn, "team", team_id) or row
                await repo.bump_epoch(conn)
        except IntegrityError:
            raise ProxyError(400, f"team_id: team {team_id!r} already exists", param="team_id") from None
        await self.service.changed()
        return public(row)

    async def team_info(self, team_id: str) -> dict[str, Any]:
        store = await store_of(self.service)
        async with store.read() as conn:
            row = await repo.get_row(conn, "team", team_id)
            if row is None:
                raise _missing("team", team_id)
            keys = await repo.rows_where(conn, "key", team_id=team_id)
        memberships = [{"user_id": m.get("user_id"), "team_id": team_id} for m in row["members_with_roles"]]
        return {
            "team_id": team_id,
            "team_info": public(row),
            "keys": [public(k) for k in keys],
            "team_memberships": memberships,
        }

    async def update_team(self, request: UpdateTeamRequest) -> dict[str, Any]:
        store = await store_of(self.service)
        values = limit_values(request, now(), creating=False)
        if "team_alias" in request.model_fields_set:
            values["team_alias"] = request.team_alias
        async with store.transaction() as conn:
            row = await repo.get_row(conn, "team", request.team_id)
            if row is None:
                raise _missing("team", request.team_id)
            await repo.update_row(conn, "team", request.team_id, values)
            await repo.bump_epoch(conn)
        await self.service.changed()
        return {"team_id": request.team_id, "data": public({**row, **values})}

    async def delete_teams(self, request: DeleteTeamsRequest) -> list[dict[str, Any]]:
        store = await store_of(self.service)
        async with store.transaction() as conn:
            rows = [r for r in [await repo.get_row(conn, "team", i) for i in request.team_ids] if r is not None]
            if len(rows) != len(set(request.team_ids)):
                found = {r["team_id"] for r in rows}
                raise _missing("team", next(i for i in request.team_ids if i not in found))
            await repo.delete_rows(conn, "team", request.team_ids)
            for team_id in request.team_ids:  # the team's keys go with it, as in LiteLLM
                tokens = [k["token"] for k in await repo.rows_where(conn, "key", team_id=team_id)]
                await repo.delete_rows(conn, "key", tokens)
            await repo.bump_epoch(conn)
        await self.service.changed()
        return [public(r) for r in rows]

    async def member_add(self, request: TeamMemberAddRequest) -> dict[str, Any]:
        store = await store_of(self.service)
        at = now()
        async with store.transaction() as conn:
            if await repo.get_row(conn, "team", request.team_id) is None:
                raise _missing("team", request.team_id)
            users = [await self._join(conn, request.team_id, m, at) for m in request.members()]
            team = await repo.get_row(conn, "team", request.team_id)
            await repo.bump_epoch(conn)
        await self.service.changed()
        assert team is not None
        memberships = [{"user_id": u["user_id"], "team_id": request.team_id} for u in users]
        return {**public(team), "updated_users": [public(u) for u in users], "updated_team_memberships": memberships}

    async def _join(self, conn: AsyncConnection, team_id: str, member: Member, at: float) -> dict[str, Any]:
        """Add a member to a team (creating the user, as LiteLLM does); returns the user's row."""
        team = await repo.get_row(conn, "team", team_id)
        if team is None:
            raise _missing("team", team_id)
        user = None
        if member.user_id is not None:
            user = await repo.get_row(conn, "user", member.user_id)
        elif member.user_email is not None:
            found = await repo.rows_where(conn, "user", user_email=member.user_email)
            user = found[0] if found else None
        if user is None:
            user = limit_values(NewUserRequest(), at, creating=True)
            user.update(
                user_id=member.user_id or str(uuid.uuid4()),
                user_email=member.user_email,
                user_alias=None,
                user_role="internal_user",
                teams=[],
            )
            await repo.insert_row(conn, "user", user)
        entry = {"user_id": user["user_id"], "user_email": user.get("user_email"), "role": member.role}
        roster = [m for m in team["members_with_roles"] if m.get("user_id") != user["user_id"]] + [entry]
        await repo.update_row(conn, "team", team_id, {"members_with_roles": roster, "updated_at": at})
        if team_id not in user["teams"]:
            user["teams"] = [*user["teams"], team_id]
            await repo.update_row(conn, "user", user["user_id"], {"teams": user["teams"], "updated_at": at})
        return user

    # spend

    async def spend_logs(self, filters: dict[str, Any], start: float | None, end: float | None) -> list[dict[str, Any]]:
        store = await store_of(self.service)
        async with store.read() as conn:
            rows = await repo.query_logs(conn, filters=filters, start=start, end=end, limit=_MAX_LOGS)
        return [
            {
                "request_id": r["request_id"],
                "call_type": r["call_type"],
                "api_key": r["api_key"],
                "spend": r["spend"],
                "total_tokens": r["total_tokens"],
                "prompt_tokens": r["prompt_tokens"],
                "completion_tokens": r["completion_tokens"],
                "startTime": iso(r["start_time"]),
                "endTime": iso(r["end_time"]),
                "model": r["model"],
                "model_group": r["model_group"],
                "user": r["user"],
                "team_id": r["team_id"],
                "status": r["status"],
                "metadata": r["metadata"],
            }
            for r in rows
        ]
