"""Tables of virtual keys, users, teams and spend (revision ``0001``). Keys are stored as sha256 hex digests."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Boolean, Column, Double, Index, Integer, String, Table

from llmplex.store.schema import metadata

__all__ = ["cache_epoch", "keys", "spend_logs", "teams", "users"]


def _limits() -> list[Column[object]]:
    """Budget and rate-limit columns shared by keys, users and teams."""
    return [
        Column("models", JSON, nullable=False, default=list),
        Column("max_budget", Double, nullable=True),
        Column("spend", Double, nullable=False, default=0.0),
        Column("budget_duration", String(32), nullable=True),
        Column("budget_reset_at", Double, nullable=True),
        Column("rpm_limit", BigInteger, nullable=True),
        Column("tpm_limit", BigInteger, nullable=True),
        Column("max_parallel_requests", Integer, nullable=True),
        Column("metadata", JSON, nullable=False, default=dict),
        Column("blocked", Boolean, nullable=False, default=False),
        Column("created_at", Double, nullable=False),
        Column("updated_at", Double, nullable=False),
    ]


teams = Table(
    "llmplex_teams",
    metadata,
    Column("team_id", String(128), primary_key=True),
    Column("team_alias", String(256), nullable=True),
    Column("members_with_roles", JSON, nullable=False, default=list),
    *_limits(),
)

users = Table(
    "llmplex_users",
    metadata,
    Column("user_id", String(128), primary_key=True),
    Column("user_alias", String(256), nullable=True),
    Column("user_email", String(256), nullable=True),
    Column("user_role", String(64), nullable=True),
    Column("teams", JSON, nullable=False, default=list),
    *_limits(),
)

keys = Table(
    "llmplex_keys",
    metadata,
    Column("token", String(64), primary_key=True),  # sha256 hex of the key
    Column("key_name", String(32), nullable=False),  # "sk-...abcd": enough to recognise, never the key
    Column("key_alias", String(256), nullable=True, unique=True),
    Column("user_id", String(128), nullable=True, index=True),
    Column("team_id", String(128), nullable=True, index=True),
    Column("expires", Double, nullable=True),
    Column("created_by", String(128), nullable=True),
    *_limits(),
)

spend_logs = Table(
    "llmplex_spend_logs",
    metadata,
    Column("request_id", String(64), primary_key=True),
    Column("api_key", String(64), nullable=False),  # the key's sha256 hex
    Column("user", String(128), nullable=True),
    Column("team_id", String(128), nullable=True),
    Column("model", String(256), nullable=False),
    Column("model_group", String(256), nullable=True),
    Column("call_type", String(64), nullable=False),
    Column("spend", Double, nullable=False),
    Column("prompt_tokens", Integer, nullable=False),
    Column("completion_tokens", Integer, nullable=False),
    Column("total_tokens", Integer, nullable=False),
    Column("start_time", Double, nullable=False),
    Column("end_time", Double, nullable=False),
    Column("status", String(32), nullable=False),
    Column("metadata", JSON, nullable=False, default=dict),
    Index("ix_llmplex_spend_logs_key_time", "api_key", "start_time"),
    Index("ix_llmplex_spend_logs_time", "start_time"),
)

# one row per cached family ("keys"): bumped by every management write, polled by every replica's cache
cache_epoch = Table(
    "llmplex_cache_epoch",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("epoch", BigInteger, nullable=False),
)
