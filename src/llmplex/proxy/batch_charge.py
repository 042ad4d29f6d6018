"""A batch line's cost, charged to the virtual key that created its batch (and that key's user and team).

The executor runs the lines of a batch itself, each a chat completion through the Router; each run is
charged like a live request of the key: its cost (the price table's, as ``response_cost``) goes to the
keys' cache at once and, with one ``/spend/logs`` row per line (``call_type`` ``acompletion``), to the
spend writer, which writes it in batches off the executor's path. Nothing here touches the database.
A failed line is logged with no cost. A line sent twice (in flight at a kill) cost twice upstream and is
charged twice. Lines a provider's batch API answered (``native_batches``) are charged when they are
collected, at the provider's batch price. Pricing or bookkeeping problems are logged, never fail the line
or the executor.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from llmplex.cost import completion_cost
from llmplex.providers import resolve_model
from llmplex.proxy.keys.charge import Call
from llmplex.relayed import RelayedResponse

if TYPE_CHECKING:
    from llmplex.batches.jobstore import Claimed
    from llmplex.proxy.keys.service import KeyService
    from llmplex.router import Deployment
    from llmplex.router.core import Routed

__all__ = ["charge_line", "charge_native"]

logger = logging.getLogger("llmplex.batches")


def charge_line(
    keys: KeyService, line: Claimed, routed: Routed | None, model: Any, group: str | None, status: int, started: float
) -> None:
    """Charge one line that ran (``routed``: its answer; None when it failed) to the creator of its batch."""
    creator = line.creator
    if creator is None:
        return
    try:
        cost, usage, served = 0.0, None, model if isinstance(model, str) else ""
        if routed is not None:
            result = routed.result
            served = routed.deployment.model
            usage = result.usage_counts() if isinstance(result, RelayedResponse) else _usage(result)
            found = result.hidden_params.get("response_cost")
            cost = float(found) if found is not None else 0.0
        call = Call(
            served,
            group,
            started,
            usage,
            ok=routed is not None,
            status=status,
            request_id=f"{line.batch_id}:{line.custom_id}",  # the log row's x_request_id: which line it was
        )
        keys.charges.charge_cost(creator.token, creator.user_id, creator.team_id, cost, call)
    except Exception:  # the answer is already in hand: a pricing or bookkeeping problem never fails the line
        logger.warning("batch %s line %d not charged", line.batch_id, line.idx, exc_info=True)


def charge_native(keys: KeyService, row: dict[str, Any], deployment: Deployment, lines: list[dict[str, Any]]) -> None:
    """Charge the lines of one provider batch (OpenAI-shaped result lines) to the creator of ``row``'s batch."""
    token = row.get("key_token")
    if not token:
        return
    try:
        model_id = resolve_model(deployment.model)[1]
        now = time.time()
        for line in lines:
            response = line.get("response") or {}
            status = int(response.get("status_code") or 500)
            body = response.get("body")
            usage = body.get("usage") if status < 400 and isinstance(body, dict) else None
            counts = None
            cost = 0.0
            if isinstance(usage, dict):
                prompt, completion = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
                counts = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
                cost = completion_cost(
                    model=model_id,
                    custom_llm_provider=deployment.provider,
                    prompt_tokens=prompt,
                    completion_tokens=completion,
                    batch=True,  # the provider's batch price
                )
            call = Call(
                deployment.model,
                deployment.model_name,
                row.get("in_progress_at") or now,
                counts,
                ok=status < 400,
                status=status,
                request_id=f"{row['id']}:{line.get('custom_id')}",
            )
            keys.charges.charge_cost(token, row.get("user_id"), row.get("team_id"), cost, call)
    except Exception:  # the results are kept already: a pricing or bookkeeping problem never stops the poller
        logger.warning("batch %s: native results not charged", row.get("id"), exc_info=True)


def _usage(result: Any) -> dict[str, int] | None:
    usage = getattr(result, "usage", None)
    if usage is None:
        return None
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }
