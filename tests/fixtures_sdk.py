"""SDK fixtures: a fresh ``AsyncClient`` (no retries) and the emulator's OpenAI endpoint settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from llmplex import AsyncClient


@pytest.fixture
async def client(emulator: Any) -> AsyncIterator[AsyncClient]:
    await emulator.areset()
    async with AsyncClient(num_retries=0) as c:
        yield c


@pytest.fixture
def up(emulator: Any) -> dict[str, Any]:
    return {"api_base": emulator.openai_base, "api_key": "test"}
