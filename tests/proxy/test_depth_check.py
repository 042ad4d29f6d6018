"""The request-depth check: the bracket-count shortcut never lets a too-deep body through, at the boundary too."""

from __future__ import annotations

import orjson
import pytest

from llmplex.proxy.errors import ProxyError
from llmplex.proxy.params import MAX_DEPTH, check_depth


def _nested(depth: int) -> bytes:  # depth counts the outer object
    inner = b"[" * (depth - 1) + b"]" * (depth - 1)
    return b'{"x": ' + inner + b"}"


@pytest.mark.parametrize("depth", [MAX_DEPTH - 1, MAX_DEPTH])
def test_up_to_the_limit_passes(depth: int) -> None:
    raw = _nested(depth)
    check_depth(orjson.loads(raw), raw=raw)
    check_depth(orjson.loads(raw))


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, MAX_DEPTH + 50])
def test_past_the_limit_is_refused_with_or_without_the_raw_body(depth: int) -> None:
    raw = _nested(depth)
    for given in (raw, None):
        with pytest.raises(ProxyError, match="nested too deeply"):
            check_depth(orjson.loads(raw), raw=given)


def test_brackets_inside_strings_only_make_it_walk() -> None:
    raw = orjson.dumps({"messages": [{"role": "user", "content": "[" * 5000}]})
    check_depth(orjson.loads(raw), raw=raw)  # shallow: walked (the count is high) and accepted
