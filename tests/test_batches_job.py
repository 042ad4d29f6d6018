"""``batch_completion(..., batch_api=True)`` and ``BatchJob`` against the emulator's batch APIs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import llmplex
from llmplex import AsyncClient, BadRequestError, ModelResponse
from llmplex.batches import job as job_module
from llmplex.batches.job import BatchJob, submit_batch_completion


def _prompts(*texts: str) -> list[list[dict[str, Any]]]:
    return [[{"role": "user", "content": text}] for text in texts]


def _opts(emulator: Any, provider: str) -> dict[str, Any]:
    base = emulator.openai_base if provider == "openai" else emulator.url
    return {"api_base": base, "api_key": "k"}


@pytest.mark.parametrize("model", ["openai/gpt-4o-polls-2", "anthropic/claude-3-5-haiku-polls-2", "gemini/gemini-x"])
async def test_results_align_with_messages_and_hold_exceptions(client: AsyncClient, emulator: Any, model: str) -> None:
    prompts = _prompts("alpha", "emulator-status-429 beta", "gamma")
    results = await client.batch_completion(
        model, prompts, batch_api=True, poll_interval=0.01, max_tokens=30, **_opts(emulator, model.split("/")[0])
    )
    assert isinstance(results[0], ModelResponse) and isinstance(results[2], ModelResponse)
    assert results[0].choices[0].message.content == "Echo: alpha"
    assert results[2].choices[0].message.content == "Echo: gamma"
    assert isinstance(results[1], llmplex.RateLimitError)
    assert results[0].hidden_params["batch_api"] is True


async def test_return_exceptions_false_raises(client: AsyncClient, emulator: Any) -> None:
    with pytest.raises(llmplex.BadRequestError):
        await client.batch_completion(
            "openai/m-polls-0",
            _prompts("ok", "emulator-status-400 no"),
            batch_api=True,
            return_exceptions=False,
            **_opts(emulator, "openai"),
        )


async def test_a_provider_without_batch_api_is_a_clear_error(client: AsyncClient) -> None:
    with pytest.raises(BadRequestError, match=r"cohere has no batch API.*anthropic, azure, gemini"):
        await client.batch_completion("cohere/command-r", _prompts("x"), batch_api=True, api_key="k")
    with pytest.raises(BadRequestError, match="do not apply with batch_api=True"):
        await client.batch_completion("openai/gpt-4o", _prompts("x"), batch_api=True, rpm=10, api_key="k")


async def test_submit_status_wait_results_and_reload_by_id(client: AsyncClient, emulator: Any) -> None:
    opts = _opts(emulator, "anthropic")
    job = await submit_batch_completion(client, "anthropic/claude-polls-3", _prompts("a", "b"), **opts)
    assert job.id.startswith("llmplex-batch:anthropic:2:") and len(job.batch_ids) == 1
    assert (await job.status()).status == "in_progress"
    again = BatchJob.load(client, job.id, **opts)
    assert again.batch_ids == job.batch_ids and again.total == 2
    state = await again.wait(poll_interval=0.01)
    assert (state.status, state.completed, state.failed) == ("completed", 2, 0)
    texts = [r.choices[0].message.content for r in await again.results()]  # type: ignore[union-attr]
    assert texts == ["Echo: a", "Echo: b"]


async def test_cancel_leaves_exceptions_in_place(client: AsyncClient, emulator: Any) -> None:
    job = await submit_batch_completion(client, "openai/m-polls-3", _prompts("a"), **_opts(emulator, "openai"))
    await job.cancel()
    state = await job.wait(poll_interval=0.01)
    assert state.status == "cancelled"
    [result] = await job.results()
    assert isinstance(result, llmplex.APIError) and "cancelled" in str(result)


async def test_over_the_limits_the_job_spans_several_batches(
    client: AsyncClient, emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmplex.batches.openai_wire import OpenAIBatchWire

    monkeypatch.setattr(OpenAIBatchWire, "max_requests", 2)  # the provider's limit, not our code: a data knob
    prompts = _prompts(*[f"p{i}" for i in range(5)])
    job = await submit_batch_completion(client, "openai/m-polls-0", prompts, **_opts(emulator, "openai"))
    assert len(job.batch_ids) == 3
    results = await job.results()
    assert [r.choices[0].message.content for r in results] == [f"Echo: p{i}" for i in range(5)]  # type: ignore[union-attr]


def test_chunks_respect_requests_and_bytes() -> None:
    lines = [{"custom_id": str(i), "body": {"x": "y" * 10}} for i in range(7)]
    size = len(b'{"custom_id":"0","body":{"x":"yyyyyyyyyy"}}') + 1
    assert job_module.split_lines(lines, 3, 10**9) == [(0, 3), (3, 6), (6, 7)]
    assert job_module.split_lines(lines, 100, size * 2) == [(0, 2), (2, 4), (4, 6), (6, 7)]


async def test_checkpoint_resumes_the_same_provider_job(client: AsyncClient, emulator: Any, tmp_path: Path) -> None:
    path = tmp_path / "job.json"
    opts = _opts(emulator, "openai")
    prompts = _prompts("one", "two")
    first = await submit_batch_completion(client, "openai/m-polls-2", prompts, checkpoint=path, **opts)
    # a re-run (after a crash) polls the recorded batch; nothing new is submitted
    second = await submit_batch_completion(client, "openai/m-polls-2", prompts, checkpoint=path, **opts)
    assert second.batch_ids == first.batch_ids
    results = await client.batch_completion(
        "openai/m-polls-2", prompts, batch_api=True, checkpoint=str(path), poll_interval=0.01, **opts
    )
    assert [r.choices[0].message.content for r in results] == ["Echo: one", "Echo: two"]
    assert BatchJob.load(client, path, **opts).batch_ids == first.batch_ids
    with pytest.raises(BadRequestError, match="different inputs"):
        await submit_batch_completion(client, "openai/m-polls-2", _prompts("other"), checkpoint=path, **opts)


def test_batch_cost_is_half_price() -> None:
    response = ModelResponse.model_validate(
        {
            "id": "x",
            "object": "chat.completion",
            "created": 0,
            "model": "gpt-4o",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1000, "completion_tokens": 1000, "total_tokens": 2000},
        }
    )
    full = llmplex.completion_cost(response, custom_llm_provider="openai")
    assert full > 0
    assert llmplex.completion_cost(response, custom_llm_provider="openai", batch=True) == pytest.approx(full / 2)


def test_sync_submit_and_results(emulator: Any) -> None:
    job = llmplex.submit_batch_completion("openai/m-polls-1", _prompts("s"), **_opts(emulator, "openai"))
    job.wait(poll_interval=0.01)
    [result] = job.results()
    assert result.choices[0].message.content == "Echo: s"
    assert llmplex.SyncBatchJob.load(job.id, **_opts(emulator, "openai")).status().status == "completed"
