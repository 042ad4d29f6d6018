"""The JSONL checkpoint of a batch: one line per finished item, so a re-run skips what is done.

Line shape: ``{"i": index, "h": fingerprint, "response": {...}}`` or ``{"i": ..., "h": ..., "error": {...}}``.
``h`` fingerprints the item's model and messages: a file written for other inputs is refused, never
silently reused. Each line goes to the OS in one ``write`` of a complete line (``O_APPEND``), so a
killed process loses only the items in flight; ``fsync`` runs at most once a second and at the end
(a power loss may cost the last second). A torn last line (killed mid-write) is cut off on resume.
Failed items are recorded but redone on resume; a later line for the same index wins.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from llmplex.exceptions import APIError, BadRequestError
from llmplex.types import ModelResponse

__all__ = ["Checkpoint", "fingerprint"]

_FSYNC_INTERVAL = 1.0


def fingerprint(model: str, messages: Any) -> str:
    data = orjson.dumps([model, messages], option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.blake2b(data, digest_size=12).hexdigest()


class Checkpoint:
    """An open checkpoint file: ``done`` holds the responses already recorded.

    Items are ``ModelResponse``s unless ``open`` is given another ``parse`` (the embedding runner's parts:
    any object with ``model_dump()``, rebuilt from that dict by ``parse``).
    """

    def __init__(self, path: str, fd: int, done: dict[int, Any], fingerprints: Sequence[str]) -> None:
        self.path = path
        self.done = done
        self._fd = fd
        self._fingerprints = fingerprints
        self._last_sync = time.monotonic()

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        fingerprints: Sequence[str],
        parse: Callable[[Any], Any] = ModelResponse.model_validate,
    ) -> Checkpoint:
        """Read what is done, cut a torn tail, lock the file and open it for appending (blocking I/O)."""
        name = os.fspath(path)
        fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            _lock(fd, name)
            with open(fd, "rb", closefd=False) as f:
                data = f.read()
            done, good_end = _parse(data, fingerprints, name, parse)
            if good_end < len(data):
                os.ftruncate(fd, good_end)  # drop a line torn by a killed writer
        except BaseException:
            os.close(fd)
            raise
        return cls(name, fd, done, fingerprints)

    def record(self, index: int, result: Any) -> None:
        """``result``: an item (``model_dump()`` gives its line), or the exception the item failed with."""
        entry: dict[str, Any] = {"i": index, "h": self._fingerprints[index]}
        if isinstance(result, BaseException):
            entry["error"] = _error_dict(result)
        else:
            entry["response"] = result.model_dump()
        line = orjson.dumps(entry, default=str) + b"\n"
        view = memoryview(line)
        while view:
            view = view[os.write(self._fd, view) :]
        now = time.monotonic()
        if now - self._last_sync >= _FSYNC_INTERVAL:
            os.fsync(self._fd)
            self._last_sync = now

    def close(self) -> None:
        if self._fd < 0:
            return
        fd, self._fd = self._fd, -1
        try:
            os.fsync(fd)
        finally:
            os.close(fd)  # also releases the lock


def _lock(fd: int, name: str) -> None:
    try:
        import fcntl
    except ImportError:  # no advisory locks on this platform
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise BadRequestError(f"checkpoint {name} is in use by another batch", param="checkpoint") from None


def _parse(
    data: bytes, fingerprints: Sequence[str], name: str, parse: Callable[[Any], Any]
) -> tuple[dict[int, Any], int]:
    """Responses by index, and the byte offset where the last complete line ends."""
    done: dict[int, Any] = {}
    good_end = data.rfind(b"\n") + 1
    for raw in data[:good_end].splitlines():
        try:
            entry = orjson.loads(raw)
            index, digest = entry["i"], entry["h"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            continue  # an unreadable line only means that item is redone
        if not isinstance(index, int) or not 0 <= index < len(fingerprints) or digest != fingerprints[index]:
            raise BadRequestError(
                f"checkpoint {name} was written for different inputs (item {index} does not match); "
                "delete it or pass another checkpoint path",
                param="checkpoint",
            )
        body = entry.get("response")
        if body is None:
            done.pop(index, None)  # a later failure supersedes; the item is redone
            continue
        response = parse(body)
        if isinstance(response, ModelResponse):
            response._hidden_params = {"from_checkpoint": True}
        done[index] = response
    return done, good_end


def _error_dict(error: BaseException) -> dict[str, Any]:
    out: dict[str, Any] = {"type": type(error).__name__, "message": str(error)}
    if isinstance(error, APIError):
        out.update(status_code=error.status_code, provider=error.provider, model=error.model)
    return out
