"""LiteLLM's management endpoints: ``/key/*``, ``/user/*``, ``/team/*``, ``/spend/logs``.

Every call needs the master key (401 otherwise), except ``/key/info`` on the caller's own key.
Without a master key virtual keys are off and these endpoints say so. Bodies are validated into
LiteLLM's request shapes (a bad field is a 400 naming it); the work happens in ``proxy/keys``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llmplex.proxy.auth import presented_key
from llmplex.proxy.errors import ProxyError, error_response
from llmplex.proxy.keys import requests as bodies
from llmplex.proxy.keys.model import hash_key, token_of
from llmplex.proxy.keys.service import KeyService
from llmplex.proxy.request import read_body
from llmplex.proxy.routes import state_of
from llmplex.store.errors import StoreUnavailable

__all__ = ["key_routes"]

Handler = Callable[[Request, KeyService], Awaitable[Any]]


def _service(request: Request) -> KeyService:
    keys = state_of(request).keys
    if keys is None:
        raise ProxyError(
            400,
            "Virtual keys are off: set general_settings.master_key (or LITELLM_MASTER_KEY) to manage keys, "
            "users and teams",
            type="invalid_request_error",
        )
    return keys


def _require_master(request: Request) -> None:
    if not state_of(request).auth.is_master(request.headers):
        raise ProxyError(
            401, f"Authentication Error, only the master key may call {request.url.path}", type="auth_error"
        )


def endpoint(handler: Handler, *, admin: bool = True) -> Callable[[Request], Awaitable[Response]]:
    async def run(request: Request) -> Response:
        try:
            keys = _service(request)
            if admin:
                _require_master(request)
            answer = await handler(request, keys)
        except StoreUnavailable as exc:  # the database went away mid-call: live traffic is unaffected
            return error_response(ProxyError(503, f"The key database is unavailable: {exc}", type="no_db_connection"))
        except Exception as exc:  # every failure: an OpenAI-shaped error with its status
            return error_response(exc)
        return Response(orjson.dumps(answer), media_type="application/json")

    return run


async def _body(request: Request, model: type[bodies.M]) -> bodies.M:
    state = state_of(request)
    config = state.config
    raw = await read_body(request, config.max_request_body_bytes, config.request_body_timeout, state.deadlines)
    return bodies.parse_body(model, raw)


def _query(request: Request, name: str, *, required: bool = False) -> str | None:
    value = request.query_params.get(name)
    if required and not value:
        raise ProxyError(400, f"{name}: query parameter required", param=name)
    return value or None


def _int(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ProxyError(400, f"{name}: must be an integer", param=name) from None


# keys


async def _generate(request: Request, keys: KeyService) -> Any:
    return await (await keys.admin())[0].generate(await _body(request, bodies.GenerateKeyRequest))


async def _update(request: Request, keys: KeyService) -> Any:
    return await (await keys.admin())[0].update(await _body(request, bodies.UpdateKeyRequest))


async def _delete(request: Request, keys: KeyService) -> Any:
    return await (await keys.admin())[0].delete(await _body(request, bodies.DeleteKeysRequest))


async def _info(request: Request, keys: KeyService) -> Any:
    """The master key may read any key; a virtual key may read itself (LiteLLM's default when no key is given)."""
    auth = state_of(request).auth
    wanted = _query(request, "key")
    if not auth.is_master(request.headers):
        own = presented_key(request.headers)
        if own is None:
            raise ProxyError(401, "Authentication Error, no API key passed.", type="auth_error")
        if keys.authenticate(own.encode("latin-1", "replace")) is None:  # expired or blocked keys raise their own 401
            raise ProxyError(401, "Authentication Error, Invalid API key provided.", type="auth_error")
        if wanted is not None and token_of(wanted) != hash_key(own):
            raise ProxyError(403, "You are not allowed to access this key's info.", type="auth_error", param="key")
        wanted = wanted or own
    if wanted is None:
        raise ProxyError(400, "key: query parameter required", param="key")
    return await (await keys.admin())[0].info(wanted)


async def _list(request: Request, keys: KeyService) -> Any:
    filters = {name: _query(request, name) for name in ("user_id", "team_id", "key_alias")}
    if (key_hash := _query(request, "key_hash")) is not None:
        filters["token"] = key_hash
    full = (request.query_params.get("return_full_object") or "").lower() == "true"
    admin = (await keys.admin())[0]
    return await admin.list(page=_int(request, "page", 1), size=_int(request, "size", 10), filters=filters, full=full)


async def _block(request: Request, keys: KeyService) -> Any:
    body = await _body(request, bodies.BlockKeyRequest)
    return await (await keys.admin())[0].set_blocked(body.key, True)


async def _unblock(request: Request, keys: KeyService) -> Any:
    body = await _body(request, bodies.BlockKeyRequest)
    return await (await keys.admin())[0].set_blocked(body.key, False)


async def _regenerate(request: Request, keys: KeyService) -> Any:
    body = await _body(request, bodies.RegenerateKeyRequest)
    return await (await keys.admin())[0].regenerate(request.path_params.get("key") or body.key, body)


# users and teams


async def _user_new(request: Request, keys: KeyService) -> Any:
    return await (await keys.admin())[1].new_user(await _body(request, bodies.NewUserRequest))


async def _user_info(request: Request, keys: KeyService) -> Any:
    user_id = _query(request, "user_id", required=True)
    assert user_id is not None
    return await (await keys.admin())[1].user_info(user_id)


async def _user_update(request: Request, keys: KeyService) -> Any:
    return await (await keys.admin())[1].update_user(await _body(request, bodies.UpdateUserRequest))


async def _user_delete(request: Request, keys: KeyService) -> Any:
    return await (await keys.admin())[1].delete_users(await _body(request, bodies.DeleteUsersRequest))


async def _team_new(request: Request, keys: KeyService) -> Any:
    return await (await keys.admin())[1].new_team(await _body(request, bodies.NewTeamRequest))


async def _team_info(request: Request, keys: KeyService) -> Any:
    team_id = _query(request, "team_id", required=True)
    assert team_id is not None
    return await (await keys.admin())[1].team_info(team_id)


async def _team_update(request: Request, keys: KeyService) -> Any:
    return await (await keys.admin())[1].update_team(await _body(request, bodies.UpdateTeamRequest))


async def _team_delete(request: Request, keys: KeyService) -> Any:
    return await (await keys.admin())[1].delete_teams(await _body(request, bodies.DeleteTeamsRequest))


async def _member_add(request: Request, keys: KeyService) -> Any:
    return await (await keys.admin())[1].member_add(await _body(request, bodies.TeamMemberAddRequest))


async def _spend_logs(request: Request, keys: KeyService) -> Any:
    api_key = _query(request, "api_key")
    filters = {
        "api_key": token_of(api_key) if api_key else None,
        "user": _query(request, "user_id"),
        "team_id": _query(request, "team_id"),
        "request_id": _query(request, "request_id"),
    }
    start, end = _date(request, "start_date"), _date(request, "end_date")
    if end is not None:
        end += 86400.0  # LiteLLM's end_date is a whole day, inclusive
    return await (await keys.admin())[1].spend_logs(filters, start, end)


def _date(request: Request, name: str) -> float | None:
    raw = _query(request, name)
    if raw is None:
        return None
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError:
        raise ProxyError(400, f"{name}: expected YYYY-MM-DD", param=name) from None
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()


def key_routes() -> list[Route]:
    post: list[tuple[str, Handler]] = [
        ("/key/generate", _generate),
        ("/key/update", _update),
        ("/key/delete", _delete),
        ("/key/regenerate", _regenerate),
        ("/key/{key:path}/regenerate", _regenerate),
        ("/key/block", _block),
        ("/key/unblock", _unblock),
        ("/user/new", _user_new),
        ("/user/update", _user_update),
        ("/user/delete", _user_delete),
        ("/team/new", _team_new),
        ("/team/update", _team_update),
        ("/team/delete", _team_delete),
        ("/team/member_add", _member_add),
    ]
    get: list[tuple[str, Handler]] = [
        ("/key/list", _list),
        ("/user/info", _user_info),
        ("/team/info", _team_info),
        ("/spend/logs", _spend_logs),
    ]
    routes = [Route(path, endpoint(handler), methods=["POST"]) for path, handler in post]
    routes += [Route(path, endpoint(handler), methods=["GET"]) for path, handler in get]
    routes.append(Route("/key/info", endpoint(_info, admin=False), methods=["GET"]))
    return routes
