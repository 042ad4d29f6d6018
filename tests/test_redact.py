"""``llmplex._redact``: what may be shown of a URL, and key-free error text."""

from __future__ import annotations

import pytest

from llmplex._redact import display_url, redact_text, request_secrets


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://api.example.com/v1", "https://api.example.com/v1"),
        ("http://user:pass@host:8080/v1", "http://host:8080/v1"),
        ("http://user@host/v1", "http://host/v1"),
        ("http://u:p/w?d#x@host/v1?key=abc", "http://host/v1"),  # unescaped / ? # in a password stay hidden
        ("https://host/v1beta/models/m:generateContent?key=AIza123", "https://host/v1beta/models/m:generateContent"),
        ("host:1/v1#frag", "host:1/v1"),
    ],
)
def test_display_url(url: str, shown: str) -> None:
    assert display_url(url) == shown


def test_request_secrets_come_from_key_headers_query_and_userinfo() -> None:
    found = request_secrets(
        "http://me:pw123@h/v1?alt=sse&key=AIzaKEY",
        {"Authorization": "Bearer sk-1", "x-api-key": "ak-2", "api-key": "az-3", "Content-Type": "x"},
    )
    assert set(found) == {"sk-1", "ak-2", "az-3", "me", "pw123", "AIzaKEY"}


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("Incorrect API key provided: sk-live-abcdef", "sk-live-abcdef"),
        ("header Authorization: Bearer tok.en-123", "tok.en-123"),
        ('{"x-api-key": "ant-999"}', "ant-999"),
        ("api-key=az_key_1&x=1", "az_key_1"),
        ("GET /v1?key=AIzaSecret HTTP/1.1", "AIzaSecret"),
        ("cannot reach http://bob:hunter2@h/v1", "hunter2"),
    ],
)
def test_redact_text(text: str, hidden: str) -> None:
    assert hidden not in redact_text(text, ["sk-live-abcdef"])


def test_short_values_are_not_replaced_everywhere() -> None:
    assert redact_text("a normal message", ["a"]) == "a normal message"
