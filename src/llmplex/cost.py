"""Response cost in USD from the maintained ``genai-prices`` table.

Cost is computed lazily (``genai_prices`` takes ~0.25 s to import and ~0.1 ms per lookup), so a
response carries a ``HiddenParams`` dict whose ``response_cost`` is filled on first access.
"""

from __future__ import annotations

import threading
from typing import Any

from llmplex.types import ModelResponse

__all__ = ["HiddenParams", "completion_cost", "known_models", "load_price_table", "model_facts"]

# our provider keys -> genai-prices provider ids, where they differ
_PROVIDER_IDS: dict[str, str] = {
    "gemini": "google",
    "together_ai": "together",
    "fireworks_ai": "fireworks",
    "xai": "x-ai",
}
_unknown: set[tuple[str | None, str]] = set()
# per (provider, model): USD per input and per output token, checked linear up to _LINEAR_UP_TO input tokens.
# A table lookup costs ~0.4 ms; the proxy prices every answer (x-litellm-response-cost), so rates are
# kept. Past the checked range (tiered prices start at 128k+ tokens) every lookup is exact.
_rates: dict[tuple[str | None, str], tuple[float, float] | None] = {}
_LINEAR_UP_TO = 100_000
BATCH_DISCOUNT = 0.5  # OpenAI, Azure, Anthropic and Gemini batch APIs: half the standard price
_lock = threading.Lock()


def completion_cost(
    completion_response: ModelResponse | None = None,
    *,
    model: str | None = None,
    custom_llm_provider: str | None = None,
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
    batch: bool | None = None,
) -> float:
    """USD cost of a response (or of explicit token counts). 0.0 when the model has no known price.

    ``batch=True`` (set for results of a provider batch API) prices at the provider's batch rate.
    """
    if completion_response is not None:
        usage = completion_response.usage
        prompt_tokens = usage.prompt_tokens if usage else 0
        completion_tokens = usage.completion_tokens if usage else 0
        hidden = completion_response.hidden_params
        model = model or hidden.get("model") or completion_response.model
        custom_llm_provider = custom_llm_provider or hidden.get("custom_llm_provider")
        batch = bool(hidden.get("batch_api")) if batch is None else batch
    if not model:
        return 0.0
    return price(model, custom_llm_provider, prompt_tokens or 0, completion_tokens or 0, batch=bool(batch))


def load_price_table() -> None:
    """Import the price table now (~0.25 s), e.g. in a worker thread at server start, so that the first
    cost lookup does not stall an event loop."""
    import genai_prices  # noqa: F401


def price(
    model: str, provider: str | None, prompt_tokens: int, completion_tokens: int, *, batch: bool = False
) -> float:
    standard = _standard_price(model, provider, prompt_tokens, completion_tokens)
    if not batch or not standard:
        return standard
    # the table carries batch rates for some models (price_context processing=batch); every provider
    # with a batch API charges half the standard rate, which is the fallback
    from genai_prices import Usage, calc_price

    try:
        result = calc_price(
            Usage(input_tokens=prompt_tokens, output_tokens=completion_tokens),
            model_ref=model,
            provider_id=_PROVIDER_IDS.get(provider or "", provider),
            price_context={"processing": "batch"},
        )
        listed = float(result.total_price)
    except LookupError:
        listed = standard
    return listed if listed < standard else standard * BATCH_DISCOUNT


def _standard_price(model: str, provider: str | None, prompt_tokens: int, completion_tokens: int) -> float:
    provider_id = _PROVIDER_IDS.get(provider or "", provider)
    key = (provider_id, model)
    if key in _unknown:
        return 0.0
    if key in _rates:
        rates = _rates[key]
    else:
        rates = _linear_rates(model, provider_id)
        with _lock:
            _rates[key] = rates
    if rates is not None and prompt_tokens <= _LINEAR_UP_TO and completion_tokens <= _LINEAR_UP_TO:
        return round(prompt_tokens * rates[0] + completion_tokens * rates[1], 12)
    return _exact(key, model, provider_id, prompt_tokens, completion_tokens)


def _linear_rates(model: str, provider_id: str | None) -> tuple[float, float] | None:
    """Per-token rates when the model's price is linear over the checked range, else None (always exact)."""
    key = (provider_id, model)
    per_in = _exact(key, model, provider_id, 1000, 0) / 1000
    per_out = _exact(key, model, provider_id, 0, 1000) / 1000
    big = _exact(key, model, provider_id, _LINEAR_UP_TO, _LINEAR_UP_TO)
    linear = abs(big - _LINEAR_UP_TO * (per_in + per_out)) <= 1e-9 * max(big, 1.0)
    return (per_in, per_out) if linear else None


def _exact(
    key: tuple[str | None, str], model: str, provider_id: str | None, prompt_tokens: int, completion_tokens: int
) -> float:
    if key in _unknown:
        return 0.0
    from genai_prices import Usage, calc_price

    try:
        result = calc_price(
            Usage(input_tokens=prompt_tokens, output_tokens=completion_tokens), model_ref=model, provider_id=provider_id
        )
    except LookupError:
        try:  # the provider may be a reseller unknown to the table; let the table guess
            result = calc_price(Usage(input_tokens=prompt_tokens, output_tokens=completion_tokens), model_ref=model)
        except LookupError:
            with _lock:
                _unknown.add(key)
            return 0.0
    return float(result.total_price)


class HiddenParams(dict[str, Any]):
    """The response's hidden params; ``response_cost`` is computed on first access.

    ``bind`` keeps what the cost needs (token counts, model), not the response: a response -> hidden
    params -> response cycle would leave every response for the cyclic garbage collector to free.
    """

    __slots__ = ("_model", "_tokens")

    def bind(self, model: str | None, prompt_tokens: int, completion_tokens: int) -> None:
        self._model = model
        self._tokens = (prompt_tokens, completion_tokens)

    def bind_response(self, response: ModelResponse) -> None:
        usage = response.usage
        self.bind(response.model, usage.prompt_tokens if usage else 0, usage.completion_tokens if usage else 0)

    def __missing__(self, key: str) -> Any:
        if key == "response_cost" and hasattr(self, "_tokens"):
            # dict.get, not self.get: a missing key must not go through __missing__ and a raised KeyError
            value = completion_cost(
                model=dict.get(self, "model") or self._model,
                custom_llm_provider=dict.get(self, "custom_llm_provider"),
                prompt_tokens=self._tokens[0],
                completion_tokens=self._tokens[1],
                batch=bool(dict.get(self, "batch_api")),
            )
            self[key] = value
            return value
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        if key in self:
            return dict.__getitem__(self, key)
        if key == "response_cost" and hasattr(self, "_tokens"):
            return self.__missing__(key)  # the one computed key
        return default


def model_facts(model: str, provider: str | None) -> dict[str, float | int | None]:
    """What the price table knows of a model, in LiteLLM's ``model_info`` field names (None: unknown)."""
    facts: dict[str, float | int | None] = {
        "input_cost_per_token": price(model, provider, 1_000_000, 0) / 1_000_000,
        "output_cost_per_token": price(model, provider, 0, 1_000_000) / 1_000_000,
        "max_input_tokens": None,
    }
    from genai_prices import data_snapshot

    provider_id = _PROVIDER_IDS.get(provider or "", provider)
    try:
        _, info = data_snapshot.get_snapshot().find_provider_model(model, None, provider_id, None)
    except LookupError:
        return facts
    facts["max_input_tokens"] = info.context_window
    return facts


def known_models(provider: str) -> list[str]:
    """The provider's model ids in the price table (what a wildcard deployment lists in ``/v1/models``)."""
    from genai_prices import data_snapshot

    provider_id = _PROVIDER_IDS.get(provider, provider)
    for entry in data_snapshot.get_snapshot().providers:
        if entry.id == provider_id:
            return [m.id for m in entry.models if not m.deprecated]
    return []
