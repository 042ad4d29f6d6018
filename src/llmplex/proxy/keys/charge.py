"""What a virtual key's request costs: budget checks before it, rate-limit admission, spend after it.

``check_budget`` runs before the upstream call (then the limiter's admission, for keys, users or teams
with limits); ``finish`` runs when the response has been sent (``RequestRecord.done``): it gives back
the parallel slot, counts tokens for tpm, adds the cost to the cache at once and hands the spend
and a request-log row to the writer; ``charge_cost`` does the same for calls made for a key outside
its requests (the lines of its batches). Budget windows (``budget_duration``) are reset here too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from llmplex.cost import price
from llmplex.proxy.config import ProxyConfig
from llmplex.proxy.errors import ProxyError
from llmplex.proxy.keys.limits import Admission
from llmplex.proxy.keys.model import Entity, Kind, Principal, duration_seconds
from llmplex.relayed import RelayedResponse
from llmplex.router.deployments import Deployment

if TYPE_CHECKING:
    from llmplex.proxy.access_log import RequestRecord
    from llmplex.proxy.keys.service import KeyService

__all__ = ["Call", "Charges"]

logger = logging.getLogger("llmplex.proxy.keys")

# LiteLLM's call_type per route (anything else that serves a model is a chat completion)
_CALL_TYPES = {
    "/v1/embeddings": "aembedding",
    "/embeddings": "aembedding",
    "/v1/completions": "atext_completion",
    "/completions": "atext_completion",
    "/v1/messages": "anthropic_messages",
}


@dataclass(frozen=True, slots=True)
class Call:
    """A call charged through ``Charges.charge_cost``: what its request-log row says."""

    model: str  # the deployment's model (LiteLLM's ``model`` column)
    model_group: str | None
    started: float  # epoch seconds
    usage: Mapping[str, int] | None = None
    ok: bool = True
    status: int = 200
    request_id: str = ""  # the row's ``metadata.x_request_id``
    call_type: str = "acompletion"


class Charges:
    def __init__(self, service: KeyService, config: ProxyConfig) -> None:
        self.service = service
        self._deployments: dict[str, Deployment] = {d.model_id: d for d in config.deployments}
        self._next_due = 0.0

    def check_budget(self, principal: Principal) -> None:
        """LiteLLM's ``BudgetExceededError``: status 422 (its ``budget_exceeded_status_code``), type budget_exceeded."""
        now = time.time()
        key, user, team = principal.key, principal.user, principal.team
        if key.max_budget is not None and (spend := key.current_spend(now)) >= key.max_budget:
            descriptor = f"{key.alias or 'key'} ({key.key_name})" if key.key_name else key.alias or "key"
            raise _over_budget(
                f"Budget has been exceeded! Key={descriptor} Current cost: {spend}, Max budget: {key.max_budget}"
            )
        if user is not None and user.max_budget is not None and (spend := user.current_spend(now)) >= user.max_budget:
            raise _over_budget(f"ExceededBudget: User={user.id} over budget. Spend={spend}, Budget={user.max_budget}")
        if team is not None and team.max_budget is not None and (spend := team.current_spend(now)) >= team.max_budget:
            raise _over_budget(
                f"Budget has been exceeded! Team={team.id} Current cost: {spend}, Max budget: {team.max_budget}"
            )

    def headers(
        self, principal: Principal, admission: Admission | None, record: RequestRecord | None
    ) -> list[tuple[bytes, bytes]]:
        """LiteLLM's per-key response headers (spend includes this answer's cost when it is known already)."""
        key = principal.key
        cost = self._cost(record, None) if record is not None and record.response is not None else 0.0
        out = [(b"x-litellm-key-spend", repr(key.current_spend(time.time()) + cost).encode()), *key.static_headers]
        if admission is not None:
            out += admission.headers
        return out

    def finish(self, principal: Principal, admission: Admission | None, record: RequestRecord) -> None:
        """The request is over (answered, failed or abandoned): release, count, charge, log."""
        usage = _usage(record)
        if usage:
            prompt, completion, tokens = (
                usage.get("prompt_tokens", 0),
                usage.get("completion_tokens", 0),
                usage.get("total_tokens", 0),
            )
        else:
            prompt = completion = tokens = 0
        if admission is not None:
            self.service.limiter.release(admission, tokens)
        ok = 200 <= record.status < 300 and record.error is None
        cost = self._cost(record, usage) if ok else 0.0
        if cost:
            cache = self.service.cache
            if cache.principal(principal.key.id) is principal:  # still current: its entities are the cache's
                for entity in principal.all:
                    entity.spend += cost
            else:
                for entity in principal.all:  # a reload replaced them since the request began: the current objects
                    current = cache.get(entity.kind, entity.id)
                    if current is not None:
                        current.spend += cost
        end = time.time()
        key = principal.key
        deployment = self._deployments.get(record.deployment or "")
        # a tuple in the log table's column order after request_id (repository.LOG_COLUMNS); the id and the
        # metadata's JSON are made at flush time
        row = (
            key.id,
            key.user_id,
            key.team_id,
            deployment.model if deployment else record.model,
            record.model,
            _CALL_TYPES.get(record.route, "acompletion"),
            cost,
            prompt,
            completion,
            tokens,
            end - (time.perf_counter() - record.started),
            end,
            "success" if ok else "failure",
            record.request_id,
            record.status,
        )
        self.service.writer.add(principal, cost, row)

    def charge_cost(self, token: str, user_id: str | None, team_id: str | None, cost: float, call: Call) -> None:
        """Charge a call made for a key outside its own requests (a line of a batch it created): the cost goes to
        the cache at once and, with a request-log row, to the spend writer, as ``finish`` does. By ids, not by the
        cached ``Principal``: the key may have been deleted or blocked since; its spend rows are still written
        (an ``UPDATE`` of a deleted row changes nothing) and the log row keeps its hash."""
        if cost:
            tables = self.service.cache
            payers: tuple[tuple[Kind, str | None], ...] = (("key", token), ("user", user_id), ("team", team_id))
            for kind, id_ in payers:
                current = tables.get(kind, id_) if id_ else None
                if current is not None:
                    current.spend += cost
        payer = Principal(
            Entity("key", token),
            Entity("user", user_id) if user_id else None,
            Entity("team", team_id) if team_id else None,
        )
        usage = call.usage or {}
        row = (  # as ``finish``'s: the log table's columns after request_id, then x_request_id and status_code
            token,
            user_id,
            team_id,
            call.model,
            call.model_group,
            call.call_type,
            cost,
            usage.get("prompt_tokens", 0),
            usage.get("completion_tokens", 0),
            usage.get("total_tokens", 0),
            call.started,
            time.time(),
            "success" if call.ok else "failure",
            call.request_id,
            call.status,
        )
        self.service.writer.add(payer, cost, row)

    def _cost(self, record: RequestRecord, usage: dict[str, int] | None) -> float:
        try:
            if record.response is not None:  # computed lazily by the response (the price table's answer)
                cost = record.response.hidden_params.get("response_cost")
                return float(cost) if cost is not None else 0.0
            deployment = self._deployments.get(record.deployment or "")
            if usage and deployment is not None:  # a stream: its final usage chunk
                model = deployment.model.removeprefix(f"{deployment.provider}/")
                return price(
                    model, deployment.provider, usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
                )
        except Exception:  # a pricing problem never fails a request that already succeeded
            logger.debug("no price for %s", record.model, exc_info=True)
        return 0.0

    async def reset_budgets(self) -> None:
        """Zero the spend of every key, user and team whose ``budget_duration`` window ended (one replica does it)."""
        now = time.time()
        if now < self._next_due:
            return
        due: list[Entity] = []
        next_due = now + 60.0
        for entity in self.service.cache.entities():
            if entity.budget_duration and entity.budget_reset_at is not None:
                if entity.budget_reset_at <= now:
                    due.append(entity)
                else:
                    next_due = min(next_due, entity.budget_reset_at)
        self._next_due = next_due
        if not due:
            return
        from llmplex.proxy.keys import repository

        async with self.service.store.transaction() as conn:
            for entity in due:
                assert entity.budget_duration is not None and entity.budget_reset_at is not None
                following = now + duration_seconds(entity.budget_duration)
                await repository.reset_budget(conn, entity.kind, entity.id, entity.budget_reset_at, following)
                entity.spend, entity.budget_reset_at = 0.0, following
        self._next_due = 0.0


def _over_budget(message: str) -> ProxyError:
    return ProxyError(422, message, type="budget_exceeded")


def _usage(record: RequestRecord) -> dict[str, int] | None:
    if record.usage is not None:
        return record.usage
    response = record.response
    if response is None:
        return None
    if isinstance(response, RelayedResponse):
        return response.usage_counts()
    usage = response.usage
    if usage is None:
        return None
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }
