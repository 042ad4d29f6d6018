"""The SDK Router's batch methods (LiteLLM's names and shapes), mixed into ``llmplex.Router``.

- ``abatch_completion(models, messages)``: one request to every group (a list, one slot per group),
  or N requests (a list of message lists) to every group (a list per request, one slot per group);
  a failed slot holds its exception, as in LiteLLM.
- ``abatch_completion_one_model_multiple_requests(model, messages)``: many prompts to one group,
  with the SDK batch options (``max_concurrency``, ``rpm``/``tpm``, ``progress``, ``checkpoint``,
  ``return_exceptions``), on ``llmplex.batch``'s machinery driving ``Router.acompletion``.
- ``abatch_completion_fastest_response(model="a, b")``: a race (``racing.race``): the first
  *successful* answer wins and the losers' connections are closed; ``hedge_delay`` (seconds or
  ``"auto"``) staggers the starts; ``stream=True`` is decided by the first content token. A group
  given twice is two independent attempts.
Blocking twins run on the SDK's one background loop, like ``Router.completion``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from llmplex._batch_inputs import check_positive
from llmplex._concurrency import gather_settled
from llmplex._hedge import Hedge
from llmplex._latency import DEFAULT_QUANTILE, valid_quantile
from llmplex._streaming import CompletionStream
from llmplex._sync import LoopThread, SyncStream
from llmplex.batch import Driver, race_metadata, run_batch
from llmplex.exceptions import BadRequestError
from llmplex.relayed import RelayedResponse
from llmplex.router.core import RoutingCore
from llmplex.router.racing import position_labels, race
from llmplex.types import ModelResponse

if TYPE_CHECKING:
    from llmplex._controls import Controls
    from llmplex.client import AsyncClient

__all__ = ["BatchMethods"]


class BatchMethods(RoutingCore):
    """LiteLLM's ``Router`` batch methods; ``llmplex.Router`` (``router.py``) is the class that has them."""

    _defaults: dict[str, Any]

    if TYPE_CHECKING:  # defined by Router

        async def acompletion(
            self, model: str, messages: list[dict[str, Any]], stream: bool = False, **kwargs: Any
        ) -> ModelResponse | CompletionStream: ...

        def split_controls(self, options: dict[str, Any]) -> tuple[Controls | None, dict[str, Any]]: ...

        async def _client_for_loop(self) -> AsyncClient: ...

        def _unknown_group(self, model: str) -> BadRequestError: ...

    async def abatch_completion(self, models: Sequence[str] | str, messages: Any, **kwargs: Any) -> list[Any]:
        """One request to N groups -> N results; N requests (a list of message lists) to M groups -> N lists of M.

        Each slot holds the response, or the exception that call raised (LiteLLM's shape).
        """
        groups = self._group_names(models, "models")
        if not isinstance(messages, list) or not messages:
            raise BadRequestError("messages must be a non-empty list", param="messages")
        if all(isinstance(m, dict) for m in messages):
            return await gather_settled([_call(self, g, messages, kwargs) for g in groups])
        if not all(isinstance(m, list) for m in messages):
            raise BadRequestError(
                "messages must be one request (a list of message dicts) or several (a list of such lists)",
                param="messages",
            )
        flat = await gather_settled([_call(self, g, request, kwargs) for request in messages for g in groups])
        width = len(groups)
        return [flat[i * width : (i + 1) * width] for i in range(len(messages))]

    async def abatch_completion_one_model_multiple_requests(
        self, model: str, messages: list[list[dict[str, Any]]], **kwargs: Any
    ) -> list[Any]:
        """Many prompts to one group; results aligned with ``messages`` (a failed item holds its exception).

        Takes ``llmplex.batch_completion``'s options: ``max_concurrency`` (default 100), ``rpm`` / ``tpm``
        pacing, ``progress``, ``checkpoint``, ``return_exceptions`` (default True, as LiteLLM).
        """
        self._group_names([model], "model")
        client = await self._client_for_loop()

        def check(group: str, conversation: list[dict[str, Any]], options: dict[str, Any]) -> None:
            self.split_controls(options)  # a malformed control fails the batch before any request

        driver = Driver(self.acompletion, client.config.max_connections, check, "batch_completion")
        return await run_batch(driver, model, messages, **kwargs)

    async def abatch_completion_fastest_response(
        self,
        model: str | Sequence[str],
        messages: list[dict[str, Any]],
        stream: bool = False,
        hedge_delay: float | str | None = None,
        hedge_quantile: float | None = None,
        **kwargs: Any,
    ) -> ModelResponse | CompletionStream:
        """Race the groups in ``model`` (``"a, b"`` or a list): the first successful answer, the rest cancelled.

        ``response.hidden_params["race"]`` tells the story (winner, each attempt's status and latency);
        ``hidden_params["fastest_response_batch_completion"]`` is True as in LiteLLM. Every attempt
        failing raises ``AllModelsFailedError``.
        """
        names = self._group_names(model, "model")
        groups = [self._checked_group(name) for name in names]
        client = await self._client_for_loop()
        options = {**self._defaults, **kwargs, "stream": stream}
        controls, options = self.split_controls(options)
        hedge = _hedge(self, groups[0], hedge_delay, hedge_quantile)
        labels = position_labels(names)
        outcome = await race(
            self, client, labels, groups, messages, options, hedge_delay=hedge.delay, controls=controls
        )
        result = outcome.value.result
        value = result.response() if isinstance(result, RelayedResponse) else result
        hidden = value.hidden_params
        hidden["race"] = {**race_metadata(outcome), **hedge.metadata()}
        hidden["model_label"] = outcome.winner
        hidden["fastest_response_batch_completion"] = True
        return value

    # --- blocking twins (the SDK's one background loop) -----------------------------------------------

    def batch_completion(self, models: Sequence[str] | str, messages: list[Any], **kwargs: Any) -> list[Any]:
        """``abatch_completion``, blocking."""
        result: list[Any] = _runner().run(self.abatch_completion(models, messages, **kwargs))
        return result

    def batch_completion_one_model_multiple_requests(
        self, model: str, messages: list[list[dict[str, Any]]], **kwargs: Any
    ) -> list[Any]:
        """``abatch_completion_one_model_multiple_requests``, blocking."""
        result: list[Any] = _runner().run(self.abatch_completion_one_model_multiple_requests(model, messages, **kwargs))
        return result

    def batch_completion_fastest_response(
        self, model: str | Sequence[str], messages: list[dict[str, Any]], stream: bool = False, **kwargs: Any
    ) -> ModelResponse | SyncStream:
        """``abatch_completion_fastest_response``, blocking (``stream=True`` -> a ``SyncStream``)."""
        runner = _runner()
        result = runner.run(self.abatch_completion_fastest_response(model, messages, stream, **kwargs))
        return SyncStream(runner, result) if isinstance(result, CompletionStream) else result

    # --- helpers -------------------------------------------------------------------------------------

    def _group_names(self, models: Any, param: str) -> list[str]:
        """``"a, b"`` or ``["a", "b"]`` as names, each a known group or alias (else a 400 naming the known ones)."""
        names = [part.strip() for part in models.split(",")] if isinstance(models, str) else models
        if not isinstance(names, Sequence) or not names or not all(isinstance(n, str) and n for n in names):
            raise BadRequestError(f"{param} must name at least one model group", param=param)
        for name in names:
            self._checked_group(name, param)
        return list(names)

    def _checked_group(self, name: str, param: str = "model") -> str:
        group = self.group_for(name)
        if group is None:
            error = self._unknown_group(name)
            error.param = param
            raise error
        return group


def _call(
    router: BatchMethods, group: str, messages: list[dict[str, Any]], kwargs: dict[str, Any]
) -> Callable[[], Awaitable[Any]]:
    return lambda: router.acompletion(group, messages, **kwargs)


def _hedge(router: BatchMethods, group: str, hedge_delay: Any, hedge_quantile: Any) -> Hedge:
    """The race's hedge delay: as given, or ``"auto"``: from the first group's recent latencies (all deployments)."""
    if hedge_quantile is not None and hedge_delay != "auto":
        raise BadRequestError('hedge_quantile applies only with hedge_delay="auto"', param="hedge_quantile")
    if hedge_delay != "auto":
        if isinstance(hedge_delay, str):
            raise BadRequestError(
                f'hedge_delay must be a number >= 0 or "auto", got {hedge_delay!r}', param="hedge_delay"
            )
        check_positive("hedge_delay", hedge_delay, allow_zero=True)
        return Hedge(hedge_delay)
    q = DEFAULT_QUANTILE if hedge_quantile is None else hedge_quantile
    if not valid_quantile(q):
        raise BadRequestError(f"hedge_quantile must be a number in (0, 1], got {q!r}", param="hedge_quantile")
    delay, samples = router.hedge_delay(group, q)
    return Hedge(delay, samples)


def _runner() -> LoopThread:
    from llmplex._api import background_loop  # the SDK's blocking layer sits above the router

    return background_loop()
