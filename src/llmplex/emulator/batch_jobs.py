"""What the three emulated batch APIs share: answering one request in place, and when a batch finishes.

A batch is answered line by line with the same dialect code the live routes use (directives such as
``status-429`` in a line's model name make that line fail). It finishes on a chosen poll: by default
the first retrieve after creation sees it ended; ``polls-<n>`` in the first request's model name, or
the header ``x-emulator-polls: <n>`` on the create request, makes the ``n``-th retrieve see it ended
(``polls-0``: ended at creation). A line whose last user message starts with ``emulator-<directives>``
(e.g. ``emulator-status-400``) gets those directives on top of its model's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from llmplex.emulator.conversation import build_reply
from llmplex.emulator.dialect import Dialect, Failure, Incoming
from llmplex.emulator.directives import Settings, parse_directives

__all__ = ["Answer", "BatchClock", "answer", "polls_wanted"]

_POLLS_HEADER = "x-emulator-polls"


@dataclass(frozen=True, slots=True)
class Answer:
    """One request's outcome: the status and the provider's native body (a completion or an error)."""

    status: int
    body: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.status < 400


def answer(dialect: Dialect, payload: Any, model: str, settings: Settings, path_target: str = "") -> Answer:
    """The answer ``dialect``'s live route would give to ``payload`` (no delay, never streamed)."""
    if not isinstance(payload, dict):
        return _from_failure(dialect.failure(400, "The request body must be a JSON object."))
    failure = dialect.validate(payload)
    if failure is not None:
        return _from_failure(failure)
    conversation = dialect.conversation(payload)
    # one line of a batch can be steered apart from the others: "emulator-status-400 ..." as its user text
    word = conversation.last_user_text.split(" ", 1)[0]
    directives = parse_directives(f"{model}-{word}" if word.startswith("emulator-") else model, {}, settings)
    if directives.status is not None:
        return _from_failure(dialect.failure(directives.status, model=model))
    reply = build_reply(conversation, model, directives)
    incoming = Incoming({"target": path_target}, {}, {}, b"")
    return Answer(200, orjson.loads(dialect.completion(reply, incoming, payload)))


def _from_failure(failure: Failure) -> Answer:
    return Answer(failure.status, orjson.loads(failure.body))


def polls_wanted(model: str, headers: dict[str, str]) -> int:
    """How many retrieves a new batch takes to end (see the module docstring)."""
    value = headers.get(_POLLS_HEADER, "").strip()
    if value.isdigit():
        return int(value)
    tokens = model.split("-")
    for index, token in enumerate(tokens[:-1]):
        if token.lower() == "polls" and tokens[index + 1].isdigit():
            return int(tokens[index + 1])
    return 1


@dataclass(slots=True)
class BatchClock:
    """Counts a batch's retrieves and says when it is due to end."""

    polls_left: int
    created_at: int = field(default_factory=lambda: int(time.time()))
    cancel_requested: bool = False

    def poll(self) -> bool:
        """Count one retrieve; True once the batch is due to end (and from then on)."""
        if self.polls_left > 0:
            self.polls_left -= 1
        return self.polls_left <= 0

    @property
    def due(self) -> bool:
        return self.polls_left <= 0
