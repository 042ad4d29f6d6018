"""Shared fixtures. Servers live in fixture plugins, one per concern, so they can grow independently."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

pytest_plugins = [
    "tests.fixtures_emulator",
    "tests.fixtures_real_llm",
    "tests.fixtures_proxy",
    "tests.fixtures_sdk",
    "tests.fixtures_db",
]

_SECRET_SUFFIXES = ("_API_KEY", "_API_BASE", "_BASE_URL", "_API_VERSION")
_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy", "CO_API_KEY")


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests never see the developer's provider keys, base URLs or HTTP proxies."""
    for name in list(os.environ):
        if name.endswith(_SECRET_SUFFIXES) or name in _PROXY_VARS:
            monkeypatch.delenv(name, raising=False)
    yield
