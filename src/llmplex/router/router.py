"""``llmplex.Router``: LiteLLM's ``Router`` API over the routing core the proxy uses too.

``Router(model_list=[...], ...)`` takes LiteLLM's constructor arguments; ``acompletion`` routes one
call inside a ``model_name`` group (retries, cooldowns, rpm/tpm, fallbacks) and ``completion`` is
its blocking twin on the SDK's one background loop. The proxy builds its router with
``Router.from_settings(deployments, settings, redis)`` and calls ``route(...)`` with its own client.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType, TracebackType
from typing import Any

from llmplex._controls import ROUTER_CONTROLS, Controls, check_targets, split_controls
from llmplex._streaming import CompletionStream
from llmplex._sync import SyncStream
from llmplex.client import AsyncClient
from llmplex.config import ClientConfig
from llmplex.config_checks import Checker
from llmplex.config_source import SourceDoc
from llmplex.endpoint_types import EmbeddingResponse, TextCompletionResponse
from llmplex.exceptions import BadRequestError, ConfigError, LLMplexError
from llmplex.relayed import RelayedResponse
from llmplex.router.batch_methods import BatchMethods
from llmplex.router.deployments import Deployment, parse_model_list
from llmplex.router.operations import route_operation
from llmplex.router.settings import (
    ROUTING_STRATEGIES,
    RedisSettings,
    RouterSettings,
    parse_aliases,
    parse_fallbacks,
    redis_url_problem,
)
from llmplex.router.state import RouterState
from llmplex.router.support import unsupported_message
from llmplex.text_completions import TextCompletionStream
from llmplex.types import ModelResponse

__all__ = ["Router"]

logger = logging.getLogger("llmplex.router")

_SOURCE = "Router"  # how ConfigError messages name the place: "Router: model_list[0].litellm_params.model: ..."
_DEFAULT_TIMEOUT = 600.0  # seconds, when neither the Router nor the deployment sets one (as the proxy)


class Router(BatchMethods):
    """LiteLLM's ``Router``: load balancing, retries, cooldowns, rpm/tpm limits and fallbacks over a model_list.

    Arguments are LiteLLM's (defaults too: ``num_retries=2``, ``allowed_fails=3``, ``cooldown_time=5``).
    llmplex's own: ``redis_key_prefix`` (Redis keys of the shared state; routers sharing limits share
    it), ``client``: an ``AsyncClient`` to send with (not closed by ``aclose``); by default the Router
    makes its own on first use, in the running event loop. Other LiteLLM arguments are accepted
    and ignored, with one warning naming them. ``context_window_fallbacks`` and
    ``content_policy_fallbacks`` serve those errors (else ``fallbacks``); ``routing_strategy_args``
    is kept but no strategy reads it yet. Per request, ``acompletion`` and the batch methods
    (``batch_methods.py``) take LiteLLM's controls (``fallbacks``, ``num_retries``, ``mock_*``,
    ``priority``, ...; see ``llmplex._controls``), never sent upstream. ``stream_timeout``: seconds a
    stream may take to its first content before the router fails over. llmplex's waiting line
    (``admission.py``): ``queue_timeout`` (default 10 s; 0 answers 429 at once) and
    ``queue_max_length`` (per group, default 1000).
    """

    def __init__(  # noqa: PLR0913 - LiteLLM's signature
        self,
        model_list: Sequence[Mapping[str, Any]] | None = None,
        *,
        routing_strategy: str = "simple-shuffle",
        routing_strategy_args: Mapping[str, Any] | None = None,
        num_retries: int | None = None,
        timeout: float | None = None,
        fallbacks: Sequence[Mapping[str, Any]] | None = None,
        context_window_fallbacks: Sequence[Mapping[str, Any]] | None = None,
        content_policy_fallbacks: Sequence[Mapping[str, Any]] | None = None,
        allowed_fails: int | None = None,
        cooldown_time: float | None = None,
        retry_after: float = 0,
        model_group_alias: Mapping[str, Any] | None = None,
        default_litellm_params: Mapping[str, Any] | None = None,
        redis_host: str | None = None,
        redis_port: int | None = None,
        redis_password: str | None = None,
        redis_url: str | None = None,
        redis_key_prefix: str = "llmplex",
        client: AsyncClient | None = None,
        stream_timeout: float | None = None,
        default_priority: int | None = None,
        queue_timeout: float | None = None,
        queue_max_length: int | None = None,
        **unknown: Any,
    ) -> None:
        args = {
            "model_list": list(model_list) if isinstance(model_list, (list, tuple)) else model_list or [],
            "routing_strategy": routing_strategy,
            "routing_strategy_args": routing_strategy_args,
            "num_retries": num_retries,
            "timeout": timeout,
            "fallbacks": fallbacks,
            "context_window_fallbacks": context_window_fallbacks,
            "content_policy_fallbacks": content_policy_fallbacks,
            "allowed_fails": allowed_fails,
            "cooldown_time": cooldown_time,
            "retry_after": retry_after,
            "model_group_alias": model_group_alias,
            "default_litellm_params": default_litellm_params,
            "redis_host": redis_host,
            "redis_port": redis_port,
            "redis_password": redis_password,
            "redis_url": redis_url,
            "redis_key_prefix": redis_key_prefix,
            "stream_timeout": stream_timeout,
            "default_priority": default_priority,
            "queue_timeout": queue_timeout,
            "queue_max_length": queue_max_length,
        }
        doc = SourceDoc(data=args, source=_SOURCE)
        doc.resolve_env(os.environ)  # os.environ/VAR anywhere, as in a config file
        check = Checker(doc)
        deployments = parse_model_list(check, doc.data["model_list"])
        settings, redis, defaults = _settings(check, doc.data, {d.model_name for d in deployments})
        for warning in check.warnings():
            logger.warning(warning)
        if unknown:
            logger.warning("llmplex.Router ignores these LiteLLM arguments (not supported yet): %s", ", ".join(unknown))
        self._setup(deployments, settings, redis)
        self._init_sdk(client, defaults)

    @classmethod
    def from_settings(
        cls,
        deployments: Sequence[Deployment],
        settings: RouterSettings,
        redis: RedisSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        state: RouterState | None = None,
    ) -> Router:
        """A router over parsed deployments and settings (the proxy's config builds these)."""
        router = cls.__new__(cls)
        router._setup(deployments, settings, redis, clock=clock, rng=rng, state=state)
        router._init_sdk(None, {})
        return router

    def _init_sdk(self, client: AsyncClient | None, defaults: Mapping[str, Any]) -> None:
        self._client = client
        self._owns_client = client is None
        self._loop: asyncio.AbstractEventLoop | None = None  # where the state started and the own client lives
        self._opening: asyncio.Future[AsyncClient] | None = None
        self._defaults = dict(defaults)

    # --- LiteLLM's methods ------------------------------------------------------------------------

    def get_model_names(self) -> list[str]:
        """The ``model_name`` groups, in model_list order."""
        return list(self._groups)

    def get_model_list(self) -> list[dict[str, Any]]:
        """The deployments as LiteLLM-shaped dicts (``os.environ/`` values resolved)."""
        return [d.as_dict() for d in self.deployments]

    async def acompletion(
        self, model: str, messages: list[dict[str, Any]], stream: bool = False, **kwargs: Any
    ) -> ModelResponse | CompletionStream:
        """One chat completion routed in the ``model`` group (or alias); ``stream=True`` -> ``CompletionStream``."""
        problem = self.unsupported(model)
        if problem is not None:
            raise BadRequestError(unsupported_message(problem, model), param="model")
        group = self.group_for(model)
        if group is None:
            raise self._unknown_group(model)
        if (wrong := self.chat_problem(group)) is not None:
            raise BadRequestError(wrong, param="model")
        client = self._client
        if client is None or self._loop is not asyncio.get_running_loop():
            client = await self._open()
        options = {**self._defaults, **kwargs, "stream": stream} if self._defaults else {**kwargs, "stream": stream}
        controls, options = self.split_controls(options)
        routed = await self.route(client, group, messages, options, controls=controls)
        result = routed.result
        if isinstance(result, RelayedResponse):
            return result.response()
        return result

    async def schedule_acompletion(
        self, model: str, messages: list[dict[str, Any]], priority: int, stream: bool = False, **kwargs: Any
    ) -> ModelResponse | CompletionStream:
        """``acompletion`` with a place in line (LiteLLM's name): lower ``priority`` first, FIFO within one.

        The place matters only while every deployment of the group is at a limit or cooling down;
        the request then waits up to ``queue_timeout`` (capped by its timeout), else ``RateLimitError``.
        """
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise BadRequestError(f"priority must be an integer, got {priority!r}", param="priority")
        return await self.acompletion(model, messages, stream, priority=priority, **kwargs)

    def split_controls(self, options: dict[str, Any]) -> tuple[Controls | None, dict[str, Any]]:
        """LiteLLM's per-request controls out of ``options`` (see ``llmplex._controls``), their groups checked.

        Unknown fallback groups, a non-integer ``priority`` and the like are a ``BadRequestError`` naming
        the field. ``options`` comes back as is when it holds no control (the common case).
        """
        if ROUTER_CONTROLS.isdisjoint(options):
            return None, options
        controls, rest = split_controls(options, ROUTER_CONTROLS)
        if controls is not None and controls.specs:
            check_targets(controls.specs.items(), lambda name: self.group_for(name) is not None)
        return controls, rest

    def completion(
        self, model: str, messages: list[dict[str, Any]], stream: bool = False, **kwargs: Any
    ) -> ModelResponse | SyncStream:
        """``acompletion``, blocking, on the SDK's background loop (``stream=True`` -> a ``SyncStream``)."""
        from llmplex._api import background_loop  # the SDK's blocking layer sits above the router

        runner = background_loop()
        result = runner.run(self.acompletion(model, messages, stream, **kwargs))
        return SyncStream(runner, result) if isinstance(result, CompletionStream) else result

    # --- endpoints beyond chat (routed by operations.route_operation: same picks, retries, fallbacks) ---

    async def aembedding(self, model: str, input: Any, **kwargs: Any) -> EmbeddingResponse:
        """Embeddings routed in the ``model`` group (LiteLLM's ``Router.aembedding``); long inputs are split."""
        group, client = await self._group_client(model)
        options = {**self._defaults, **kwargs}

        async def send(deployment: Deployment) -> EmbeddingResponse:
            result = await client.embedding(deployment.model, input, **{**deployment.params, **options})
            assert isinstance(result, EmbeddingResponse)
            return result

        result, _ = await route_operation(self, group, send, stats=_embedding_stats)
        return result

    def embedding(self, model: str, input: Any, **kwargs: Any) -> EmbeddingResponse:
        """``aembedding``, blocking, on the SDK's background loop."""
        from llmplex._api import background_loop

        return background_loop().run(self.aembedding(model, input, **kwargs))

    async def atext_completion(
        self, model: str, prompt: Any, **kwargs: Any
    ) -> TextCompletionResponse | TextCompletionStream:
        """A legacy text completion routed in the ``model`` group (LiteLLM's ``Router.atext_completion``)."""
        group, client = await self._group_client(model)
        options = {**self._defaults, **kwargs}

        async def send(deployment: Deployment) -> TextCompletionResponse | TextCompletionStream:
            result = await client.text_completion(prompt, deployment.model, **{**deployment.params, **options})
            assert isinstance(result, (TextCompletionResponse, TextCompletionStream))
            return result

        result, _ = await route_operation(self, group, send, stats=_text_stats)
        return result

    def text_completion(self, model: str, prompt: Any, **kwargs: Any) -> TextCompletionResponse | SyncStream:
        """``atext_completion``, blocking (``stream=True`` -> a ``SyncStream`` of chunks)."""
        from llmplex._api import background_loop

        runner = background_loop()
        result = runner.run(self.atext_completion(model, prompt, **kwargs))
        return SyncStream(runner, result) if isinstance(result, TextCompletionStream) else result

    async def _group_client(self, model: str) -> tuple[str, AsyncClient]:
        group = self.group_for(model)
        if group is None:
            raise self._unknown_group(model)
        client = self._client
        if client is None or self._loop is not asyncio.get_running_loop():
            client = await self._open()
        return group, client

    async def aclose(self) -> None:
        """Close the shared state's connections and the Router's own client (never a client passed in)."""
        client, self._client = (self._client, None) if self._owns_client else (None, self._client)
        self._loop = self._opening = None
        try:
            await self.state.close()
        finally:
            if client is not None:
                await client.aclose()

    def close(self) -> None:
        """``aclose`` for a Router used through the blocking methods."""
        from llmplex._api import background_loop

        if self._loop is None and self._client is None:
            return  # never used: nothing to close
        background_loop().run(self.aclose())

    async def __aenter__(self) -> Router:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"Router(models={self.get_model_names()!r}, routing_strategy={self.settings.routing_strategy!r})"

    # --- internals ---------------------------------------------------------------------------------

    async def _client_for_loop(self) -> AsyncClient:
        """The client to send with in the running loop (the first use there starts the state and the client)."""
        client = self._client
        if client is None or self._loop is not asyncio.get_running_loop():
            client = await self._open()
        return client

    async def _open(self) -> AsyncClient:
        """First use in this loop: start the state (Redis connects here) and make the client if it is ours."""
        loop = asyncio.get_running_loop()
        if self._loop is not None and self._loop is not loop:
            raise LLMplexError(
                "this Router is bound to another event loop (its first call ran there); use one Router per loop"
            )
        if self._opening is None:
            self._loop = loop
            self._opening = loop.create_future()
            try:
                await self.start()
                if self._client is None:
                    # the router retries across deployments, so the client itself does not retry
                    timeout = self.settings.timeout or _DEFAULT_TIMEOUT
                    self._client = AsyncClient(ClientConfig.from_env(num_retries=0, timeout=timeout))
            except BaseException as exc:
                self._opening.set_exception(exc)
                self._opening.exception()  # retrieved here: later callers see the same error
                self._loop = self._opening = None
                raise
            self._opening.set_result(self._client)
        return await asyncio.shield(self._opening)

    def _unknown_group(self, model: str) -> BadRequestError:
        names = [*self._groups, *(a for a in self._aliases if a not in self.settings.hidden_aliases)]
        return BadRequestError(
            f"Invalid model name passed in model={model}. Available models: {', '.join(names)}",
            model=model,
            param="model",
        )


def _settings(
    check: Checker, args: Mapping[str, Any], groups: set[str]
) -> tuple[RouterSettings, RedisSettings | None, Mapping[str, Any]]:
    strategy = check.optional(args, "routing_strategy", str) or "simple-shuffle"
    if strategy not in ROUTING_STRATEGIES:
        raise check.doc.error(
            "routing_strategy",
            f"unknown strategy {check.doc.shown('routing_strategy', strategy)}; "
            f"use one of {sorted(ROUTING_STRATEGIES)}",
        )
    aliases, hidden = parse_aliases(check, args["model_group_alias"], "model_group_alias", groups)
    names = groups | set(aliases)
    num_retries = check.optional(args, "num_retries", int, minimum=0)
    allowed_fails = check.optional(args, "allowed_fails", int, minimum=0)
    cooldown = check.optional(args, "cooldown_time", float, minimum=0.0)
    queue_timeout = check.optional(args, "queue_timeout", float, minimum=0.0)
    queue_max = check.optional(args, "queue_max_length", int, minimum=0)
    settings = RouterSettings(
        queue_timeout=10.0 if queue_timeout is None else queue_timeout,
        queue_max_length=1000 if queue_max is None else queue_max,
        stream_first_token_timeout=check.optional(args, "stream_timeout", float, minimum=0.001),
        default_priority=check.optional(args, "default_priority", int),
        routing_strategy=strategy,
        routing_strategy_args=MappingProxyType(
            dict(check.mapping(args["routing_strategy_args"] or {}, "routing_strategy_args"))
        ),
        num_retries=2 if num_retries is None else num_retries,
        timeout=check.optional(args, "timeout", float, minimum=0.001),
        fallbacks=parse_fallbacks(check, args["fallbacks"], "fallbacks", names),
        context_window_fallbacks=parse_fallbacks(
            check, args["context_window_fallbacks"], "context_window_fallbacks", names
        ),
        content_policy_fallbacks=parse_fallbacks(
            check, args["content_policy_fallbacks"], "content_policy_fallbacks", names
        ),
        allowed_fails=3 if allowed_fails is None else allowed_fails,
        cooldown_time=5.0 if cooldown is None else cooldown,
        retry_after=check.optional(args, "retry_after", float, minimum=0.0) or 0.0,
        model_group_alias=MappingProxyType(aliases),
        hidden_aliases=frozenset(hidden),
    )
    defaults = check.mapping(args["default_litellm_params"] or {}, "default_litellm_params")
    url = check.optional(args, "redis_url", str)
    if url and (problem := redis_url_problem(url)):
        raise check.doc.error("redis_url", problem)
    host = check.optional(args, "redis_host", str)
    redis = None
    if url or host:
        redis = RedisSettings(
            url=url,
            host=host or "localhost",
            port=check.optional(args, "redis_port", int, minimum=1) or 6379,
            password=check.optional(args, "redis_password", str),
            key_prefix=check.required(args, "redis_key_prefix", str),
        )
    elif args["redis_port"] is not None or args["redis_password"] is not None:
        raise ConfigError(f"{_SOURCE}: redis_port / redis_password need redis_host or redis_url")
    return settings, redis, defaults


def _embedding_stats(result: EmbeddingResponse) -> tuple[int, bool]:
    return (result.usage.prompt_tokens if result.usage else 0), True


def _text_stats(result: TextCompletionResponse | TextCompletionStream) -> tuple[int, bool]:
    if isinstance(result, TextCompletionStream):
        return 0, False
    return (result.usage.total_tokens if result.usage else 0), True
