"""What a virtual key is, in memory: pure data and rules, no I/O.

A key belongs optionally to a user and a team; each of the three may carry models, rpm/tpm/parallel
limits and a budget, and the strictest wins (LiteLLM's semantics). Keys are identified by the sha256
hex digest of the key (LiteLLM's ``token``); the key itself exists only in the caller's hands.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "ALL_MODELS",
    "Entity",
    "Kind",
    "Principal",
    "duration_seconds",
    "hash_key",
    "key_name",
    "model_allowed",
    "new_key",
    "token_of",
]

Kind = Literal["key", "user", "team"]
ALL_MODELS = "all-proxy-models"  # LiteLLM's spelling of "every model"; an empty list means the same
_DURATION = re.compile(r"^\s*(\d+)\s*(mo|s|m|h|d|w)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "mo": 30 * 86400}


def hash_key(key: str | bytes) -> str:
    """LiteLLM's stored form of a key: the sha256 hex digest of its UTF-8 bytes (what authentication compares)."""
    return hashlib.sha256(key if isinstance(key, bytes) else key.encode()).hexdigest()


def token_of(key_or_hash: str) -> str:
    """For management calls, which accept the key or its hash (LiteLLM's ``hash_token_if_needed``).

    Never used to authenticate a request: there a 64-hex string is hashed like any other key.
    """
    if len(key_or_hash) == 64 and all(c in "0123456789abcdef" for c in key_or_hash):
        return key_or_hash
    return hash_key(key_or_hash)


def new_key() -> str:
    return "sk-" + secrets.token_urlsafe(16)


def key_name(key: str) -> str:
    """LiteLLM's ``key_name``: enough of the key to recognise it, never enough to use it."""
    return f"sk-...{key[-4:]}" if len(key) >= 8 else "sk-..."


def duration_seconds(value: str) -> float:
    """``"30s"``, ``"15m"``, ``"1h"``, ``"30d"``, ``"2w"``, ``"1mo"`` (30 days) -> seconds; ``ValueError`` otherwise."""
    found = _DURATION.match(value)
    if found is None:
        raise ValueError(f"not a duration: {value[:40]!r} (use e.g. '30s', '15m', '1h', '30d', '2w', '1mo')")
    return float(int(found.group(1)) * _UNIT_SECONDS[found.group(2)])


@dataclass(slots=True)
class Entity:
    """A key, user or team as the cache holds it: limits, budget and spend (DB spend + this process's unsent)."""

    kind: Kind
    id: str  # the key's sha256 hex, the user_id, the team_id
    models: tuple[str, ...] = ()
    max_budget: float | None = None
    spend: float = 0.0
    budget_duration: str | None = None
    budget_reset_at: float | None = None
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    max_parallel_requests: int | None = None
    blocked: bool = False
    alias: str | None = None  # key_alias / user_alias / team_alias
    key_name: str | None = None  # keys only
    user_id: str | None = None  # keys only
    team_id: str | None = None  # keys only
    expires: float | None = None  # keys only
    metadata: Mapping[str, Any] = field(default_factory=dict)
    # keys only: LiteLLM's limit headers, encoded once per cached key (the request path only appends them)
    static_headers: tuple[tuple[bytes, bytes], ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind == "key":
            self.static_headers = (
                (b"x-litellm-key-max-budget", str(self.max_budget).encode()),
                (b"x-litellm-key-rpm-limit", str(self.rpm_limit).encode()),
                (b"x-litellm-key-tpm-limit", str(self.tpm_limit).encode()),
            )

    def current_spend(self, now: float) -> float:
        """Spend in the current budget window: a window that ended counts as reset, even before the DB says so."""
        if self.budget_reset_at is not None and now >= self.budget_reset_at:
            return 0.0
        return self.spend

    @property
    def limited(self) -> bool:
        return bool(self.rpm_limit or self.tpm_limit or self.max_parallel_requests)


class Principal:
    """Who is calling: the key and, when it has them, its user and team.

    Built by the cache once per key and content version (not per request): ``all`` and ``limits``
    are the tuples the request path iterates.
    """

    __slots__ = ("all", "allowed", "budgeted", "key", "limits", "names", "plain", "team", "user")

    def __init__(self, key: Entity, user: Entity | None = None, team: Entity | None = None) -> None:
        self.key, self.user, self.team = key, user, team
        self.all = tuple(e for e in (key, user, team) if e is not None)
        self.limits = tuple(e for e in self.all if e.limited)
        self.names: tuple[tuple[Kind, str], ...] = tuple((e.kind, e.id) for e in self.all)  # where spend goes
        # what the request path may skip for this caller (the principal is rebuilt whenever these change)
        self.plain = key.expires is None and not key.blocked and not (team is not None and team.blocked)
        self.budgeted = any(e.max_budget is not None for e in self.all)
        self.allowed: set[str] = set()  # model names already found allowed for key, user and team

    def entities(self) -> tuple[Entity, ...]:
        return self.all

    def limited(self) -> tuple[Entity, ...]:
        return self.limits

    def __repr__(self) -> str:
        key = self.key
        return f"Principal(key={key.alias or key.key_name!r}, user={key.user_id!r}, team={key.team_id!r})"


def model_allowed(name: str, models: Collection[str], groups_of: Mapping[str, Collection[str]]) -> bool:
    """LiteLLM's rule: an empty list or ``all-proxy-models`` allows all; else the name or one of its access groups."""
    if not models or ALL_MODELS in models or name in models:
        return True
    return any(group in models for group in groups_of.get(name, ()))
