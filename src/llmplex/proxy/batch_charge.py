"""A batch line's cost, charged to the virtual key that created its batch (and that key's user and team).

The executor runs the lines of a batch itself, each a chat completion through the Router; each run is
charged like a live request of the key: its cost (the price table's, as ``response_cost``) goes to the
keys' cache at once and, with one ``/spend/logs`` row per line (``call_type`` ``acompletion``), to the
spend writer, which writes it in batches off the executor's path. Nothing here touches the database.
A failed line is logged with no cost. A line sent twice (in flight at a kill) cost twice upstream and is
charged twice. Pricing or bookkeeping problems are logged, never fail the line or the executor.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from llmplex.proxy.keys.charge import Call
from llmplex.relayed import RelayedResponse

if TYPE_CHECKING:
    from llmplex.batches.jobstore import Claimed
    from llmplex.proxy.keys.service import KeyService
    from llmplex.router.core import Routed

__all__ = ["charge_line"]

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


def _usage(result: Any) -> dict[str, int] | None:
    usage = getattr(result, "usage", None)
    if usage is None:
        return None
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }
