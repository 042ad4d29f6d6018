"""Kept per-token rates give the table's exact price (inside the checked range), and exact lookups past it."""

from __future__ import annotations

import pytest

from llmplex import cost


@pytest.mark.parametrize(
    ("model", "provider"),
    [("gpt-4o-mini", "openai"), ("claude-3-5-sonnet-20241022", "anthropic"), ("gemini-2.5-pro", "gemini")],
)
@pytest.mark.parametrize(("prompt", "completion"), [(1, 0), (1234, 567), (99_000, 3), (250_000, 10)])
def test_rates_match_the_table(model: str, provider: str, prompt: int, completion: int) -> None:
    provider_id = cost._PROVIDER_IDS.get(provider, provider)
    exact = cost._exact((provider_id, model), model, provider_id, prompt, completion)
    assert exact > 0
    assert cost.price(model, provider, prompt, completion) == pytest.approx(exact, rel=1e-9)
    assert cost.price(model, provider, prompt, completion) == pytest.approx(exact, rel=1e-9)  # from the kept rates


def test_unknown_models_cost_nothing() -> None:
    assert cost.price("no-such-model-xyz", "openai", 100, 100) == 0.0
    assert cost.price("no-such-model-xyz", "openai", 100, 100) == 0.0
