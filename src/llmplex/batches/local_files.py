"""Input files for providers whose batch API takes the requests inline (Anthropic, Gemini).

``create_file(..., custom_llm_provider="anthropic")`` keeps the JSONL in a local directory (the
``files_dir=`` argument, else ``LLMPLEX_FILES_DIR``, else ``~/.cache/llmplex/files``) under an id
``file-llmplex-<hex>``; ``create_batch`` reads it back. Blocking file I/O: callers run it in a thread.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import orjson

from llmplex.batches.types import FileObject
from llmplex.exceptions import NotFoundError

__all__ = ["LocalFiles"]

PREFIX = "file-llmplex-"


class LocalFiles:
    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory).expanduser()

    def _paths(self, file_id: str) -> tuple[Path, Path]:
        if not file_id.startswith(PREFIX) or not file_id[len(PREFIX) :].isalnum():
            raise NotFoundError(f"No such file: {file_id}")
        return self.directory / f"{file_id}.jsonl", self.directory / f"{file_id}.json"

    def save(self, data: bytes, filename: str, purpose: str) -> FileObject:
        self.directory.mkdir(parents=True, exist_ok=True)
        file_id = PREFIX + os.urandom(12).hex()
        content, meta = self._paths(file_id)
        obj = FileObject(id=file_id, bytes=len(data), created_at=int(time.time()), filename=filename, purpose=purpose)
        content.write_bytes(data)
        meta.write_bytes(orjson.dumps(obj.model_dump()))
        return obj

    def get(self, file_id: str) -> FileObject:
        meta = self._paths(file_id)[1]
        try:
            return FileObject.model_validate(orjson.loads(meta.read_bytes()))
        except FileNotFoundError:
            raise NotFoundError(f"No such file: {file_id}") from None

    def read(self, file_id: str) -> bytes:
        self.get(file_id)
        return self._paths(file_id)[0].read_bytes()

    def delete(self, file_id: str) -> None:
        content, meta = self._paths(file_id)
        self.get(file_id)
        content.unlink(missing_ok=True)
        meta.unlink(missing_ok=True)

    def list(self, purpose: str | None) -> list[FileObject]:
        if not self.directory.is_dir():
            return []
        files = [self.get(p.stem) for p in self.directory.glob(f"{PREFIX}*.json")]
        return sorted((f for f in files if purpose is None or f.purpose == purpose), key=lambda f: -f.created_at)
