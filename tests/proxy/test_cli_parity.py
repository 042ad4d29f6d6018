"""LiteLLM's proxy flags on the ``llmplex`` command, run as a subprocess against real servers on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import trustme

from llmplex._child_output import wait_for_line
from tests.fixtures_emulator import EmulatorServer
from tests.fixtures_proxy import serving_url

_START_TIMEOUT = 30.0
REPO = Path(__file__).resolve().parents[2]


def _start(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str, list[str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "llmplex", *args],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert process.stderr is not None
    url, lines = wait_for_line(process.stderr, serving_url, _START_TIMEOUT)
    if url is not None:
        return process, url, lines
    _stop(process)
    raise AssertionError(f"the proxy did not start: {' / '.join(lines)}")


def _stop(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)
        if process.stderr is not None:
            process.stderr.close()


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llmplex", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_version_flags() -> None:
    import llmplex

    done = _run("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"llmplex {llmplex.__version__}"
    assert _run("-v").stdout == done.stdout
    emulator = subprocess.run(
        [sys.executable, "-m", "llmplex.emulator", "--version"], capture_output=True, text=True, timeout=60
    )
    assert emulator.returncode == 0 and emulator.stdout.startswith("llmplex-emulator ")


@pytest.mark.parametrize("flag", ["--run_gunicorn", "--run_hypercorn", "--run_granian"])
def test_other_servers_are_refused_with_what_to_use(flag: str) -> None:
    done = _run("--model", "gpt-4o", flag)
    assert done.returncode == 2
    assert "--num_workers" in done.stderr and "uvicorn" in done.stderr


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, Path, Path, Path]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    folder = tmp_path_factory.mktemp("tls")
    key_path, cert_path, ca_path = folder / "key.pem", folder / "cert.pem", folder / "ca.pem"
    cert.private_key_pem.write_to_path(str(key_path))
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    ca.cert_pem.write_to_path(str(ca_path))
    return ca, key_path, cert_path, ca_path


async def test_tls_with_a_generated_certificate_and_the_probes(
    certs: tuple[trustme.CA, Path, Path, Path], emulator: EmulatorServer
) -> None:
    ca, key_path, cert_path, ca_path = certs
    env = {"OPENAI_API_KEY": "test-key", "LITELLM_MASTER_KEY": "sk-tls"}
    args = ["-m", "openai/tls-model", "--api_base", emulator.openai_base, "--alias", "tls", "--host", "127.0.0.1"]
    args += ["--port", "0", "--ssl_keyfile_path", str(key_path), "--ssl_certfile_path", str(cert_path)]
    args += ["--temperature", "0.25", "--max_tokens", "7", "--drop_params", "--telemetry", "False"]
    process, url, _ = _start(*args, env=env)
    try:
        assert url.startswith("https://127.0.0.1:")
        context = ssl.create_default_context()
        ca.configure_trust(context)
        headers = {"Authorization": "Bearer sk-tls"}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            body = {"model": "whatever", "messages": [{"role": "user", "content": "hi"}]}
            async with http.post(url + "/v1/chat/completions", json=body, headers=headers, ssl=context) as resp:
                assert resp.status == 200 and resp.headers["x-llmplex-model"] == "tls"
            async with http.get(url + "/v1/models", headers=headers, ssl=context) as resp:
                assert [m["id"] for m in (await resp.json())["data"]] == ["tls"]
            async with http.get(url + "/model/info", headers=headers, ssl=context) as resp:
                params = (await resp.json())["data"][0]["litellm_params"]
                assert (params["temperature"], params["max_tokens"]) == (0.25, 7)
        port = url.rsplit(":", 1)[1]
        probe_env = {**env, "SSL_CERT_FILE": str(ca_path)}
        tls = ["--ssl_certfile_path", str(cert_path), "--host", "127.0.0.1", "--port", port]
        health = _run("--health", *tls, env=probe_env)
        assert health.returncode == 0, health.stderr
        assert json.loads(health.stdout)["healthy_count"] == 1
        test = _run("--test", url, "-m", "tls", env=probe_env)
        assert test.returncode == 0, test.stderr
        assert "Echo:" in test.stdout and "data: [DONE]" in test.stdout
    finally:
        assert _stop(process) == 0


def test_tls_file_missing_is_one_line_before_binding(certs: tuple[trustme.CA, Path, Path, Path]) -> None:
    _, key_path, _, _ = certs
    with socket.socket() as taken:  # the port stays busy: the error must come before any bind attempt
        taken.bind(("127.0.0.1", 0))
        port = str(taken.getsockname()[1])
        done = _run("-m", "gpt-4o", "--port", port, "--ssl_keyfile_path", str(key_path), "--ssl_certfile_path", "/no")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--ssl_certfile_path" in lines[0] and "/no" in lines[0]
    done = _run("-m", "gpt-4o", "--ssl_keyfile_path", str(key_path))
    assert done.returncode == 2 and "both" in done.stderr


def test_probes_say_when_no_proxy_answers() -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = str(free.getsockname()[1])
    done = _run("--health", "--port", port)
    assert done.returncode == 1 and "cannot reach" in done.stderr


@pytest.fixture
def demo_env(emulator: EmulatorServer) -> Iterator[dict[str, str]]:
    yield {"CONFIG_FILE_PATH": str(REPO / "examples" / "demo.yaml"), "PORT": "0"}


def test_config_file_path_and_port_from_the_environment_and_demo_binds_loopback(demo_env: dict[str, str]) -> None:
    """``CONFIG_FILE_PATH`` and ``PORT`` as LiteLLM reads them; examples/demo.yaml serves as its comment says."""
    process, url, lines = _start(env=demo_env)
    try:
        assert url.startswith("http://127.0.0.1:")
        assert any("started the emulator" in line for line in lines)
    finally:
        assert _stop(process) == 0


def test_keepalive_timeout_closes_idle_connections(emulator: EmulatorServer) -> None:
    env = {"OPENAI_API_KEY": "k", "OPENAI_API_BASE": emulator.openai_base, "HOST": "127.0.0.1"}
    process, url, _ = _start("-m", "openai/x", "--port", "0", "--keepalive_timeout", "1", env=env)
    try:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=5) as conn:
            conn.sendall(b"GET /health/liveliness HTTP/1.1\r\nhost: x\r\n\r\n")
            answer = b""
            while b"alive" not in answer:
                chunk = conn.recv(4096)
                assert chunk, answer
                answer += chunk
            started = time.monotonic()
            assert conn.recv(4096) == b""  # the server closed the idle connection
            assert 0.5 < time.monotonic() - started < 4
    finally:
        assert _stop(process) == 0


async def test_debug_logs_each_routing_decision_without_secrets(emulator: EmulatorServer, tmp_path: Path) -> None:
    secret = "sk-debug-upstream-secret"
    base = emulator.openai_base
    config = tmp_path / "debug.yaml"
    entries = [("fast", "dbg-fast"), ("slow", "dbg-slow-delay-300"), ("broken", "dbg-status-500")]
    lines = [
        f"  - model_name: {name}\n    litellm_params: {{model: openai/{model}, api_base: '{base}', api_key: {secret}}}"
        for name, model in entries
    ]
    router = "router_settings:\n  num_retries: 1\n  fallbacks: [{broken: [fast]}]\n"
    config.write_text("model_list:\n" + "\n".join(lines) + "\n" + router)
    args = ["--config", str(config), "--host", "127.0.0.1", "--port", "0", "--debug"]
    process, url, _ = _start(*args)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            for body in (
                {"model": "fast"},
                {"model": "broken"},
                {"model": "slow, fast", "fastest_response": True, "hedge_delay": 0.05},
                {"model": "fast, broken"},
            ):
                body["messages"] = [{"role": "user", "content": "hi"}]
                async with http.post(url + "/v1/chat/completions", json=body) as resp:
                    assert resp.status == 200, await resp.text()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.stderr is not None
        log = process.stderr.read()
        assert process.wait(timeout=15) == 0
        process.stderr.close()
    assert secret not in log
    text = "\n".join(line for line in log.splitlines() if "DEBUG llmplex" in line)
    assert "model=fast group=fast deployment=openai/dbg-fast" in text and " ms" in text
    assert "group=broken deployment=openai/dbg-status-500" in text and "failed on attempt 1/2" in text
    assert "falling back to group fast" in text
    assert "race winner=fast" in text and "hedge_delay=50 ms" in text and "slow:" in text
    assert "fan-out models=[fast:ok, broken:" in text
