"""Auth: only the exact master key gets in. Secrets: the master key and provider keys never leave the process
(logs, error messages, /health, /metrics, /openapi.json, /v1/models), checked in-process and on a real subprocess."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.fixtures_emulator import EmulatorServer
from tests.fixtures_proxy import ProxyServer, openai_model

MASTER = "sk-master-Q7r2XbLk9PzT4vYw"
PROVIDER = "sk-provider-H3mN8cVs1JdE6fGa"
MESSAGES = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def proxy(proxy_factory: Any, emulator: EmulatorServer) -> ProxyServer:
    base = emulator.openai_base
    return proxy_factory(
        {
            "model_list": [
                openai_model("ok", "ok", base, api_key=PROVIDER),
                openai_model("rejected", "rejected", base, api_key="bad-key"),
                openai_model("broken", "broken-status-500", base, api_key=PROVIDER),
                openai_model("midstream", "mid-fault-midstream", base, api_key=PROVIDER),
            ],
            "general_settings": {"master_key": MASTER},
        }
    )


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Bearer {MASTER[:-1]}"},  # truncated
        {"Authorization": f"Bearer {MASTER[:8]}"},
        {"Authorization": f"Bearer {MASTER}x"},  # extended
        {"Authorization": f"Bearer {MASTER.upper()}"},  # differently cased
        {"Authorization": f"Bearer {MASTER.lower()}"},
        {"Authorization": f"Basic {MASTER}"},
        {"Authorization": f"{MASTER[:-1]}"},  # a bare key is read (as LiteLLM does), a truncated one refused
        {"api-key": MASTER.swapcase()},
        {"x-api-key": MASTER[1:]},
        {"Authorization": f"Bearer {MASTER} {MASTER}"},
    ],
    ids=lambda h: ",".join(f"{k}:{v[:14]}" for k, v in h.items()) or "none",
)
async def test_anything_but_the_exact_key_is_401(proxy: ProxyServer, headers: dict[str, str]) -> None:
    async with aiohttp.ClientSession() as http:
        for method, path, body in [
            ("POST", "/v1/chat/completions", {"model": "ok", "messages": MESSAGES}),
            ("GET", "/v1/models", None),
        ]:
            async with http.request(method, proxy.url + path, json=body, headers=headers) as resp:
                assert resp.status == 401, (path, headers)
                error = (await resp.json())["error"]
                assert error["type"] == "authentication_error"
                assert MASTER not in error["message"] and MASTER.upper() not in error["message"]


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {MASTER}"},
        {"authorization": f"bearer  {MASTER} "},
        {"api-key": MASTER},
        {"x-api-key": MASTER},
    ],
)
async def test_the_exact_key_gets_in(proxy: ProxyServer, headers: dict[str, str]) -> None:
    async with aiohttp.ClientSession() as http, http.get(proxy.url + "/v1/models", headers=headers) as resp:
        assert resp.status == 200


async def test_no_secret_in_any_answer_or_log(proxy: ProxyServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    auth = {"Authorization": f"Bearer {MASTER}"}
    seen: list[str] = []
    statuses: set[int] = set()
    async with aiohttp.ClientSession() as http:
        for path in ["/health/liveliness", "/health/readiness", "/metrics", "/openapi.json", "/v1/models"]:
            async with http.get(proxy.url + path, headers=auth) as resp:
                assert resp.status == 200
                seen.append(await resp.text())
        for model in ["ok", "rejected", "broken", "nope", "ok, rejected"]:
            for stream in (False, True):
                body = {"model": model, "messages": MESSAGES, "stream": stream}
                async with http.post(proxy.base + "/chat/completions", json=body, headers=auth) as resp:
                    statuses.add(resp.status)
                    seen.append(str(dict(resp.headers)) + await resp.text())
        async with http.post(
            proxy.base + "/chat/completions",
            json={"model": "midstream", "messages": MESSAGES, "stream": True},
            headers=auth,
        ) as resp:
            seen.append(await resp.text())
    text = "\n".join(seen) + caplog.text
    assert {200, 400, 401, 500} <= statuses  # the failures really happened
    for secret in (MASTER, PROVIDER, "bad-key"):
        assert secret not in text
    assert repr(proxy.config).find(MASTER) == -1 and PROVIDER not in repr(proxy.config.deployments)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def _config_text(emulator: EmulatorServer) -> str:
    entries = [
        ("ok", "ok"),
        ("broken", "broken-status-500"),
        ("limited", "lim-status-429-retryafter-1"),
        ("midstream", "mid-fault-midstream"),
        ("rejected", "rejected"),
    ]
    lines = ["model_list:"]
    for name, model in entries:
        key = "bad-key" if name == "rejected" else "os.environ/LLMPLEX_TEST_PROVIDER_KEY"
        lines += [
            f"  - model_name: {name}",
            "    litellm_params:",
            f"      model: openai/{model}",
            f"      api_base: {emulator.openai_base}",
            f"      api_key: {key}",
        ]
    lines += ["general_settings:", "  master_key: os.environ/LLMPLEX_TEST_MASTER_KEY"]
    return "\n".join(lines) + "\n"


def _start_logged(config: Path, out: Path, err: Path) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "LLMPLEX_TEST_MASTER_KEY": MASTER, "LLMPLEX_TEST_PROVIDER_KEY": PROVIDER}
    argv = [sys.executable, "-m", "llmplex", "--config", str(config), "--host", "127.0.0.1", "--port", "0"]
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(
            [*argv, "--log-level", "debug", "--access-log"], stdout=stdout, stderr=stderr, env=env
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = re.search(r"serving .* on (http://\S+)", err.read_text())
        if found:
            return process, found.group(1)
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    process.wait(timeout=5)
    raise AssertionError(f"the proxy did not start: {err.read_text()}")


async def test_subprocess_logs_hold_no_secret(tmp_path: Path, emulator: EmulatorServer) -> None:
    config = _write(tmp_path, _config_text(emulator))
    out, err = tmp_path / "stdout.log", tmp_path / "stderr.log"
    process, url = _start_logged(config, out, err)
    try:
        async with aiohttp.ClientSession() as http:
            for key in (MASTER, MASTER[:-1], "nope", None):
                headers = {"Authorization": f"Bearer {key}"} if key else {}
                for model in ("ok", "broken", "limited", "midstream", "rejected", "unknown"):
                    for stream in (False, True):
                        body = {"model": model, "messages": MESSAGES, "stream": stream}
                        async with http.post(url + "/v1/chat/completions", json=body, headers=headers) as resp:
                            await resp.read()
            for path in ("/health/readiness", "/metrics", "/openapi.json"):
                async with http.get(url + path) as resp:
                    assert MASTER not in await resp.text()
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=15)
    assert code == 0
    logs = out.read_text() + err.read_text()
    assert logs.count('"request_id"') >= 4 * 6 * 2  # one access-log line per request
    assert '"status":401' in logs and '"status":500' in logs and '"status":429' in logs
    for secret in (MASTER, MASTER[:-1], PROVIDER, "bad-key"):
        assert secret not in logs


def test_unset_master_key_variable_counts_as_absent(tmp_path: Path, emulator: EmulatorServer) -> None:
    """As in LiteLLM: an unset os.environ/ master key means no master key; said at startup, and the proxy
    then refuses a non-loopback address (the provider key is never printed)."""
    config = _write(tmp_path, _config_text(emulator))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMPLEX_TEST_")}
    env["LLMPLEX_TEST_PROVIDER_KEY"] = PROVIDER  # the master key variable stays unset
    process = subprocess.Popen(
        [sys.executable, "-m", "llmplex", "--config", str(config), "--host", "0.0.0.0", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)
    assert process.returncode == 2
    assert "general_settings.master_key" in err and "LLMPLEX_TEST_MASTER_KEY - no master key" in err
    assert "refusing to serve 0.0.0.0 without authentication" in err
    assert PROVIDER not in out + err
