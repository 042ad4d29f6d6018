"""The bytes of a batch's output and error files, rendered from its lines (OpenAI's batch output line shape).

One renderer for both the file's content (streamed on read) and its ``bytes`` (summed once at finalize), so
the size reported is the size served.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson

__all__ = ["render_page", "total_bytes"]

_EXPIRED = orjson.dumps(
    {"code": "batch_expired", "message": "This request could not be executed before the completion window expired."}
)


def render_page(batch_id: str, page: Sequence[Any]) -> bytes:
    """``(idx, custom_id, status_code, result)`` rows -> JSONL; a line that never ran (expired) gets an error."""
    out = []
    for idx, custom_id, status_code, result in page:
        head = orjson.dumps({"id": f"batch_req_{batch_id}_{idx}", "custom_id": custom_id})[:-1]
        if status_code is None:
            out.append(head + b',"response":null,"error":' + _EXPIRED + b"}\n")
            continue
        response = b'{"status_code":%d,"request_id":"req_%s_%d","body":' % (status_code, batch_id.encode(), idx)
        out.append(head + b',"response":' + response + result.encode() + b'},"error":null}\n')
    return b"".join(out)


async def total_bytes(batch_id: str, pages: AsyncIterator[list[Any]]) -> int:
    return sum([len(render_page(batch_id, page)) async for page in pages])
