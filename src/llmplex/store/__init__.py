"""The database layer shared by virtual keys, spend and batch jobs (SQLAlchemy 2 async + Alembic).

SQLAlchemy costs ~20 MB and ~0.2 s to import, so this package imports it only when ``Store`` is
first touched; ``llmplex.store.url`` (which database to open) stays import-light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llmplex.store.errors import StoreUnavailable
from llmplex.store.url import database_url

if TYPE_CHECKING:
    from llmplex.store.store import Store

__all__ = ["Store", "StoreUnavailable", "database_url"]


def __getattr__(name: str) -> Any:
    if name == "Store":
        from llmplex.store import store

        return getattr(store, name)
    raise AttributeError(f"module 'llmplex.store' has no attribute {name!r}")
