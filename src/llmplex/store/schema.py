"""The one ``MetaData`` every table belongs to, and the column types the tables share.

Each feature declares its tables in its own module on this ``metadata`` (``keys_tables.py``; batch
jobs add theirs); the migrations in ``migrations/versions/`` create them. Timestamps are epoch
seconds (``Double``): the same on SQLite and PostgreSQL, and cheap to compare.
"""

from __future__ import annotations

from sqlalchemy import MetaData

__all__ = ["TABLE_PREFIX", "metadata"]

TABLE_PREFIX = "llmplex_"  # a database shared with other software keeps our tables apart
metadata = MetaData()
