"""The store's error, importable without SQLAlchemy (callers catch it on paths that never open a database)."""

from __future__ import annotations

__all__ = ["StoreUnavailable"]


class StoreUnavailable(Exception):
    """The database cannot be reached (down, locked for too long, network). Callers buffer or answer 503."""
