"""The Router's own settings (LiteLLM's ``Router(...)`` arguments / ``router_settings``), and their checks.

The proxy's config file and the SDK's ``Router(...)`` both build these; nothing here knows the proxy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

from llmplex.config_checks import Checker
from llmplex.config_source import join

__all__ = [
    "ROUTING_STRATEGIES",
    "RedisSettings",
    "RouterSettings",
    "parse_aliases",
    "parse_fallbacks",
    "redis_url",
    "redis_url_problem",
]

ROUTING_STRATEGIES = frozenset(
    {"simple-shuffle", "least-busy", "latency-based-routing", "usage-based-routing", "usage-based-routing-v2"}
)


@dataclass(frozen=True, slots=True)
class RouterSettings:
    routing_strategy: str = "simple-shuffle"
    routing_strategy_args: Mapping[str, Any] = field(default_factory=dict)  # accepted; not used by any strategy yet
    num_retries: int = 0
    timeout: float | None = None
    fallbacks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # where a ContextWindowExceededError / ContentPolicyViolationError goes instead of ``fallbacks``
    # (LiteLLM: when set, a group without an entry does not fall back on that error; unset: ``fallbacks``)
    context_window_fallbacks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    content_policy_fallbacks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    allowed_fails: int = 3
    cooldown_time: float = 5.0
    retry_after: float = 0.0  # LiteLLM's minimum wait (seconds) before retrying a failed request
    model_group_alias: Mapping[str, str] = field(default_factory=dict)
    hidden_aliases: frozenset[str] = frozenset()
    rate_limit_window: float = 60.0  # rpm/tpm window in seconds (llmplex_settings.rate_limit_window_seconds)
    # the waiting line when every deployment of a group is at a limit or cooling down (``admission.py``):
    # the longest wait in seconds (0: answer 429 at once, as LiteLLM) and how many may wait per group
    queue_timeout: float = 10.0
    queue_max_length: int = 1000
    default_priority: int | None = None  # the place in line of a request without ``priority`` (None: 0)
    # a stream with no content (text or tool call) after this many seconds fails over (None: the call's timeout)
    stream_first_token_timeout: float | None = None


@dataclass(frozen=True, slots=True)
class RedisSettings:
    """Shared router state for several workers/replicas: LiteLLM's redis_* settings plus llmplex's own."""

    url: str | None = None  # redis_url / REDIS_URL; wins over host/port/password
    host: str = "localhost"
    port: int = 6379
    password: str | None = None
    key_prefix: str = "llmplex"
    failure_mode: str = "open"  # "open": serve on local state while Redis is down; "closed": refuse limited calls
    timeout: float = 0.1  # socket timeout in seconds: a slow Redis must never stall requests

    def __repr__(self) -> str:  # never print the password (it may also sit inside the url)
        return f"RedisSettings({'url' if self.url else f'{self.host}:{self.port}'}, prefix={self.key_prefix!r})"


def redis_url(url: str) -> str:
    """``url`` with its user info percent-encoded, so that a password holding ``#``, ``/``, ``?`` or ``@`` reaches
    Redis intact (URL parsers cut it there and read the rest as the port, path or fragment).

    The user info runs to the last ``@``; an already percent-encoded part stays as it is (decoded, then encoded:
    a literal ``%`` must be written ``%25``, as in any URL).
    """
    scheme, sep, rest = url.partition("://")
    at = rest.rfind("@")
    if not sep or at < 0:
        return url
    user, colon, password = rest[:at].partition(":")
    userinfo = quote(unquote(user), safe="") + (":" + quote(unquote(password), safe="") if colon else "")
    return f"{scheme}://{userinfo}@{rest[at + 1 :]}"


def redis_url_problem(url: str) -> str | None:
    """What is wrong with a Redis URL, in words that never repeat any part of it (it holds a password); None if
    nothing is."""
    from redis.connection import parse_url  # imported only when a URL is configured

    try:
        parse_url(redis_url(url))  # type: ignore[no-untyped-call]
    except ValueError:
        return (
            "is not a Redis URL: redis://[[user]:password@]host[:port][/db] (or rediss://, unix://); "
            "the password may hold any character"
        )
    return None


def parse_aliases(check: Checker, raw: Any, path: str, groups: set[str]) -> tuple[dict[str, str], set[str]]:
    """``model_group_alias``: ``{alias: group}`` or ``{alias: {"model": group, "hidden": true}}``."""
    aliases: dict[str, str] = {}
    hidden: set[str] = set()
    for alias, target in check.mapping(raw or {}, path).items():
        where = join(path, alias)
        if isinstance(target, dict):
            if target.get("hidden") is True:
                hidden.add(str(alias))
            target = target.get("model")
        if not isinstance(target, str) or target not in groups:
            shown = check.doc.shown(where if where in check.doc.from_env else join(where, "model"), target)
            raise check.doc.error(where, f"alias target {shown} is not a model_name in model_list")
        aliases[str(alias)] = target
    return aliases, hidden


def parse_fallbacks(check: Checker, raw: Any, path: str, names: set[str]) -> dict[str, tuple[str, ...]]:
    """LiteLLM's ``[{"group": ["fallback", ...]}, ...]``; every name must be a group or alias."""
    result: dict[str, tuple[str, ...]] = {}
    for i, item in enumerate(check.seq(raw or [], path)):
        for group, targets in check.mapping(item, f"{path}[{i}]").items():
            where = join(f"{path}[{i}]", group)
            if isinstance(targets, str):
                targets = [targets]
            if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
                raise check.doc.error(where, "must be a list of model names")
            if group not in names:
                raise check.doc.error(where, f"{group!r} is not a model_name in model_list")
            for k, name in enumerate(targets):
                if name not in names:  # never print a value read from os.environ/VAR
                    shown = check.doc.shown(f"{where}[{k}]" if f"{where}[{k}]" in check.doc.from_env else where, name)
                    raise check.doc.error(where, f"{shown} is not a model_name in model_list")
            result[str(group)] = tuple(targets)
    return result
