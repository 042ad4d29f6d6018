"""Batch jobs remember who created them: the virtual key's sha256 token, its user and team (charged per line).

Revision ID: 0003_batch_creator
Revises: 0002_batches
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_batch_creator"
down_revision: str | None = "0002_batches"
branch_labels = None
depends_on = None

_COLUMNS = (("key_token", 64), ("user_id", 128), ("team_id", 128))


def upgrade() -> None:
    # nullable: batches created before this revision, with the master key or without auth charge nobody.
    # A nullable column without a default is a plain ADD COLUMN on SQLite too (no table copy, no reflection)
    for name, length in _COLUMNS:
        op.add_column("llmplex_batches", sa.Column(name, sa.String(length), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("llmplex_batches") as batch:  # SQLite drops columns by copying the table
        for name, _ in reversed(_COLUMNS):
            batch.drop_column(name)
