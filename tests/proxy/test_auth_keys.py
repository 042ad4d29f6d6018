"""Which headers carry the key (LiteLLM's), and master keys that could never match (padded, blank, non-ASCII).

Non-ASCII keys go over a raw socket: HTTP clients differ in how they encode header values; the bytes on the
wire are what the proxy must compare.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson
import pytest

from llmplex.exceptions import ConfigError
from llmplex.proxy import ProxyConfig
from tests.fixtures_emulator import EmulatorServer
from tests.fixtures_proxy import ProxyServer, openai_model

MASTER = "sk-keys-8Hq2LmZ0xV"
IO_TIMEOUT = 5.0


def _config(emulator: EmulatorServer, master_key: Any) -> dict[str, Any]:
    return {
        "model_list": [openai_model("ok", "ok", emulator.openai_base)],
        "general_settings": {"master_key": master_key},
    }


@pytest.fixture(scope="module")
def proxy(proxy_factory: Any, emulator: EmulatorServer) -> ProxyServer:
    return proxy_factory(_config(emulator, MASTER))


async def _status(proxy: ProxyServer, headers: dict[str, str]) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.get(proxy.url + "/v1/models", headers=headers) as resp:
        return resp.status, await resp.json()


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {MASTER}"},
        {"Authorization": MASTER},  # bare, as LiteLLM's clients may send it
        {"Authorization": f" {MASTER} "},
        {"api-key": MASTER},
        {"x-api-key": MASTER},
        {"x-goog-api-key": MASTER},
        {"x-litellm-api-key": f"Bearer {MASTER}"},
        {"Authorization": "", "x-goog-api-key": MASTER},  # an empty header does not hide the next one
    ],
    ids=["bearer", "bare", "bare-padded", "api-key", "x-api-key", "x-goog-api-key", "x-litellm-api-key", "empty-auth"],
)
async def test_every_litellm_key_header_is_read(proxy: ProxyServer, headers: dict[str, str]) -> None:
    status, _ = await _status(proxy, headers)
    assert status == 200


async def test_a_missing_key_names_the_headers_read(proxy: ProxyServer) -> None:
    status, body = await _status(proxy, {"x-goog-api-key": "  "})
    assert status == 401 and body["error"]["type"] == "authentication_error"
    message = body["error"]["message"]
    for header in ("Authorization: Bearer", "api-key", "x-api-key", "x-goog-api-key"):
        assert header in message


@pytest.mark.parametrize(
    "headers",
    [{"Authorization": f"Basic {MASTER}"}, {"x-goog-api-key": MASTER[:-1]}, {"Authorization": f"Bearer {MASTER} x"}],
)
async def test_wrong_keys_in_the_new_headers_are_refused(proxy: ProxyServer, headers: dict[str, str]) -> None:
    status, body = await _status(proxy, headers)
    assert status == 401 and MASTER not in orjson.dumps(body).decode()


async def test_a_padded_master_key_is_stripped(proxy_factory: Any, emulator: EmulatorServer) -> None:
    padded = proxy_factory(_config(emulator, "  sk-pad-key \t"))
    assert (await _status(padded, {"Authorization": "Bearer sk-pad-key"}))[0] == 200
    assert (await _status(padded, {"Authorization": "Bearer sk-pad-keyx"}))[0] == 401


@pytest.mark.parametrize("blank", ["", "   ", "\t\n"])
def test_a_blank_master_key_stops_startup(blank: str, emulator: EmulatorServer) -> None:
    with pytest.raises(ConfigError, match=r"general_settings\.master_key.*empty"):
        ProxyConfig.from_dict(_config(emulator, blank), environ={})
    no_key = {"model_list": [openai_model("ok", "ok", emulator.openai_base)]}
    if not blank:  # an empty variable is an unset one, as in shells
        assert ProxyConfig.from_dict(no_key, environ={"LITELLM_MASTER_KEY": blank}).master_key is None
        return
    with pytest.raises(ConfigError, match=r"LITELLM_MASTER_KEY.*empty"):
        ProxyConfig.from_dict(no_key, environ={"LITELLM_MASTER_KEY": blank})


async def _raw_get(proxy: ProxyServer, header: bytes) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    try:
        writer.write(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + header + b"\r\n\r\n")
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n"), IO_TIMEOUT)
        return int(head.split()[1])
    finally:
        writer.close()


async def test_a_non_ascii_master_key_matches_its_utf8_bytes(proxy_factory: Any, emulator: EmulatorServer) -> None:
    key = "sk-clé-ключ-鍵"
    utf8 = proxy_factory(_config(emulator, key))
    assert await _raw_get(utf8, b"Authorization: Bearer " + key.encode()) == 200
    assert await _raw_get(utf8, b"x-api-key: " + key.encode()) == 200
    # the Latin-1 bytes of the same text are a different key
    assert await _raw_get(utf8, b"Authorization: Bearer " + "sk-clé".encode("latin-1")) == 401
