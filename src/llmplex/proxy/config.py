"""LiteLLM's ``config.yaml``, read verbatim, into an immutable ``ProxyConfig``.

Known keys are checked strictly by type and every error names the key path and line; keys llmplex
does not support are collected into one startup warning, never dropped silently. Nothing here sets
module attributes or mutates ``os.environ``: ``environment_variables`` is an overlay used to resolve
``os.environ/VAR`` and provider keys.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from llmplex.config import ClientConfig
from llmplex.config_checks import Checker
from llmplex.config_source import SourceDoc, join, parse_yaml
from llmplex.exceptions import ConfigError
from llmplex.proxy.auth import master_key_setting
from llmplex.proxy.config_warnings import startup_warnings
from llmplex.proxy.health import HEALTH_KEYS, HealthSettings, health_settings
from llmplex.proxy.redis_settings import OWN_SECTION, redis_settings
from llmplex.router.deployments import Deployment, parse_model_list
from llmplex.router.settings import ROUTING_STRATEGIES, RedisSettings, RouterSettings, parse_aliases, parse_fallbacks
from llmplex.store.url import async_url

__all__ = [
    "DEFAULT_MAX_BODY",
    "ROUTING_STRATEGIES",
    "Deployment",
    "ProxyConfig",
    "RedisSettings",
    "RouterSettings",
    "load_config",
    "single_model_config",
]

DEFAULT_MAX_BODY = 10 * 1024 * 1024
DEFAULT_BODY_TIMEOUT = 30.0

# router_settings of the waiting line and of failover before a stream's first token (see router/admission.py)
_SPECIAL_FALLBACKS = ("context_window_fallbacks", "content_policy_fallbacks")
_ROUTER_QUEUE = frozenset(
    {
        "queue_timeout",
        "queue_max_length",
        "default_priority",
        "stream_first_token_timeout",
        "stream_timeout",
        *_SPECIAL_FALLBACKS,
    }
)
_TOP = frozenset({"model_list", "litellm_settings", "router_settings", "general_settings", "environment_variables"})
_OWN_SECTION = OWN_SECTION
_REDIS_OWN = ("redis_failure_mode", "redis_key_prefix", "redis_timeout_seconds")
# llmplex_settings keys passed to the SDK client as they are (upstream response size caps)
_CLIENT_LIMITS = ("max_response_bytes", "max_embedding_response_bytes", "max_buffered_response_bytes")
_OWN_KEYS = frozenset(
    {
        *_CLIENT_LIMITS,
        "max_request_body_bytes",
        "request_body_timeout_seconds",
        "start_emulator",
        "rate_limit_window_seconds",
        "data_dir",
        "batch_concurrency",
        "batch_lease_seconds",
        "batch_rate_reserve",
        "native_batches",
        "batch_native_poll_seconds",
        *_REDIS_OWN,
    }
)
_ROUTER = (
    frozenset(
        {
            "routing_strategy",
            "num_retries",
            "timeout",
            "fallbacks",
            "allowed_fails",
            "cooldown_time",
            "model_group_alias",
        }
    )
    | {"redis_host", "redis_port", "redis_password", "redis_url"}
    | _ROUTER_QUEUE
)
_LITELLM = frozenset(
    {"drop_params", "num_retries", "request_timeout", "fallbacks", "allowed_fails", "cooldown_time"}
    | set(_SPECIAL_FALLBACKS)
)
_GENERAL = frozenset({"master_key", "database_url"}) | HEALTH_KEYS


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    deployments: tuple[Deployment, ...]
    router: RouterSettings = field(default_factory=RouterSettings)
    master_key: str | None = None
    drop_params: bool = False
    request_timeout: float | None = None
    environ: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    max_request_body_bytes: int = DEFAULT_MAX_BODY
    request_body_timeout: float = DEFAULT_BODY_TIMEOUT  # slow (slowloris) request bodies get a 408 after this
    start_emulator: bool = False
    default_model: str | None = None  # `llmplex --model X`: every request goes to X (LiteLLM semantics)
    redis: RedisSettings | None = None  # None: router state is per process
    health: HealthSettings = field(default_factory=HealthSettings)
    database_url: str | None = None  # general_settings.database_url / DATABASE_URL; None: SQLite under data_dir
    data_dir: str | None = None  # llmplex_settings.data_dir: where the default SQLite file lives (./.llmplex)
    # llmplex_settings.batch_concurrency: batch lines in flight per process. High: a line waits on the upstream,
    # and the group's rpm/tpm (with batch_rate_reserve left to live traffic) is what paces a batch
    batch_concurrency: int = 256
    batch_lease_seconds: float = 60.0  # llmplex_settings.batch_lease_seconds: a dead process's lines return after
    batch_rate_reserve: float = 0.2  # llmplex_settings.batch_rate_reserve: share of rpm/tpm windows batches leave
    native_batches: tuple[str, ...] = ()  # llmplex_settings.native_batches: groups sent to the provider's batch API
    batch_native_poll_seconds: float = 30.0  # llmplex_settings.batch_native_poll_seconds
    client_limits: Mapping[str, int] = field(default_factory=dict)  # llmplex_settings.max_response_bytes, ...
    warnings: tuple[str, ...] = ()
    source: str | None = None

    @classmethod
    def from_yaml(cls, text: str, *, environ: Mapping[str, str] | None = None, source: str = "<config>") -> ProxyConfig:
        return build_config(parse_yaml(text, source), environ)

    @classmethod
    def from_dict(cls, data: Any, *, environ: Mapping[str, str] | None = None) -> ProxyConfig:
        return build_config(SourceDoc(data=data, source="<config>"), environ)

    def model_names(self) -> list[str]:
        """Public names clients may send: groups plus visible aliases, in config order."""
        names = list(dict.fromkeys(d.model_name for d in self.deployments))
        names += [a for a in self.router.model_group_alias if a not in self.router.hidden_aliases]
        return names

    def client_config(self) -> ClientConfig:
        # the router retries across deployments, so the SDK itself does not retry
        return ClientConfig.from_env(
            self.environ,
            num_retries=0,
            timeout=self.router.timeout or self.request_timeout or 600.0,
            drop_params=self.drop_params,
            # every configured key is redacted from relayed upstream errors, not only the calling deployment's
            secrets=self.secrets(),
            **self.client_limits,
        )

    def secrets(self) -> tuple[str, ...]:
        """Every key this config holds: deployments' ``api_key`` values and the master key."""
        found = {str(d.params["api_key"]) for d in self.deployments if d.params.get("api_key")}
        if self.master_key:
            found.add(self.master_key)
        return tuple(sorted(found))

    def __repr__(self) -> str:
        return f"ProxyConfig(models={self.model_names()!r}, auth={'on' if self.master_key else 'off'})"


def load_config(path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None) -> ProxyConfig:
    """Read and validate a config file; any problem -> ``ConfigError`` naming the place."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {str(file)!r}: {exc.strerror or exc}") from None
    config = build_config(parse_yaml(text, str(file)), environ)
    return _replace_source(config, str(file.resolve()))


def single_model_config(
    model: str,
    *,
    environ: Mapping[str, str] | None = None,
    alias: str | None = None,
    params: Mapping[str, Any] | None = None,
    drop_params: bool = False,
) -> ProxyConfig:
    """``llmplex --model X``: one deployment named X (or ``alias``), credentials from the environment.

    ``params`` (``--api_base``, ``--api_version``, ``--temperature``, ``--max_tokens``) become the
    deployment's ``litellm_params``: defaults a request's own values override.
    """
    entry = {"model_name": alias or model, "litellm_params": {**(params or {}), "model": model}}
    data: dict[str, Any] = {"model_list": [entry]}
    if drop_params:
        data["litellm_settings"] = {"drop_params": True}
    config = build_config(SourceDoc(data=data, source="--model"), environ)
    return _replace_source(config, None, default_model=alias or model)


def _replace_source(config: ProxyConfig, source: str | None, **more: Any) -> ProxyConfig:
    return replace(config, source=source, **more)


def build_config(doc: SourceDoc, environ: Mapping[str, str] | None) -> ProxyConfig:
    base_env = dict(os.environ if environ is None else environ)
    check = Checker(doc)
    top = check.mapping(doc.data if doc.data is not None else {}, "")
    overlay = _environment_variables(doc, top, base_env)
    env = MappingProxyType({**base_env, **overlay})
    doc.resolve_env(env)
    top = check.mapping(doc.data if doc.data is not None else {}, "")
    for key in top:
        if key not in _TOP and key != _OWN_SECTION:
            check.ignored(str(key))

    deployments = parse_model_list(check, top.get("model_list", []), "model_list")
    if not deployments:
        raise doc.error("model_list", "model_list must list at least one model")
    litellm = check.section(top, "litellm_settings", _LITELLM)
    router_raw = check.section(top, "router_settings", _ROUTER)
    general = check.section(top, "general_settings", _GENERAL)
    own = check.section(top, _OWN_SECTION, _OWN_KEYS)

    groups = {d.model_name for d in deployments}
    router = _router(check, router_raw, litellm, groups)
    if (window := check.optional(own, f"{_OWN_SECTION}.rate_limit_window_seconds", float, minimum=0.01)) is not None:
        router = replace(router, rate_limit_window=window)
    master_key = check.optional(general, "general_settings.master_key", str)
    if master_key is not None:
        master_key = master_key_setting(master_key, f"{doc.source}: {doc.where('general_settings.master_key')}")
    else:
        # an empty variable is an unset one (as in shells); a blank one is a mistake
        master_key = master_key_setting(env.get("LITELLM_MASTER_KEY") or None, "LITELLM_MASTER_KEY")
    max_body = check.optional(own, f"{_OWN_SECTION}.max_request_body_bytes", int, minimum=1)
    database = check.optional(general, "general_settings.database_url", str) or env.get("DATABASE_URL") or None
    if database:
        async_url(database)  # a scheme llmplex cannot open stops startup here, not at the first key
    return ProxyConfig(
        deployments=deployments,
        router=router,
        master_key=master_key,
        drop_params=bool(check.optional(litellm, "litellm_settings.drop_params", bool)),
        request_timeout=check.optional(litellm, "litellm_settings.request_timeout", float, minimum=0.001),
        environ=env,
        max_request_body_bytes=max_body or DEFAULT_MAX_BODY,
        request_body_timeout=check.optional(own, f"{_OWN_SECTION}.request_body_timeout_seconds", float, minimum=0.001)
        or DEFAULT_BODY_TIMEOUT,
        start_emulator=bool(check.optional(own, f"{_OWN_SECTION}.start_emulator", bool)),
        redis=redis_settings(check, router_raw, own, env),
        health=health_settings(check, general, env),
        database_url=database,
        data_dir=check.optional(own, f"{_OWN_SECTION}.data_dir", str),
        batch_concurrency=check.optional(own, f"{_OWN_SECTION}.batch_concurrency", int, minimum=1) or 256,
        batch_lease_seconds=check.optional(own, f"{_OWN_SECTION}.batch_lease_seconds", float, minimum=0.1) or 60.0,
        native_batches=tuple(
            str(g) for g in check.seq(own.get("native_batches") or [], "llmplex_settings.native_batches")
        ),
        batch_native_poll_seconds=check.optional(own, f"{_OWN_SECTION}.batch_native_poll_seconds", float, minimum=0.05)
        or 30.0,
        batch_rate_reserve=_reserve(check.optional(own, f"{_OWN_SECTION}.batch_rate_reserve", float, minimum=0.0)),
        client_limits={
            key: value
            for key in _CLIENT_LIMITS
            if (value := check.optional(own, f"{_OWN_SECTION}.{key}", int, minimum=1024)) is not None
        },
        warnings=(*check.warnings(), *startup_warnings(check, deployments, env)),
    )


def _reserve(value: float | None) -> float:
    return 0.2 if value is None else min(value, 0.9)  # batches always keep some of the window


def _environment_variables(doc: SourceDoc, top: Mapping[str, Any], base_env: Mapping[str, str]) -> dict[str, str]:
    raw = top.get("environment_variables") or {}
    if not isinstance(raw, dict):
        raise doc.error("environment_variables", "must be a mapping of NAME: value")
    section = SourceDoc(data=raw, source=doc.source, lines=doc.lines)
    overlay: dict[str, str] = {}
    for name, value in raw.items():
        path = join("environment_variables", name)
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise doc.error(path, "must be a string or number")
        resolved = section._resolve(value, path, base_env)
        if path in section.unset:  # unset counts as absent, as everywhere else
            doc.unset[path] = section.unset[path]
        else:
            overlay[str(name)] = str(resolved)
    return overlay


def _router(check: Checker, router: Mapping[str, Any], litellm: Mapping[str, Any], groups: set[str]) -> RouterSettings:
    def pick(key: str, kind: type, minimum: float | None = None, litellm_key: str | None = None) -> Any:
        value = check.optional(router, f"router_settings.{key}", kind, minimum=minimum)
        if value is None and (litellm_key or key) in litellm:
            value = check.optional(litellm, f"litellm_settings.{litellm_key or key}", kind, minimum=minimum)
        return value

    strategy = check.optional(router, "router_settings.routing_strategy", str) or "simple-shuffle"
    if strategy not in ROUTING_STRATEGIES:
        raise check.doc.error(
            "router_settings.routing_strategy",
            f"unknown strategy {check.doc.shown('router_settings.routing_strategy', strategy)}; "
            f"use one of {sorted(ROUTING_STRATEGIES)}",
        )
    aliases, hidden = parse_aliases(check, router.get("model_group_alias"), "router_settings.model_group_alias", groups)
    fallbacks_path = "router_settings.fallbacks" if "fallbacks" in router else "litellm_settings.fallbacks"
    fallbacks_raw = router.get("fallbacks", litellm.get("fallbacks"))
    num_retries = pick("num_retries", int, 0)
    allowed_fails = pick("allowed_fails", int, 0)
    cooldown = pick("cooldown_time", float, 0.0)
    special = [
        parse_fallbacks(
            check,
            router.get(key, litellm.get(key)),
            f"router_settings.{key}" if key in router else f"litellm_settings.{key}",
            groups | set(aliases),
        )
        for key in _SPECIAL_FALLBACKS
    ]
    queue_timeout = pick("queue_timeout", float, 0.0)
    queue_max = pick("queue_max_length", int, 0)
    return RouterSettings(
        context_window_fallbacks=special[0],
        content_policy_fallbacks=special[1],
        queue_timeout=10.0 if queue_timeout is None else queue_timeout,
        queue_max_length=1000 if queue_max is None else queue_max,
        default_priority=pick("default_priority", int),
        stream_first_token_timeout=pick("stream_first_token_timeout", float, 0.001)
        or pick("stream_timeout", float, 0.001),
        routing_strategy=strategy,
        num_retries=num_retries or 0,
        timeout=pick("timeout", float, 0.001),
        fallbacks=parse_fallbacks(check, fallbacks_raw, fallbacks_path, groups | set(aliases)),
        allowed_fails=3 if allowed_fails is None else allowed_fails,
        cooldown_time=5.0 if cooldown is None else cooldown,
        model_group_alias=MappingProxyType(aliases),
        hidden_aliases=frozenset(hidden),
    )
