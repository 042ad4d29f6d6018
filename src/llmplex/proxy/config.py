"""LiteLLM's ``config.yaml``, read verbatim, into an immutable ``ProxyConfig``.

Known keys are checked strictly by type and every error names the key path and line; keys llmplex
does not support are collected into one startup warning, never dropped silently. Nothing here sets
module attributes or mutates ``os.environ``: ``environment_variables`` is an overlay used to resolve
``os.environ/VAR`` and provider keys.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson

from llmplex.config import ClientConfig
from llmplex.exceptions import ConfigError, UnknownModelError
from llmplex.providers import resolve_model
from llmplex.proxy.config_checks import Checker
from llmplex.proxy.redis_settings import OWN_SECTION, RedisSettings, redis_settings
from llmplex.proxy.yaml_source import SourceDoc, join, parse_yaml
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
ROUTING_STRATEGIES = frozenset(
    {"simple-shuffle", "least-busy", "latency-based-routing", "usage-based-routing", "usage-based-routing-v2"}
)

_TOP = frozenset({"model_list", "litellm_settings", "router_settings", "general_settings", "environment_variables"})
_OWN_SECTION = OWN_SECTION
_REDIS_OWN = ("redis_failure_mode", "redis_key_prefix", "redis_timeout_seconds")
_OWN_KEYS = frozenset(
    {
        "max_request_body_bytes",
        "request_body_timeout_seconds",
        "start_emulator",
        "rate_limit_window_seconds",
        "data_dir",
        *_REDIS_OWN,
    }
)
_ENTRY = frozenset({"model_name", "litellm_params", "model_info"})
_ROUTER = frozenset(
    {"routing_strategy", "num_retries", "timeout", "fallbacks", "allowed_fails", "cooldown_time", "model_group_alias"}
) | {"redis_host", "redis_port", "redis_password", "redis_url"}
_LITELLM = frozenset({"drop_params", "num_retries", "request_timeout", "fallbacks", "allowed_fails", "cooldown_time"})
_GENERAL = frozenset({"master_key", "database_url"})
# litellm_params that steer the router, not the request
_ROUTING_PARAMS = frozenset({"model", "rpm", "tpm", "weight"})
# litellm_params that LiteLLM understands but llmplex does not (never forwarded upstream)
_UNSUPPORTED_PARAMS = frozenset(
    {
        "input_cost_per_token",
        "output_cost_per_token",
        "input_cost_per_second",
        "output_cost_per_second",
        "max_parallel_requests",
        "stream_timeout",
        "max_budget",
        "budget_duration",
        "order",
        "tags",
        "use_in_pass_through",
        "litellm_credential_name",
        "merge_reasoning_content_in_choices",
        "region_name",
    }
)
_SECRET_PARAMS = frozenset({"api_key"})


@dataclass(frozen=True, slots=True)
class Deployment:
    """One ``model_list`` entry: the public ``model_name`` and how to call it."""

    model_name: str
    model: str  # the provider model string, e.g. "azure/gpt-4o-eu"
    model_id: str
    params: Mapping[str, Any]  # keyword arguments for AsyncClient.completion (credentials, timeout, extras)
    provider: str
    rpm: int | None = None
    tpm: int | None = None
    weight: float | None = None
    access_groups: tuple[str, ...] = ()  # model_info.access_groups: what a virtual key's `models` may name

    @property
    def api_base(self) -> str | None:
        base = self.params.get("api_base") or self.params.get("base_url")
        return str(base).split("?", 1)[0] if base else None

    def __repr__(self) -> str:  # never print credentials
        return f"Deployment(model_name={self.model_name!r}, model={self.model!r}, model_id={self.model_id!r})"


@dataclass(frozen=True, slots=True)
class RouterSettings:
    routing_strategy: str = "simple-shuffle"
    num_retries: int = 0
    timeout: float | None = None
    fallbacks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    allowed_fails: int = 3
    cooldown_time: float = 5.0
    model_group_alias: Mapping[str, str] = field(default_factory=dict)
    hidden_aliases: frozenset[str] = frozenset()
    rate_limit_window: float = 60.0  # rpm/tpm window in seconds (llmplex_settings.rate_limit_window_seconds)


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
    database_url: str | None = None  # general_settings.database_url / DATABASE_URL; None: SQLite under data_dir
    data_dir: str | None = None  # llmplex_settings.data_dir: where the default SQLite file lives (./.llmplex)
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
        )

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


def single_model_config(model: str, *, environ: Mapping[str, str] | None = None) -> ProxyConfig:
    """``llmplex --model X``: one deployment named X, credentials from the environment."""
    config = build_config(
        SourceDoc(data={"model_list": [{"model_name": model, "litellm_params": {"model": model}}]}, source="--model"),
        environ,
    )
    return _replace_source(config, None, default_model=model)


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

    entries = check.seq(top.get("model_list", []), "model_list")
    parsed = [_deployment(check, entry, f"model_list[{i}]") for i, entry in enumerate(entries)]
    deployments = tuple(d for d in parsed if d is not None)
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
    master_key = check.optional(general, "general_settings.master_key", str) or env.get("LITELLM_MASTER_KEY") or None
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
        database_url=database,
        data_dir=check.optional(own, f"{_OWN_SECTION}.data_dir", str),
        warnings=tuple(check.warnings()),
    )


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
        overlay[str(name)] = str(section._resolve(value, path, base_env))
    return overlay


def _deployment(check: Checker, raw: Any, path: str) -> Deployment | None:
    entry = check.mapping(raw, path)
    for key in entry:
        if key not in _ENTRY:
            check.ignored(join(path, key))
    name = check.required(entry, join(path, "model_name"), str)
    params_path = join(path, "litellm_params")
    params = dict(check.mapping(check.required(entry, params_path, dict), params_path))
    model = check.required(params, join(params_path, "model"), str)
    if "*" in model or "*" in name:
        check.ignored(join(params_path, "model"), note="wildcard routing")
        return None
    try:
        provider, _ = resolve_model(model, custom_llm_provider=params.get("custom_llm_provider"))
    except UnknownModelError as exc:
        raise check.doc.error(join(params_path, "model"), exc.message) from None
    info = check.mapping(entry.get("model_info") or {}, join(path, "model_info"))
    for key in info:
        if key not in ("id", "access_groups"):
            check.ignored(join(join(path, "model_info"), key))
    model_id = check.optional(info, join(path, "model_info.id"), str) or _derived_id(name, params)
    groups = check.optional(info, join(path, "model_info.access_groups"), list) or []
    if not all(isinstance(g, str) for g in groups):
        raise check.doc.error(join(path, "model_info.access_groups"), "must be a list of group names")
    rpm = check.optional(params, join(params_path, "rpm"), int, minimum=1)
    tpm = check.optional(params, join(params_path, "tpm"), int, minimum=1)
    weight = check.optional(params, join(params_path, "weight"), float, minimum=0.0)
    return Deployment(
        model_name=name,
        model=model,
        model_id=model_id,
        params=MappingProxyType(_call_params(check, params, params_path)),
        provider=provider,
        rpm=rpm,
        tpm=tpm,
        weight=weight,
        access_groups=tuple(groups),
    )


def _call_params(check: Checker, params: Mapping[str, Any], path: str) -> dict[str, Any]:
    """The litellm_params that become ``completion()`` arguments: credentials, timeouts, provider extras."""
    call: dict[str, Any] = {}
    for key, value in params.items():
        if key in _ROUTING_PARAMS or key in ("max_retries", "num_retries"):
            continue  # routing settings; retries are the router's job (router_settings.num_retries)
        if key in _UNSUPPORTED_PARAMS:
            check.ignored(join(path, key))
        elif key in ("api_key", "api_base", "base_url", "api_version"):
            call[key] = check.optional(params, join(path, key), str)
        elif key in ("timeout", "request_timeout"):
            call[key] = check.optional(params, join(path, key), float, minimum=0.001)
        else:
            call[key] = value
    return call


def _derived_id(name: str, params: Mapping[str, Any]) -> str:
    # stable across restarts and workers; secrets are left out of the hash input
    public = {k: v for k, v in params.items() if k not in _SECRET_PARAMS}
    digest = hashlib.sha256(orjson.dumps([name, public], option=orjson.OPT_SORT_KEYS, default=str)).hexdigest()
    return digest[:16]


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
            f"unknown strategy {strategy!r}; use one of {sorted(ROUTING_STRATEGIES)}",
        )
    aliases, hidden = _aliases(check, router.get("model_group_alias"), groups)
    fallbacks_path = "router_settings.fallbacks" if "fallbacks" in router else "litellm_settings.fallbacks"
    fallbacks_raw = router.get("fallbacks", litellm.get("fallbacks"))
    num_retries = pick("num_retries", int, 0)
    allowed_fails = pick("allowed_fails", int, 0)
    cooldown = pick("cooldown_time", float, 0.0)
    return RouterSettings(
        routing_strategy=strategy,
        num_retries=num_retries or 0,
        timeout=pick("timeout", float, 0.001),
        fallbacks=_fallbacks(check, fallbacks_raw, fallbacks_path, groups | set(aliases)),
        allowed_fails=3 if allowed_fails is None else allowed_fails,
        cooldown_time=5.0 if cooldown is None else cooldown,
        model_group_alias=MappingProxyType(aliases),
        hidden_aliases=frozenset(hidden),
    )


def _aliases(check: Checker, raw: Any, groups: set[str]) -> tuple[dict[str, str], set[str]]:
    path = "router_settings.model_group_alias"
    aliases: dict[str, str] = {}
    hidden: set[str] = set()
    for alias, target in check.mapping(raw or {}, path).items():
        where = join(path, alias)
        if isinstance(target, dict):
            if target.get("hidden") is True:
                hidden.add(str(alias))
            target = target.get("model")
        if not isinstance(target, str) or target not in groups:
            raise check.doc.error(where, f"alias target {target!r} is not a model_name in model_list")
        aliases[str(alias)] = target
    return aliases, hidden


def _fallbacks(check: Checker, raw: Any, path: str, names: set[str]) -> dict[str, tuple[str, ...]]:
    result: dict[str, tuple[str, ...]] = {}
    for i, item in enumerate(check.seq(raw or [], path)):
        for group, targets in check.mapping(item, f"{path}[{i}]").items():
            where = join(f"{path}[{i}]", group)
            if isinstance(targets, str):
                targets = [targets]
            if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
                raise check.doc.error(where, "must be a list of model names")
            for name in [group, *targets]:
                if name not in names:
                    raise check.doc.error(where, f"{name!r} is not a model_name in model_list")
            result[str(group)] = tuple(targets)
    return result
