"""Wildcard patterns (LiteLLM's routing order) and which deployments llmplex serves: plain values, no I/O."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from llmplex.exceptions import BadRequestError
from llmplex.router.support import check_support, infer_mode, unsupported_message
from llmplex.router.wildcards import WildcardTable, pattern_problem


@dataclass(frozen=True)
class Entry:
    model_name: str
    model: str


TABLE = WildcardTable(
    [
        Entry("exact", "openai/exact"),
        Entry("*", "openai/*"),
        Entry("anthropic/*", "anthropic/*"),
        Entry("groq/*", "groq/*"),
        Entry("groq/*", "groq/*"),
        Entry("my-*-model", "openai/*-v2"),
        Entry("fixed-*", "openai/one-model"),
    ]
)


@pytest.mark.parametrize(
    ("requested", "pattern", "model"),
    [
        ("gpt-4o", "*", "openai/gpt-4o"),
        ("anthropic/claude-sonnet-4-5-20250929", "anthropic/*", "anthropic/claude-sonnet-4-5-20250929"),
        ("groq/llama3-8b-8192", "groq/*", "groq/llama3-8b-8192"),
        ("my-big-model", "my-*-model", "openai/big-v2"),
        ("fixed-anything", "fixed-*", "openai/one-model"),
        ("mistral/x", "*", "openai/mistral/x"),
        ("openai/gpt-4o", "*", "openai/gpt-4o"),  # what /v1/models lists for "*" routes back to it
    ],
)
def test_the_most_specific_pattern_fills_the_model(requested: str, pattern: str, model: str) -> None:
    found = TABLE.match(requested)
    assert found is not None
    matched, calls = found
    assert matched.model_name == pattern
    assert {m for _, m in calls} == {model}


def test_every_deployment_of_a_pattern_is_returned_and_exact_names_are_not_patterns() -> None:
    found = TABLE.match("groq/x")
    assert found is not None and len(found[1]) == 2
    assert "exact" not in TABLE.names()
    assert not WildcardTable([Entry("a", "openai/a")])


def test_wrong_patterns_are_named() -> None:
    assert pattern_problem("*", "openai/*") is None
    assert pattern_problem("fixed-*", "openai/x") is None
    assert "has none" in (pattern_problem("plain", "openai/*") or "")
    assert "matches only 1" in (pattern_problem("a/*", "openai/*/*") or "")


@pytest.mark.parametrize(
    ("model", "mode", "problem"),
    [
        ("gpt-3.5-turbo", None, None),
        ("azure/chatgpt-v-2", None, None),
        ("openai/*", None, None),
        ("sagemaker/berri-benchmarking-Llama-2-70b-chat-hf-4", None, "provider 'sagemaker'"),
        ("dall-e-3", None, "image generation"),
        ("azure/", None, "nothing after the provider prefix"),
        ("azure/azure-embedding-model", "embedding", None),
        ("mistral/mistral-embed", None, None),
        ("text-completion-openai/gpt-3.5-turbo-instruct", None, None),
        ("unknown-bare-name", None, "no provider prefix"),
        ("openai/my-model", "rerank", "rerank"),
    ],
)
def test_support(model: str, mode: str | None, problem: str | None) -> None:
    support = check_support(model, declared_mode=mode)
    if problem is None:
        assert support.served and support.mode == infer_mode(model, mode)
    else:
        assert support.problem is not None and problem in support.problem


def test_mode_and_message() -> None:
    assert infer_mode("text-completion-openai/gpt-3.5-turbo-instruct") == "completion"
    assert infer_mode("openai/x", "embedding") == "embedding"
    assert (
        unsupported_message("provider 'sagemaker'", "sm")
        == "llmplex does not support provider 'sagemaker' (deployment sm)"
    )


def test_made_groups_are_bounded_share_their_template_state_and_are_forgotten_when_unused() -> None:
    import gc

    from llmplex.config_checks import Checker
    from llmplex.config_source import SourceDoc
    from llmplex.router.deployments import parse_model_list
    from llmplex.router.settings import RouterSettings
    from llmplex.router.state import make_state
    from llmplex.router.wildcard_groups import WildcardGroups

    raw = [{"model_name": "*", "litellm_params": {"model": "openai/*", "api_key": "k"}}]
    (template,) = parse_model_list(Checker(SourceDoc(data=raw, source="test")), raw)
    state = make_state([template], RouterSettings())
    groups = WildcardGroups([template], limit=2)
    forgotten: list[int] = []
    made = []
    for name in ("a", "b", "c"):
        found = groups.group(name, state, forgotten.append)
        assert found is not None
        made.append(found)
    (first, _), (_, _), (third, dropped) = made
    assert dropped == ["a"] and first[0].model == "openai/a" and first[0].model_id == template.model_id
    state.begin(third[0])
    assert state.in_flight(template) == 1  # one window, one cooldown for every name the pattern serves
    state.finish(third[0])
    ident = id(first[0])
    del made, first, third
    gc.collect()
    assert ident in forgotten  # its prepared call and state alias went with it
    with pytest.raises(BadRequestError, match="image generation"):
        groups.group("dall-e-3", state, forgotten.append)
