"""Virtual keys, users, teams, spend logs and the cache epoch.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None


def _limits() -> list[sa.Column[object]]:
    return [
        sa.Column("models", sa.JSON, nullable=False),
        sa.Column("max_budget", sa.Double, nullable=True),
        sa.Column("spend", sa.Double, nullable=False, server_default="0"),
        sa.Column("budget_duration", sa.String(32), nullable=True),
        sa.Column("budget_reset_at", sa.Double, nullable=True),
        sa.Column("rpm_limit", sa.BigInteger, nullable=True),
        sa.Column("tpm_limit", sa.BigInteger, nullable=True),
        sa.Column("max_parallel_requests", sa.Integer, nullable=True),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("blocked", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "llmplex_teams",
        sa.Column("team_id", sa.String(128), primary_key=True),
        sa.Column("team_alias", sa.String(256), nullable=True),
        sa.Column("members_with_roles", sa.JSON, nullable=False),
        *_limits(),
    )
    op.create_table(
        "llmplex_users",
        sa.Column("user_id", sa.String(128), primary_key=True),
        sa.Column("user_alias", sa.String(256), nullable=True),
        sa.Column("user_email", sa.String(256), nullable=True),
        sa.Column("user_role", sa.String(64), nullable=True),
        sa.Column("teams", sa.JSON, nullable=False),
        *_limits(),
    )
    op.create_table(
        "llmplex_keys",
        sa.Column("token", sa.String(64), primary_key=True),
        sa.Column("key_name", sa.String(32), nullable=False),
        sa.Column("key_alias", sa.String(256), nullable=True, unique=True),
        sa.Column("user_id", sa.String(128), nullable=True),
        sa.Column("team_id", sa.String(128), nullable=True),
        sa.Column("expires", sa.Double, nullable=True),
        sa.Column("created_by", sa.String(128), nullable=True),
        *_limits(),
    )
    op.create_index("ix_llmplex_keys_user_id", "llmplex_keys", ["user_id"])
    op.create_index("ix_llmplex_keys_team_id", "llmplex_keys", ["team_id"])
    op.create_table(
        "llmplex_spend_logs",
        sa.Column("request_id", sa.String(64), primary_key=True),
        sa.Column("api_key", sa.String(64), nullable=False),
        sa.Column("user", sa.String(128), nullable=True),
        sa.Column("team_id", sa.String(128), nullable=True),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("model_group", sa.String(256), nullable=True),
        sa.Column("call_type", sa.String(64), nullable=False),
        sa.Column("spend", sa.Double, nullable=False),
        sa.Column("prompt_tokens", sa.Integer, nullable=False),
        sa.Column("completion_tokens", sa.Integer, nullable=False),
        sa.Column("total_tokens", sa.Integer, nullable=False),
        sa.Column("start_time", sa.Double, nullable=False),
        sa.Column("end_time", sa.Double, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("metadata", sa.JSON, nullable=False),
    )
    op.create_index("ix_llmplex_spend_logs_key_time", "llmplex_spend_logs", ["api_key", "start_time"])
    op.create_index("ix_llmplex_spend_logs_time", "llmplex_spend_logs", ["start_time"])
    epoch = op.create_table(
        "llmplex_cache_epoch",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("epoch", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(epoch, [{"name": "keys", "epoch": 0}])


def downgrade() -> None:
    for table in ("llmplex_cache_epoch", "llmplex_spend_logs", "llmplex_keys", "llmplex_users", "llmplex_teams"):
        op.drop_table(table)
