"""Virtual keys end to end: LiteLLM's management API on a real proxy (uvicorn on loopback), the openai SDK
as client, the emulator upstream, SQLite and PostgreSQL (each test runs on both)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import openai
import pytest

from llmplex.proxy.access_log import ACCESS_LOGGER
from tests.fixtures_emulator import EmulatorServer
from tests.fixtures_proxy import ProxyServer
from tests.proxy.keys_support import (
    ADMIN,
    MASTER,
    MESSAGES,
    call,
    chat,
    early_in_a_wall_window,
    eventually,
    keys_config,
)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def proxy(proxy_factory: Callable[[Any], ProxyServer], emulator: EmulatorServer, db_url: str) -> ProxyServer:
    # a request over a key's limit waits up to queue_timeout (test_keys_queue): kept short here
    return proxy_factory(keys_config(emulator, db_url, router_settings={"queue_timeout": 1.5}))


def sdk(proxy: ProxyServer, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=proxy.base, api_key=key, max_retries=0)


async def test_generate_call_and_spend(proxy: ProxyServer, http: aiohttp.ClientSession) -> None:
    status, made, _ = await call(http, proxy.url, "/key/generate", {"models": ["cheap"], "key_alias": "alice"})
    assert status == 200, made
    key = made["key"]
    assert key.startswith("sk-") and made["key_name"] == f"sk-...{key[-4:]}" and made["token_id"] != key
    async with sdk(proxy, key) as client:
        await _sdk_checks(client)
    async with sdk(proxy, "sk-not-a-key") as stranger:
        with pytest.raises(openai.AuthenticationError):
            await stranger.chat.completions.create(model="cheap", messages=MESSAGES)

    async def spent() -> bool:
        status, info, _ = await call(http, proxy.url, f"/key/info?key={made['token_id']}", None)
        assert status == 200 and "token" not in info["info"] and key not in str(info)
        return bool(info["info"]["spend"] > 0)

    assert await eventually(spent, 2.0) <= 2.0  # the bound: spend in /key/info within 2 s
    status, logs, _ = await call(http, proxy.url, f"/spend/logs?api_key={key}", None)
    assert status == 200 and len(logs) == 1
    assert logs[0]["status"] == "success" and logs[0]["total_tokens"] > 0 and logs[0]["model_group"] == "cheap"
    assert key not in str(logs)
    # a key reads its own info without the master key
    status, own, _ = await call(http, proxy.url, "/key/info", None, key=key)
    assert status == 200 and own["info"]["key_alias"] == "alice"


async def _sdk_checks(client: openai.AsyncOpenAI) -> None:
    raw = await client.chat.completions.with_raw_response.create(model="cheap", messages=MESSAGES)
    answer = raw.parse()
    assert answer.choices[0].message.content == "Echo: hello keys"
    assert float(raw.headers["x-litellm-key-spend"]) > 0  # this answer's cost, known when the headers go out
    assert raw.headers["x-litellm-key-max-budget"] == "None"

    with pytest.raises(openai.PermissionDeniedError) as denied:  # LiteLLM 1.108: 403 naming the model
        await client.chat.completions.create(model="smart", messages=MESSAGES)
    assert "'smart'" in denied.value.message
    assert [m.id for m in (await client.models.list()).data] == ["cheap"]


async def test_access_groups_and_strictest_of_key_and_team(proxy: ProxyServer, http: aiohttp.ClientSession) -> None:
    status, team, _ = await call(http, proxy.url, "/team/new", {"team_alias": "core", "models": ["basic"]})
    assert status == 200, team
    status, made, _ = await call(
        http, proxy.url, "/key/generate", {"team_id": team["team_id"], "models": ["slow", "smart"]}
    )
    assert status == 200
    key = made["key"]
    assert (await chat(http, proxy.url, key, "slow"))[0] == 200  # in the key's list and in the team's group
    status, body, _ = await chat(http, proxy.url, key, "smart")  # the key allows it, the team does not
    assert status == 403 and body["error"]["type"] == "team_model_access_denied"
    status, body, _ = await chat(http, proxy.url, key, "cheap")
    assert status == 403 and body["error"]["param"] == "model"
    status, info, _ = await call(http, proxy.url, f"/team/info?team_id={team['team_id']}", None)
    assert status == 200 and [k["token"] for k in info["keys"]] == [made["token_id"]]


async def test_update_block_regenerate_delete(proxy: ProxyServer, http: aiohttp.ClientSession) -> None:
    _, made, _ = await call(http, proxy.url, "/key/generate", {"key_alias": "bob"})
    key = made["key"]
    assert (await chat(http, proxy.url, key))[0] == 200
    status, updated, _ = await call(http, proxy.url, "/key/update", {"key": key, "models": ["smart"], "rpm_limit": 9})
    assert status == 200 and updated["models"] == ["smart"] and updated["rpm_limit"] == 9
    assert (await chat(http, proxy.url, key))[0] == 403  # the change is live at once on this replica

    assert (await call(http, proxy.url, "/key/block", {"key": key}))[0] == 200
    status, body, _ = await chat(http, proxy.url, key, "smart")
    assert status == 401 and "blocked" in body["error"]["message"]
    assert (await call(http, proxy.url, "/key/unblock", {"key": made["token_id"]}))[0] == 200
    assert (await chat(http, proxy.url, key, "smart"))[0] == 200

    status, fresh, _ = await call(http, proxy.url, "/key/regenerate", {"key": key})
    assert status == 200 and fresh["key"] != key and fresh["rpm_limit"] == 9
    assert (await chat(http, proxy.url, key, "smart"))[0] == 401
    assert (await chat(http, proxy.url, fresh["key"], "smart"))[0] == 200

    status, listed, _ = await call(http, proxy.url, "/key/list?key_alias=bob", None)
    assert status == 200 and listed["keys"] == [fresh["token_id"]] and listed["total_count"] == 1
    status, deleted, _ = await call(http, proxy.url, "/key/delete", {"keys": [fresh["key"]]})
    assert status == 200 and deleted == {"deleted_keys": [fresh["key"]]}
    assert (await chat(http, proxy.url, fresh["key"], "smart"))[0] == 401
    status, _, _ = await call(http, proxy.url, "/key/delete", {"keys": [fresh["key"]]})
    assert status == 404


async def test_expiry_budget_and_limits(proxy: ProxyServer, http: aiohttp.ClientSession) -> None:
    _, short, _ = await call(http, proxy.url, "/key/generate", {"duration": "1s"})
    assert (await chat(http, proxy.url, short["key"]))[0] == 200
    await asyncio.sleep(1.1)
    status, body, _ = await chat(http, proxy.url, short["key"])
    assert status == 401 and body["error"]["type"] == "expired_key"

    _, poor, _ = await call(http, proxy.url, "/key/generate", {"max_budget": 1e-9, "key_alias": "poor"})
    assert (await chat(http, proxy.url, poor["key"]))[0] == 200  # spend 0 < budget: allowed, then charged
    status, body, _ = await chat(http, proxy.url, poor["key"])
    assert status == 422 and body["error"]["type"] == "budget_exceeded"  # LiteLLM's budget_exceeded_status_code
    assert body["error"]["message"].startswith("Budget has been exceeded! Key=poor (sk-...")

    _, limited, _ = await call(http, proxy.url, "/key/generate", {"rpm_limit": 2})
    await early_in_a_wall_window(60.0, 5.0)  # the third must wait out its 1.5 s, not meet the next window
    results = [await chat(http, proxy.url, limited["key"]) for _ in range(3)]
    assert [r[0] for r in results] == [200, 200, 429]
    assert results[0][2]["x-ratelimit-remaining-requests"] == "1" and results[0][2]["x-ratelimit-limit-requests"] == "2"
    assert int(results[2][2]["retry-after"]) >= 1
    assert "Rate limit exceeded" in results[2][1]["error"]["message"]

    _, single, _ = await call(http, proxy.url, "/key/generate", {"max_parallel_requests": 1})
    both = await asyncio.gather(*(chat(http, proxy.url, single["key"], "slow") for _ in range(2)))
    assert [r[0] for r in both] == [200, 200]  # the second waited for the slot (300 ms) instead of a 429
    three = await asyncio.gather(*(chat(http, proxy.url, single["key"], "slow") for _ in range(7)))
    assert sorted(r[0] for r in three)[-1] == 429  # 7 x 300 ms one at a time do not fit in the 1.5 s wait
    assert (await chat(http, proxy.url, single["key"], "slow"))[0] == 200  # the slot came back


async def test_users_teams_and_combined_budgets(proxy: ProxyServer, http: aiohttp.ClientSession) -> None:
    status, user, _ = await call(http, proxy.url, "/user/new", {"user_id": "u1", "user_email": "u1@example.org"})
    assert status == 200 and user["user_id"] == "u1" and user["key"].startswith("sk-")
    status, team, _ = await call(http, proxy.url, "/team/new", {"team_id": "t1", "max_budget": 1e-9})
    assert status == 200 and team["team_id"] == "t1"
    status, added, _ = await call(
        http, proxy.url, "/team/member_add", {"team_id": "t1", "member": {"user_id": "u1", "role": "user"}}
    )
    assert status == 200 and added["members_with_roles"][0]["user_id"] == "u1"
    _, key, _ = await call(http, proxy.url, "/key/generate", {"user_id": "u1", "team_id": "t1"})
    assert (await chat(http, proxy.url, key["key"]))[0] == 200
    status, body, _ = await chat(http, proxy.url, key["key"])  # the key has no budget; its team has
    assert status == 422 and "Team=t1" in body["error"]["message"]
    assert (await chat(http, proxy.url, user["key"]))[0] == 200  # the user's other key is not in the team

    status, info, _ = await call(http, proxy.url, "/user/info?user_id=u1", None)
    assert status == 200 and {t["team_id"] for t in info["teams"]} == {"t1"} and len(info["keys"]) == 2
    assert (await call(http, proxy.url, "/user/update", {"user_id": "u1", "max_budget": 1e-9}))[0] == 200
    status, body, _ = await chat(http, proxy.url, user["key"])
    assert status == 422 and body["error"]["message"].startswith("ExceededBudget: User=u1")
    assert (await call(http, proxy.url, "/team/update", {"team_id": "t1", "blocked": True}))[0] == 200
    status, body, _ = await chat(http, proxy.url, key["key"])
    assert status == 401 and "Team=t1 is blocked" in body["error"]["message"]
    status, deleted, _ = await call(http, proxy.url, "/team/delete", {"team_ids": ["t1"]})
    assert status == 200 and deleted[0]["team_id"] == "t1"
    assert (await chat(http, proxy.url, key["key"]))[0] == 401  # the team's keys went with it
    status, gone, _ = await call(http, proxy.url, "/user/delete", {"user_ids": ["u1"]})
    assert status == 200 and gone["deleted_users"][0]["user_id"] == "u1"
    assert (await call(http, proxy.url, "/user/info?user_id=u1", None))[0] == 404


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/key/generate", {"rpm_limit": "many"}, "rpm_limit"),
        ("/key/generate", {"duration": "forever"}, "duration"),
        ("/key/generate", {"max_budget": -1}, "max_budget"),
        ("/key/generate", {"models": "cheap"}, "models"),
        ("/key/update", {"models": ["cheap"]}, "key or key_alias"),
        ("/key/delete", {}, "keys"),
        ("/team/member_add", {"team_id": "t", "member": {"role": "user"}}, "user id or user email"),
        ("/user/new", {"user_role": "god"}, "user_role"),
    ],
)
async def test_malformed_bodies_are_400_naming_the_field(
    proxy: ProxyServer, http: aiohttp.ClientSession, path: str, body: dict[str, Any], field: str
) -> None:
    status, answer, _ = await call(http, proxy.url, path, body)
    assert status == 400, answer
    assert field in answer["error"]["message"]


async def test_admin_calls_need_the_master_key(proxy: ProxyServer, http: aiohttp.ClientSession) -> None:
    _, made, _ = await call(http, proxy.url, "/key/generate", {})
    for path, body in [("/key/generate", {}), ("/team/new", {}), ("/key/list", None), ("/spend/logs", None)]:
        for key in (made["key"], "sk-wrong"):
            status, answer, _ = await call(http, proxy.url, path, body, key=key)
            assert status == 401, (path, answer)
    status, _, _ = await call(http, proxy.url, f"/key/info?key={MASTER}", None, key=made["key"])
    assert status == 403  # a key reads only itself


async def test_key_in_query_string_never_logged(
    proxy: ProxyServer, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    _, made, _ = await call(http, proxy.url, "/key/generate", {})
    caplog.set_level(logging.DEBUG)
    async with http.get(proxy.url + f"/key/info?key={made['key']}", headers=ADMIN) as resp:
        assert resp.status == 200
    async with http.post(proxy.url + f"/key/{made['key']}/regenerate", headers=ADMIN, json={}) as resp:
        assert resp.status == 200
    await asyncio.sleep(0.1)
    assert made["key"] not in caplog.text and made["key"][-12:] not in caplog.text
    assert any(r.name == ACCESS_LOGGER for r in caplog.records)  # the access log did write its lines


async def test_management_is_off_without_a_master_key(
    proxy_factory: Callable[[Any], ProxyServer], emulator: EmulatorServer, http: aiohttp.ClientSession
) -> None:
    config = keys_config(emulator, None)
    del config["general_settings"]
    server = proxy_factory(config)
    status, answer, _ = await call(http, server.url, "/key/generate", {})
    assert status == 400 and "master_key" in answer["error"]["message"]


async def test_tpm_budget_window_and_streamed_spend(proxy: ProxyServer, http: aiohttp.ClientSession) -> None:
    _, thrifty, _ = await call(http, proxy.url, "/key/generate", {"tpm_limit": 5})
    await early_in_a_wall_window(60.0, 5.0)
    status, _, headers = await chat(http, proxy.url, thrifty["key"])  # admitted: 0 tokens so far; uses > 5
    assert status == 200 and headers["x-ratelimit-limit-tokens"] == "5"
    status, body, headers = await chat(http, proxy.url, thrifty["key"])
    assert status == 429 and "Limit type: tokens" in body["error"]["message"] and int(headers["retry-after"]) >= 1

    _, windowed, _ = await call(http, proxy.url, "/key/generate", {"max_budget": 1e-9, "budget_duration": "2s"})
    assert (await chat(http, proxy.url, windowed["key"]))[0] == 200
    assert (await chat(http, proxy.url, windowed["key"]))[0] == 422
    await asyncio.sleep(2.1)  # the window ended: spend counts from zero again
    assert (await chat(http, proxy.url, windowed["key"]))[0] == 200

    _, streamer, _ = await call(http, proxy.url, "/key/generate", {})
    async with sdk(proxy, streamer["key"]) as client:
        stream = await client.chat.completions.create(
            model="cheap", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        chunks = [chunk async for chunk in stream]
    assert chunks[-1].usage is not None

    async def charged() -> bool:
        _, info, _ = await call(http, proxy.url, f"/key/info?key={streamer['token_id']}", None)
        return bool(info["info"]["spend"] > 0)

    await eventually(charged, 2.0)
