"""Batch lines are charged to the virtual key that created the batch (and its user and team), on a real proxy
(uvicorn) with the emulator upstream and the openai SDK as client, on SQLite and PostgreSQL; the master key's
batches charge nobody; a database created at revision 0002 upgrades at startup and its batches run on."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest

from llmplex.batches.jobstore import JobStore
from llmplex.cost import price
from llmplex.store import Store
from tests.fixtures_emulator import EmulatorServer
from tests.fixtures_proxy import ProxyServer
from tests.proxy.keys_support import MASTER, call, eventually, keys_config

Factory = Callable[[Any], ProxyServer]
_PRICED = {"cheap": "gpt-4o-mini", "smart": "gpt-4o"}  # keys_config's groups -> the emulator's (priced) models


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def _proxy(factory: Factory, emulator: EmulatorServer, db_url: str, data_dir: Path, **own: Any) -> ProxyServer:
    config = keys_config(emulator, db_url)
    config["llmplex_settings"] = {"data_dir": str(data_dir), **own}
    return factory(config)


def _jsonl(models: list[str], prefix: str = "r") -> bytes:
    lines = [
        {
            "custom_id": f"{prefix}{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": model, "messages": [{"role": "user", "content": f"say {prefix}{i} " + "word " * i}]},
        }
        for i, model in enumerate(models)
    ]
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


async def _run_batch(client: openai.AsyncOpenAI, models: list[str], prefix: str = "r") -> Any:
    uploaded = await client.files.create(file=("in.jsonl", io.BytesIO(_jsonl(models, prefix))), purpose="batch")
    batch = await client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    return await _finished(client, batch.id)


async def _finished(client: openai.AsyncOpenAI, batch_id: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        batch = await client.batches.retrieve(batch_id)
        if batch.status in ("completed", "cancelled", "expired", "failed"):
            return batch
        assert time.monotonic() < deadline, batch
        await asyncio.sleep(0.05)


async def _line_costs(client: openai.AsyncOpenAI, batch: Any) -> dict[str, float]:
    """custom_id -> what the line cost, priced here from the usage in the output file (the price table's rates)."""
    assert batch.output_file_id
    out = [json.loads(line) for line in (await client.files.content(batch.output_file_id)).text.splitlines()]
    costs = {}
    for line in out:
        body = line["response"]["body"]
        usage = body["usage"]
        costs[line["custom_id"]] = price(body["model"], "openai", usage["prompt_tokens"], usage["completion_tokens"])
    return costs


async def _spend(http: aiohttp.ClientSession, proxy: ProxyServer, path: str, field: str) -> float:
    status, info, _ = await call(http, proxy.url, path, None)
    assert status == 200, info
    return float(info[field]["spend"])


async def test_a_keys_batch_is_charged_to_the_key_user_and_team(
    proxy_factory: Factory, emulator: EmulatorServer, db_url: str, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    proxy = _proxy(proxy_factory, emulator, db_url, tmp_path)
    assert (await call(http, proxy.url, "/user/new", {"user_id": "u1"}))[0] == 200
    assert (await call(http, proxy.url, "/team/new", {"team_id": "t1"}))[0] == 200
    status, made, _ = await call(http, proxy.url, "/key/generate", {"user_id": "u1", "team_id": "t1"})
    assert status == 200, made

    # first the master key's batch: it must charge nobody (no spend, no log rows)
    async with openai.AsyncOpenAI(base_url=proxy.base, api_key=MASTER, max_retries=0, timeout=30) as admin:
        master = await _run_batch(admin, ["cheap"] * 5, prefix="m")
        assert master.status == "completed" and master.request_counts.completed == 5

    models = ["cheap", "smart"] * 6
    async with openai.AsyncOpenAI(base_url=proxy.base, api_key=made["key"], max_retries=0, timeout=30) as client:
        batch = await _run_batch(client, models)
        assert batch.status == "completed" and batch.request_counts.completed == len(models)
        costs = await _line_costs(client, batch)
    expected = sum(costs.values())
    assert len(costs) == len(models) and all(c > 0 for c in costs.values())  # priced: the test can fail

    key_info = f"/key/info?key={made['token_id']}"

    async def charged() -> bool:
        return await _spend(http, proxy, key_info, "info") >= expected * 0.999

    await eventually(charged, 5.0)  # the spend writer flushes every 0.5 s; the cache reloads within seconds
    assert await _spend(http, proxy, key_info, "info") == pytest.approx(expected, rel=1e-6)
    assert await _spend(http, proxy, "/user/info?user_id=u1", "user_info") == pytest.approx(expected, rel=1e-6)
    assert await _spend(http, proxy, "/team/info?team_id=t1", "team_info") == pytest.approx(expected, rel=1e-6)

    status, logs, _ = await call(http, proxy.url, f"/spend/logs?api_key={made['key']}", None)
    assert status == 200 and len(logs) == len(models)
    by_line = {row["metadata"]["x_request_id"]: row for row in logs}
    assert set(by_line) == {f"{batch.id}:{custom_id}" for custom_id in costs}
    for custom_id, cost in costs.items():
        row = by_line[f"{batch.id}:{custom_id}"]
        assert row["spend"] == pytest.approx(cost, rel=1e-9) and row["status"] == "success"
        assert row["call_type"] == "acompletion" and row["user"] == "u1" and row["team_id"] == "t1"
        assert row["model_group"] in _PRICED and row["model"] == f"openai/{_PRICED[row['model_group']]}"
        assert row["prompt_tokens"] > 0 and row["total_tokens"] == row["prompt_tokens"] + row["completion_tokens"]
    status, everything, _ = await call(http, proxy.url, "/spend/logs", None)
    assert status == 200 and len(everything) == len(models)  # nothing for the master key's five lines


async def test_budget_refuses_new_batches_lines_accepted_run_on_deleted_key_still_charged(
    proxy_factory: Factory, emulator: EmulatorServer, db_url: str, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    proxy = _proxy(proxy_factory, emulator, db_url, tmp_path, batch_concurrency=2)
    assert (await call(http, proxy.url, "/team/new", {"team_id": "t2"}))[0] == 200
    status, made, _ = await call(http, proxy.url, "/key/generate", {"max_budget": 1e-6, "team_id": "t2"})
    assert status == 200, made
    key_info = f"/key/info?key={made['token_id']}"
    async with openai.AsyncOpenAI(base_url=proxy.base, api_key=made["key"], max_retries=0, timeout=30) as client:
        # accepted under budget: every line runs, though the budget is passed after a line or two
        batch = await _run_batch(client, ["cheap"] * 8)
        assert batch.status == "completed" and batch.request_counts.completed == 8
        expected = sum((await _line_costs(client, batch)).values())
        assert expected > 2e-6  # the setup: the batch costs more than the budget

        async def over() -> bool:
            return await _spend(http, proxy, key_info, "info") >= expected * 0.999

        await eventually(over, 5.0)
        again = await client.files.create(file=("in.jsonl", io.BytesIO(_jsonl(["cheap"]))), purpose="batch")
        with pytest.raises(openai.UnprocessableEntityError) as refused:  # LiteLLM's budget error, as for a chat
            await client.batches.create(
                input_file_id=again.id, endpoint="/v1/chat/completions", completion_window="24h"
            )
        assert refused.value.status_code == 422
        assert "Budget has been exceeded" in refused.value.message

    # a key deleted while its batch runs: what ran is still charged (to its hash and its team), nothing breaks
    status, doomed, _ = await call(http, proxy.url, "/key/generate", {"team_id": "t2"})
    assert status == 200
    async with openai.AsyncOpenAI(base_url=proxy.base, api_key=doomed["key"], max_retries=0, timeout=30) as client:
        uploaded = await client.files.create(file=("in.jsonl", io.BytesIO(_jsonl(["slow"] * 6))), purpose="batch")
        running = await client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
    assert (await call(http, proxy.url, "/key/delete", {"keys": [doomed["key"]]}))[0] == 200
    async with openai.AsyncOpenAI(base_url=proxy.base, api_key=MASTER, max_retries=0, timeout=30) as admin:
        done = await _finished(admin, running.id)
        assert done.status == "completed" and done.request_counts.completed == 6
        doomed_cost = sum((await _line_costs(admin, done)).values())

    async def logged() -> bool:
        status, logs, _ = await call(http, proxy.url, f"/spend/logs?api_key={doomed['token_id']}", None)
        return status == 200 and len(logs) == 6

    await eventually(logged, 5.0)
    team_spend = await _spend(http, proxy, "/team/info?team_id=t2", "team_info")
    assert team_spend == pytest.approx(expected + doomed_cost, rel=1e-6)


async def test_a_database_at_0002_is_upgraded_and_its_batches_run_uncharged(
    proxy_factory: Factory, emulator: EmulatorServer, db_url: str, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    store = Store(db_url)
    await store.open(migrate=False)
    try:
        await store.migrate("0002_batches")  # what the previous release left
        now = time.time()
        row = {
            "id": "batch_from_0002",
            "status": "in_progress",
            "endpoint": "/v1/chat/completions",
            "input_file_id": "file-gone",
            "completion_window": "24h",
            "metadata": None,
            "total": 3,
            "created_at": now,
            "in_progress_at": now,
            "expires_at": now + 86400,
        }
        body = json.dumps({"model": "cheap", "messages": [{"role": "user", "content": "old"}]})

        async def lines() -> AsyncIterator[list[tuple[int, str, str]]]:
            yield [(i, f"o{i}", body) for i in range(3)]

        await JobStore(store).create_batch(row, lines())
        assert await store.revision() == "0002_batches"
    finally:
        await store.close()

    proxy = _proxy(proxy_factory, emulator, db_url, tmp_path)  # the new code migrates at startup
    async with openai.AsyncOpenAI(base_url=proxy.base, api_key=MASTER, max_retries=0, timeout=30) as admin:
        done = await _finished(admin, "batch_from_0002")
        assert done.status == "completed" and done.request_counts.completed == 3
        status, made, _ = await call(http, proxy.url, "/key/generate", {})
        assert status == 200
    async with openai.AsyncOpenAI(base_url=proxy.base, api_key=made["key"], max_retries=0, timeout=30) as client:
        batch = await _run_batch(client, ["cheap"] * 2)
        assert batch.status == "completed"

    async def logged() -> bool:
        status, logs, _ = await call(http, proxy.url, "/spend/logs", None)
        return status == 200 and len(logs) == 2

    await eventually(logged, 5.0)  # the key's two lines; the old batch (no creator) charged nobody
    store = Store(db_url)
    await store.open(migrate=False)
    try:
        assert await store.revision() == "0003_batch_creator"
    finally:
        await store.close()


async def test_lines_a_providers_batch_api_answered_are_charged_at_its_batch_price(
    proxy_factory: Factory, emulator: EmulatorServer, db_url: str, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    config = keys_config(emulator, db_url)
    params = {"model": "openai/gpt-4o-mini", "api_base": emulator.openai_base, "api_key": "k"}
    config["model_list"].append({"model_name": "bulk", "litellm_params": params})
    config["llmplex_settings"] = {
        "data_dir": str(tmp_path),
        "native_batches": ["bulk"],
        "batch_native_poll_seconds": 0.1,
    }
    proxy = proxy_factory(config)
    status, made, _ = await call(http, proxy.url, "/key/generate", {})
    assert status == 200, made
    async with openai.AsyncOpenAI(base_url=proxy.base, api_key=made["key"], max_retries=0, timeout=30) as client:
        batch = await _run_batch(client, ["bulk"] * 4)
        assert batch.status == "completed" and batch.request_counts.completed == 4
        assert batch.output_file_id
        out = [json.loads(line) for line in (await client.files.content(batch.output_file_id)).text.splitlines()]
    usages = [line["response"]["body"]["usage"] for line in out]
    full = sum(price("gpt-4o-mini", "openai", u["prompt_tokens"], u["completion_tokens"]) for u in usages)
    half = sum(price("gpt-4o-mini", "openai", u["prompt_tokens"], u["completion_tokens"], batch=True) for u in usages)
    assert 0 < half < full  # the setup: the batch rate is known and lower

    async def charged() -> bool:
        status, info, _ = await call(http, proxy.url, f"/key/info?key={made['token_id']}", None)
        return status == 200 and info["info"]["spend"] >= half * 0.999

    await eventually(charged, 5.0)
    status, info, _ = await call(http, proxy.url, f"/key/info?key={made['token_id']}", None)
    assert info["info"]["spend"] == pytest.approx(half, rel=1e-6)
    status, logs, _ = await call(http, proxy.url, f"/spend/logs?api_key={made['key']}", None)
    assert status == 200 and sorted(row["metadata"]["x_request_id"] for row in logs) == [
        f"{batch.id}:r{i}" for i in range(4)
    ]
    assert {row["model_group"] for row in logs} == {"bulk"}
