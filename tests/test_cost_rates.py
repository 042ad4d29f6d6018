"""``cost.price``: the cached linear coefficients give the table's own answer below the long-context range."""

from __future__ import annotations

import pytest

from llmplex.cost import _exact, load_price_table, price


@pytest.mark.parametrize(
    ("model", "provider", "provider_id"),
    [
        ("gpt-4o-mini", "openai", "openai"),
        ("claude-3-5-sonnet-20241022", "anthropic", "anthropic"),
        ("gemini-1.5-pro", "gemini", "google"),
    ],
)
def test_cached_rates_match_the_table(model: str, provider: str, provider_id: str) -> None:
    load_price_table()
    for prompt, completion in [(0, 0), (1, 1), (1234, 567), (90_000, 9_000)]:
        assert price(model, provider, prompt, completion) == pytest.approx(
            _exact(model, provider_id, prompt, completion)
        )
    # above the linear range the table is asked every time (long-context prices differ)
    assert price(model, provider, 150_000, 10) == pytest.approx(_exact(model, provider_id, 150_000, 10))


def test_unknown_model_costs_nothing() -> None:
    assert price("not-a-priced-model-xyz", "openai", 10, 10) == 0.0
