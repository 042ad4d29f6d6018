"""Validation of batch arguments, before any request is sent.

The keyword rule for every batch function: a keyword must be an OpenAI chat parameter, a call
setting (``_request.CALL_SETTINGS``: key, base URL, timeouts, retries, ...), ``stream`` where it
applies, or one of the function's own controls. Anything else is a ``BadRequestError``: an unknown
keyword is far more often a typo or a LiteLLM-only option than a provider field, and sending it
upstream fails every item of the batch at the provider. Provider-specific fields go in
``extra_body={...}``, merged into the provider's request body as given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llmplex._request import CALL_SETTINGS, validate_messages
from llmplex.exceptions import BadRequestError
from llmplex.providers.base import OPENAI_PARAMS

__all__ = ["ModelEntry", "check_params", "check_positive", "model_entries", "validate_conversations"]

# the legacy OpenAI function-calling pair is still sent as given
_LEGACY_OPENAI = frozenset({"functions", "function_call"})
SENDABLE: frozenset[str] = OPENAI_PARAMS | CALL_SETTINGS | _LEGACY_OPENAI | {"stream", "extra_body"}


def check_params(params: Mapping[str, Any], *, where: str, allow_stream: bool = True) -> None:
    """Reject keywords that are neither sendable nor settings (see the module docstring)."""
    for key in params:
        if key not in SENDABLE or (key == "stream" and not allow_stream and params[key]):
            if key == "stream":
                raise BadRequestError(
                    f"{where} collects whole responses; stream=True is not supported here", param="stream"
                )
            raise BadRequestError(
                f"{where}: unknown parameter {key!r}. Provider-specific fields go in extra_body={{{key!r}: ...}}",
                param=key,
            )
    extra = params.get("extra_body")
    if extra is not None and not isinstance(extra, Mapping):
        raise BadRequestError("extra_body must be a dict of fields to add to the request body", param="extra_body")


def check_positive(name: str, value: Any, *, integer: bool = False, allow_zero: bool = False) -> None:
    if value is None:
        return
    number = isinstance(value, int) or (isinstance(value, float) and not integer)
    if isinstance(value, bool) or not number or value < 0 or (value == 0 and not allow_zero):
        what = "an integer" if integer else "a number"
        bound = ">= 0" if allow_zero else "> 0"
        raise BadRequestError(f"{name} must be {what} {bound}, got {value!r}", param=name)


def validate_conversations(messages: Any) -> list[list[dict[str, Any]]]:
    """``messages`` for ``batch_completion``: a list of conversations, each a list of message dicts."""
    if not isinstance(messages, list):
        raise BadRequestError(
            "messages must be a list of conversations (a list of lists of messages)", param="messages"
        )
    for i, conversation in enumerate(messages):
        if not isinstance(conversation, list):
            raise BadRequestError(
                f"messages[{i}] must be a list of messages; batch_completion takes a list of conversations "
                "(wrap a single conversation as [messages])",
                param="messages",
            )
        try:
            validate_messages(conversation)
        except BadRequestError as exc:
            raise BadRequestError(f"messages[{i}]: {exc.message}", param="messages") from None
    return messages


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """One contender of a multi-model call: its label, model string and own settings (a fresh dict)."""

    label: str
    model: str
    options: dict[str, Any]


def model_entries(models: Any, deployments: Any, params: Mapping[str, Any]) -> list[ModelEntry]:
    """Normalise ``models`` (strings or dicts) or LiteLLM's ``deployments`` into entries.

    Each entry's options are ``{**params, **its own keys}`` built fresh: the caller's dicts are never
    mutated and nothing leaks from one entry to the next.
    """
    if models is not None and deployments is not None:
        raise BadRequestError("pass either models or deployments, not both", param="models")
    items = deployments if models is None else models
    if isinstance(items, str):
        items = [part.strip() for part in items.split(",")]
    if not isinstance(items, Sequence) or not items:
        raise BadRequestError("models must be a non-empty list of model names or dicts", param="models")
    pairs = [_split_entry(i, item) for i, item in enumerate(items)]
    keys = [(model, own.get("api_base") or own.get("base_url")) for model, own in pairs]
    names = [model for model, _ in pairs]
    entries = []
    for i, ((model, own), key) in enumerate(zip(pairs, keys, strict=True)):
        if names.count(model) == 1:
            label = model
        elif keys.count(key) == 1:
            label = f"{model}@{key[1]}"
        else:  # the very same model given more than once: independent attempts, labelled by position
            label = f"{model}#{i}"
        entries.append(ModelEntry(label, model, {**params, **own}))
    return entries


def _split_entry(i: int, item: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(item, str):
        if not item:
            raise BadRequestError(f"models[{i}] is empty", param="models")
        return item, {}
    if not isinstance(item, Mapping):
        raise BadRequestError(f"models[{i}] must be a model name or a dict with 'model'", param="models")
    source = item.get("litellm_params", item)  # router-style {"model_name": ..., "litellm_params": {...}}
    if not isinstance(source, Mapping):
        raise BadRequestError(f"models[{i}].litellm_params must be a dict", param="models")
    model = source.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequestError(f"models[{i}] needs a 'model' string", param="models")
    own = {k: v for k, v in source.items() if k != "model"}
    check_params(own, where=f"models[{i}]")
    return model, own
