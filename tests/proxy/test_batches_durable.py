"""Durability of the proxy's batches: kill -9 mid-batch then restart (SQLite), two replicas on one PostgreSQL."""

from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from llmplex._child_output import wait_for_line
from tests.fixtures_proxy import ProxyServer, openai_model, serving_url

_START_TIMEOUT = 30.0


def _jsonl(n: int, model: str) -> bytes:
    rows = [
        {
            "custom_id": f"r{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": model, "messages": [{"role": "user", "content": f"n{i}"}]},
        }
        for i in range(n)
    ]
    return b"".join(json.dumps(row).encode() + b"\n" for row in rows)


class Child:
    def __init__(self, config: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "llmplex", "--config", str(config), "--host", "127.0.0.1", "--port", "0"],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env=dict(os.environ),
        )
        assert self.process.stderr is not None
        url, lines = wait_for_line(self.process.stderr, serving_url, _START_TIMEOUT)
        if url is None:
            self.stop()
            raise AssertionError(f"the proxy did not start: {' / '.join(lines)}")
        self.base = url + "/v1"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        if self.process.stderr is not None:
            self.process.stderr.close()


@pytest.fixture
def children() -> Iterator[list[Child]]:
    started: list[Child] = []
    yield started
    for child in started:
        child.stop()


def _wait(client: openai.OpenAI, batch_id: str, done: Callable[[Any], bool], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        batch = client.batches.retrieve(batch_id)
        if done(batch):
            return batch
        assert time.monotonic() < deadline, batch
        time.sleep(0.02)


def test_kill_9_mid_batch_then_restart(children: list[Child], emulator: Any, tmp_path: Path) -> None:
    n, concurrency = 400, 8
    config = tmp_path / "config.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: small\n"
        "    litellm_params:\n"
        "      model: openai/kill-delay-20\n"
        f"      api_base: {emulator.openai_base}\n"
        "      api_key: k\n"
        "llmplex_settings:\n"
        f"  data_dir: {tmp_path / 'data'}\n"
        f"  batch_concurrency: {concurrency}\n"
        "  batch_lease_seconds: 1.0\n"
    )
    emulator.reset()
    first = Child(config)
    children.append(first)
    with openai.OpenAI(base_url=first.base, api_key="none", max_retries=0) as client:
        uploaded = client.files.create(file=("in.jsonl", io.BytesIO(_jsonl(n, "small"))), purpose="batch")
        batch = client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        _wait(client, batch.id, lambda b: b.request_counts.completed >= n * 0.3)
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(timeout=10)
    with sqlite3.connect(tmp_path / "data" / "llmplex.db") as db:
        (in_flight,) = db.execute("SELECT count(*) FROM llmplex_batch_lines WHERE state = 1").fetchone()
        (done_at_kill,) = db.execute("SELECT count(*) FROM llmplex_batch_lines WHERE state = 2").fetchone()
    assert 0 < done_at_kill < n

    second = Child(config)
    children.append(second)
    with openai.OpenAI(base_url=second.base, api_key="none", max_retries=0) as client:
        final = _wait(client, batch.id, lambda b: b.status == "completed")
        assert final.request_counts.completed == n and final.request_counts.failed == 0
        ids = [json.loads(line)["custom_id"] for line in client.files.content(final.output_file_id).text.splitlines()]
    assert sorted(ids) == sorted(f"r{i}" for i in range(n))  # every line exactly once
    resent = emulator.stats()["received"] - n
    assert 0 <= resent <= in_flight, (resent, in_flight)


def test_two_replicas_on_postgresql_finish_one_batch_once(
    proxy_factory: Callable[[Any], ProxyServer], emulator: Any, tmp_path: Path, pg_databases: Callable[[], str]
) -> None:
    url = pg_databases()
    n = 600

    def config(name: str) -> dict[str, Any]:
        return {
            # 50 ms a line: the batch lasts about two seconds, longer than the idle poll (0.5 s) after which
            # the second replica looks for work (at 5 ms the first one had claimed and sent it all by then)
            "model_list": [openai_model("small", "two-delay-50", emulator.openai_base)],
            "general_settings": {"database_url": url},
            "llmplex_settings": {"data_dir": str(tmp_path / name), "batch_concurrency": 16},
        }

    first, second = proxy_factory(config("a")), proxy_factory(config("b"))
    with openai.OpenAI(base_url=first.base, api_key="none", max_retries=0) as client:
        uploaded = client.files.create(file=("in.jsonl", io.BytesIO(_jsonl(n, "small"))), purpose="batch")
        batch = client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
    with openai.OpenAI(base_url=second.base, api_key="none", max_retries=0) as other:
        final = _wait(other, batch.id, lambda b: b.status == "completed")
        assert final.request_counts.completed == n
        ids = [json.loads(line)["custom_id"] for line in other.files.content(final.output_file_id).text.splitlines()]
    assert sorted(ids) == sorted(f"r{i}" for i in range(n))
    sent = [server.app.state.llmplex.batches.executor.sent for server in (first, second)]
    assert sum(sent) == n and min(sent) > 0, sent  # both worked; no lease ran out, so nothing twice
