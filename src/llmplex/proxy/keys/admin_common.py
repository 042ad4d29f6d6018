"""Shared by the management operations: opening the store, request fields -> row values, rows -> JSON."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from llmplex.proxy.errors import ProxyError
from llmplex.proxy.keys.model import duration_seconds

if TYPE_CHECKING:
    from llmplex.proxy.keys.service import KeyService

__all__ = ["TIME_FIELDS", "iso", "limit_values", "now", "public", "store_of"]

TIME_FIELDS = ("expires", "budget_reset_at", "created_at", "updated_at")
_LIMITS = ("models", "max_budget", "budget_duration", "rpm_limit", "tpm_limit", "max_parallel_requests", "metadata")
_DEFAULTS: dict[str, Any] = {"models": [], "metadata": {}, "blocked": False}


def now() -> float:
    return time.time()


async def store_of(service: KeyService) -> Any:
    """The open store, or a 503 in LiteLLM's no-database shape."""
    store = await service.open_store()
    if store is None:
        raise ProxyError(
            503,
            f"The key database is unavailable ({service.db_error or 'cannot connect'}); live requests of known keys "
            "keep working",
            type="no_db_connection",
        )
    return store


def limit_values(request: BaseModel, at: float, *, creating: bool) -> dict[str, Any]:
    """Row values for the limit fields: every one when creating, those the caller sent when updating."""
    sent = request.model_fields_set
    values: dict[str, Any] = {}
    for name in (*_LIMITS, "blocked", "spend"):
        if not hasattr(request, name) or (not creating and name not in sent):
            continue
        value = getattr(request, name)
        if value is None and name in _DEFAULTS:
            value = _DEFAULTS[name]
        if value is None and name == "spend":
            value = 0.0
        values[name] = value
    if "budget_duration" in values:
        duration = values["budget_duration"]
        values["budget_reset_at"] = at + duration_seconds(duration) if duration else None
    if creating:
        values.setdefault("blocked", False)
        values.setdefault("spend", 0.0)
        values["created_at"] = at
    values["updated_at"] = at
    return values


def public(row: Mapping[str, Any], *, hide: tuple[str, ...] = ()) -> dict[str, Any]:
    """A row as LiteLLM answers it: timestamps as ISO 8601 (UTC), a key's ``status`` derived."""
    out = {k: v for k, v in row.items() if k not in hide}
    for name in TIME_FIELDS:
        if name in out:
            out[name] = iso(out[name])
    if "key_name" in row:
        expired = row.get("expires") is not None and row["expires"] < time.time()
        out["status"] = "revoked" if row.get("blocked") else "expired" if expired else "active"
        out.setdefault("aliases", {})
        out.setdefault("config", {})
        out.setdefault("permissions", {})
    return out


def iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()
