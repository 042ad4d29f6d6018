"""The proxy warms up before it says ready (issue 17 #18): a fresh process, its lifespan run, nothing left lazy.

A subprocess, because this test process has long imported everything; checking what is imported (rather
than timing the first request) keeps the test exact on a busy machine. Measured with the CLI on an emulator
upstream: the first request took ~290 ms before the warm-up, ~5-9 ms after (the next ones ~2 ms).
"""

from __future__ import annotations

import subprocess
import sys

from tests.fixtures_emulator import EmulatorServer

_SCRIPT = """
import asyncio, sys
from llmplex.proxy import ProxyConfig, create_app

config = ProxyConfig.from_dict({"model_list": [
    {"model_name": "a", "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": sys.argv[1], "api_key": "k"}},
    {"model_name": "c", "litellm_params": {"model": "anthropic/claude-3-5-haiku-20241022", "api_key": "k"}},
]}, environ={})
app = create_app(config)
lazy = ["aiohttp", "genai_prices", "llmplex.providers._anthropic_messages", "llmplex.providers._gemini_response",
        "encodings.idna"]

async def main():
    assert not [name for name in lazy if name in sys.modules and name != "encodings.idna"], "imported too early"
    async with app.app.router.lifespan_context(app.app):
        state = app.state.llmplex
        assert state.client is not None and state.client.loop is not None, "no HTTP session yet"
        missing = [name for name in lazy if name not in sys.modules]
        assert not missing, f"still lazy when ready: {missing}"
    print("warm")

asyncio.run(main())
"""


def test_everything_the_first_request_would_import_is_ready_at_startup(emulator: EmulatorServer) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, emulator.openai_base], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0 and done.stdout.strip() == "warm", done.stderr[-2000:]
