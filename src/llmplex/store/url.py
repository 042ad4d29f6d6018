"""Database URLs: what users write (``sqlite:///path``, ``postgresql://...``) -> SQLAlchemy async URLs.

Pure string work, no SQLAlchemy import: the proxy decides whether it needs a database before paying
for the import.
"""

from __future__ import annotations

from pathlib import Path

from llmplex.exceptions import ConfigError

__all__ = [
    "DEFAULT_DATA_DIR",
    "DEFAULT_DB_FILE",
    "async_url",
    "database_url",
    "describe_url",
    "is_sqlite",
    "sqlite_path",
]

DEFAULT_DATA_DIR = ".llmplex"  # relative to the working directory, like a project-local cache
DEFAULT_DB_FILE = "llmplex.db"

_SCHEMES = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}


def database_url(configured: str | None, data_dir: str | Path | None) -> str:
    """The URL to open: the configured one, else a SQLite file ``<data_dir>/llmplex.db``."""
    if configured:
        return async_url(configured)
    directory = Path(data_dir if data_dir is not None else DEFAULT_DATA_DIR)
    return f"sqlite+aiosqlite:///{(directory / DEFAULT_DB_FILE).absolute()}"


def async_url(url: str) -> str:
    """``sqlite:///p`` -> ``sqlite+aiosqlite:///p``; ``postgresql://`` / ``postgres://`` -> ``postgresql+asyncpg://``."""
    scheme, sep, rest = url.strip().partition("://")
    if not sep:
        raise ConfigError("database_url must look like sqlite:///path/to/file.db or postgresql://user@host/db")
    driver = _SCHEMES.get(scheme.lower())
    if driver is None:
        raise ConfigError(
            f"database_url scheme {scheme!r} is not supported: use sqlite:///path or postgresql://user@host/db"
        )
    return f"{driver}://{rest}"


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for ``:memory:`` and for other databases)."""
    if not is_sqlite(url):
        return None
    path = url.partition("://")[2]
    path = path[1:] if path.startswith("/") else path  # sqlite:///rel, sqlite:////abs
    path = path.split("?", 1)[0]
    return None if path in ("", ":memory:") else Path(path)


def describe_url(url: str) -> str:
    """The URL without credentials, for logs and errors."""
    scheme, _, rest = url.partition("://")
    if "@" in rest.split("/", 1)[0]:
        rest = rest.split("@", 1)[1]
    return f"{scheme}://{rest}"
