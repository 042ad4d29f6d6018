"""Batch shapes against the real emulator: alignment, bounds, pacing, checkpoints, races, cancellation."""

from __future__ import annotations

import asyncio
import copy
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from llmplex import AsyncClient
from llmplex._request import resolve_call
from llmplex._streaming import CompletionStream
from llmplex.config import ClientConfig
from llmplex.exceptions import (
    AllModelsFailedError,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    RateLimitError,
    ServiceUnavailableError,
    Timeout,
    UnknownModelError,
)
from llmplex.types import ModelResponse


def conv(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def prompts(n: int, prefix: str = "p") -> list[list[dict[str, Any]]]:
    return [conv(f"{prefix}{i}") for i in range(n)]


@pytest.fixture
async def client(emulator: Any) -> AsyncIterator[AsyncClient]:
    await emulator.areset()
    async with AsyncClient(num_retries=0) as c:
        yield c


@pytest.fixture
def up(emulator: Any) -> dict[str, Any]:
    return {"api_base": emulator.openai_base, "api_key": "test"}


async def wait_stats(emulator: Any, key: str, value: int, timeout: float = 2.0) -> float:
    """Poll the emulator until ``stats[key] >= value``; return how long it took."""
    t0 = time.perf_counter()
    while True:
        stats = await emulator.astats()
        if stats[key] >= value:
            return time.perf_counter() - t0
        if time.perf_counter() - t0 > timeout:
            raise AssertionError(f"{key} stayed at {stats[key]} < {value}: {stats}")
        await asyncio.sleep(0.01)


# --- batch_completion -------------------------------------------------------------------------------


async def test_results_aligned_with_failures_in_their_slots(client: AsyncClient, up: dict[str, Any]) -> None:
    # the first 3 requests to this model name fail; sequential, so those are items 0..2
    results = await client.batch_completion("openai/m-status-500-times-3", prompts(8), max_concurrency=1, **up)
    assert len(results) == 8
    for i, result in enumerate(results):
        if i < 3:
            assert isinstance(result, InternalServerError)
        else:
            assert isinstance(result, ModelResponse)
            assert result.choices[0].message.content == f"Echo: p{i}"


async def test_results_aligned_under_concurrency(client: AsyncClient, up: dict[str, Any]) -> None:
    results = await client.batch_completion("openai/m-delay-5", prompts(60), max_concurrency=16, **up)
    assert [r.choices[0].message.content for r in results] == [f"Echo: p{i}" for i in range(60)]


async def test_return_exceptions_false_raises_the_first_failure(client: AsyncClient, up: dict[str, Any]) -> None:
    with pytest.raises(RateLimitError):
        await client.batch_completion("openai/m-status-429", prompts(5), return_exceptions=False, **up)


async def test_max_concurrency_bounds_requests_in_flight(
    client: AsyncClient, emulator: Any, up: dict[str, Any]
) -> None:
    peak = 0

    async def watch() -> None:
        nonlocal peak
        while True:
            peak = max(peak, (await emulator.astats())["in_flight"])
            await asyncio.sleep(0.01)

    watcher = asyncio.create_task(watch())
    t0 = time.perf_counter()
    try:
        await client.batch_completion("openai/m-delay-100", prompts(20), max_workers=5, **up)
    finally:
        watcher.cancel()
    elapsed = time.perf_counter() - t0
    assert 3 <= peak <= 5
    assert elapsed >= 0.38  # 4 waves of 100 ms


async def test_rpm_paces_starts_evenly(client: AsyncClient, up: dict[str, Any]) -> None:
    t0 = time.perf_counter()
    results = await client.batch_completion("openai/m", prompts(6), rpm=600, max_concurrency=50, **up)
    elapsed = time.perf_counter() - t0
    assert all(isinstance(r, ModelResponse) for r in results)
    assert 0.48 <= elapsed < 2.0  # starts at 0, 0.1, ..., 0.5 s


async def test_tpm_paces_by_estimated_tokens(client: AsyncClient, up: dict[str, Any]) -> None:
    # each item: "pN" -> 0 tokens of text + 4 framing + max_tokens 16 = 20 tokens; 12,000 tpm -> 0.1 s apart
    t0 = time.perf_counter()
    await client.batch_completion("openai/m", prompts(5), tpm=12_000, max_tokens=16, **up)
    assert 0.38 <= time.perf_counter() - t0 < 2.0


async def test_rate_limited_items_retry_after_the_servers_delay(client: AsyncClient, up: dict[str, Any]) -> None:
    t0 = time.perf_counter()
    results = await client.batch_completion(
        "openai/m-status-429-retryafterms-150-times-2", prompts(3), max_concurrency=1, num_retries=2, **up
    )
    assert [r.choices[0].message.content for r in results] == ["Echo: p0", "Echo: p1", "Echo: p2"]
    assert time.perf_counter() - t0 >= 0.3  # two waits of 150 ms, as the server asked


async def test_iter_yields_as_items_finish(client: AsyncClient, up: dict[str, Any]) -> None:
    t0 = time.perf_counter()
    seen: list[tuple[int, float]] = []
    async for index, result in client.iter_batch_completion("openai/m-delay-100", prompts(6), max_concurrency=2, **up):
        assert result.choices[0].message.content == f"Echo: p{index}"
        seen.append((index, time.perf_counter() - t0))
    assert sorted(i for i, _ in seen) == list(range(6))
    assert seen[0][1] < 0.25  # the first arrives after one wave, not at the end
    assert seen[-1][1] >= 0.28


async def test_iter_closed_early_cancels_in_flight(client: AsyncClient, emulator: Any, up: dict[str, Any]) -> None:
    it = client.iter_batch_completion("openai/m-delay-1000", prompts(10), max_concurrency=4, **up)
    agen: Any = it
    task = asyncio.create_task(agen.__anext__())
    await wait_stats(emulator, "in_flight", 4)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await agen.aclose()
    await wait_stats(emulator, "disconnected", 4, timeout=1.0)


async def test_progress_bar_reports_done_and_failed(
    client: AsyncClient, up: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    await client.batch_completion("openai/m-status-500-times-2", prompts(5), max_concurrency=1, progress=True, **up)
    err = capsys.readouterr().err
    assert "5/5" in err
    assert "failed=2" in err


async def test_caller_cancel_closes_every_request(client: AsyncClient, emulator: Any, up: dict[str, Any]) -> None:
    task = asyncio.create_task(client.batch_completion("openai/m-delay-3000", prompts(20), max_concurrency=5, **up))
    await wait_stats(emulator, "in_flight", 5)
    t0 = time.perf_counter()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.perf_counter() - t0 < 0.2
    await wait_stats(emulator, "disconnected", 5, timeout=1.0)
    assert (await emulator.astats())["received"] == 5


# --- input validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("messages", "options"),
    [
        (conv("flat list, not a list of conversations"), {}),
        ("text", {}),
        ([conv("ok"), [{"role": "wizard", "content": "x"}]], {}),
        (prompts(2), {"max_concurrency": 0}),
        (prompts(2), {"max_concurrency": 2, "max_workers": 3}),
        (prompts(2), {"rpm": -1}),
        (prompts(2), {"stream": True}),
        (prompts(2), {"top_k_typo": 3}),
        (prompts(2), {"fastest_response": True}),
    ],
)
async def test_bad_input_fails_before_any_request(
    client: AsyncClient, emulator: Any, up: dict[str, Any], messages: Any, options: dict[str, Any]
) -> None:
    with pytest.raises(BadRequestError):
        await client.batch_completion("openai/m", messages, **options, **up)
    assert (await emulator.astats())["received"] == 0


async def test_unknown_model_fails_before_any_request(client: AsyncClient, emulator: Any) -> None:
    with pytest.raises(UnknownModelError):
        await client.batch_completion("no-such-model-xyz", prompts(3))
    assert (await emulator.astats())["received"] == 0


async def test_empty_batch_returns_empty_list(client: AsyncClient, up: dict[str, Any]) -> None:
    assert await client.batch_completion("openai/m", [], **up) == []


async def test_extra_body_is_the_way_to_send_provider_fields(client: AsyncClient, up: dict[str, Any]) -> None:
    results = await client.batch_completion("openai/m", prompts(2), extra_body={"top_k": 3}, **up)
    assert all(isinstance(r, ModelResponse) for r in results)
    call = resolve_call("openai/m", conv("x"), {"extra_body": {"top_k": 3}, **up}, ClientConfig())
    assert call.request.extra == {"top_k": 3}
    assert "extra_body" not in call.request.params


async def test_concurrency_above_the_pool_is_capped_not_queued(emulator: Any, up: dict[str, Any]) -> None:
    await emulator.areset()
    async with AsyncClient(num_retries=0, max_connections=4) as small:
        peak = 0

        async def watch() -> None:
            nonlocal peak
            while True:
                peak = max(peak, (await emulator.astats())["in_flight"])
                await asyncio.sleep(0.01)

        watcher = asyncio.create_task(watch())
        try:
            results = await small.batch_completion("openai/m-delay-50", prompts(12), max_concurrency=1000, **up)
        finally:
            watcher.cancel()
    assert all(isinstance(r, ModelResponse) for r in results)
    assert peak <= 4


# --- checkpoint -------------------------------------------------------------------------------------


def lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


async def test_checkpoint_rerun_skips_finished_items(
    client: AsyncClient, emulator: Any, up: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "out.jsonl"
    first = await client.batch_completion("openai/m", prompts(10), checkpoint=str(path), **up)
    assert sorted(e["i"] for e in lines(path)) == list(range(10))
    await emulator.areset()
    second = await client.batch_completion("openai/m", prompts(10), checkpoint=path, **up)
    assert (await emulator.astats())["received"] == 0
    assert [r.choices[0].message.content for r in second] == [r.choices[0].message.content for r in first]
    assert all(isinstance(r, ModelResponse) and r.hidden_params.get("from_checkpoint") for r in second)


async def test_checkpoint_torn_last_line_is_cut_and_resume_finishes(
    client: AsyncClient, emulator: Any, up: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "out.jsonl"
    await client.batch_completion("openai/m", prompts(10), checkpoint=path, max_concurrency=1, **up)
    raw = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(raw[:4]) + raw[4][: len(raw[4]) // 2])  # killed while writing line 5
    await emulator.areset()
    results = await client.batch_completion("openai/m", prompts(10), checkpoint=path, **up)
    assert (await emulator.astats())["received"] == 6
    assert [r.choices[0].message.content for r in results] == [f"Echo: p{i}" for i in range(10)]
    assert sorted(e["i"] for e in lines(path)) == list(range(10))  # every line whole again


async def test_checkpoint_for_other_inputs_is_refused(
    client: AsyncClient, emulator: Any, up: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "out.jsonl"
    await client.batch_completion("openai/m", prompts(3), checkpoint=path, **up)
    await emulator.areset()
    with pytest.raises(BadRequestError, match="different inputs"):
        await client.batch_completion("openai/m", prompts(3, prefix="other"), checkpoint=path, **up)
    with pytest.raises(BadRequestError, match="different inputs"):
        await client.batch_completion("openai/other-model", prompts(3), checkpoint=path, **up)
    assert (await emulator.astats())["received"] == 0


async def test_checkpoint_failed_items_are_redone(
    client: AsyncClient, emulator: Any, up: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "out.jsonl"
    model = "openai/m-status-503-times-2"
    first = await client.batch_completion(model, prompts(5), checkpoint=path, max_concurrency=1, **up)
    assert [type(r) for r in first[:2]] == [ServiceUnavailableError, ServiceUnavailableError]
    assert lines(path)[0]["error"]["status_code"] == 503
    second = await client.batch_completion(model, prompts(5), checkpoint=path, **up)
    assert (await emulator.astats())["received"] == 7
    assert [r.choices[0].message.content for r in second] == [f"Echo: p{i}" for i in range(5)]


_CRASH_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from llmplex import AsyncClient

    async def main():
        async with AsyncClient(num_retries=0) as c:
            msgs = [[{"role": "user", "content": f"p{i}"}] for i in range(40)]
            await c.batch_completion("openai/m-delay-100", msgs, max_concurrency=4, checkpoint=sys.argv[2],
                                     api_base=sys.argv[1], api_key="test")

    asyncio.run(main())
    """
)


async def test_checkpoint_survives_a_killed_process(
    client: AsyncClient, emulator: Any, up: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "out.jsonl"
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", _CRASH_SCRIPT, emulator.openai_base, str(path))
    try:
        deadline = time.monotonic() + 15
        while not (path.exists() and path.read_bytes().count(b"\n") >= 8):
            assert proc.returncode is None and time.monotonic() < deadline, "child ended or stalled"
            await asyncio.sleep(0.02)
    finally:
        if proc.returncode is None:
            proc.kill()  # SIGKILL: no cleanup, no final fsync, requests in flight abandoned
        async with asyncio.timeout(10):
            await proc.wait()
    kept = path.read_bytes().count(b"\n")
    assert kept < 40
    await emulator.areset()
    results = await client.batch_completion(
        "openai/m-delay-100", prompts(40), max_concurrency=20, checkpoint=path, **up
    )
    assert [r.choices[0].message.content for r in results] == [f"Echo: p{i}" for i in range(40)]
    assert (await emulator.astats())["received"] <= 40 - kept + 1  # a torn line only costs its own item
    assert sorted({e["i"] for e in lines(path)}) == list(range(40))


# --- batch_completion_models: the race -------------------------------------------------------------


async def test_race_returns_the_fast_model_and_disconnects_the_slow(
    client: AsyncClient, emulator: Any, up: dict[str, Any]
) -> None:
    t0 = time.perf_counter()
    response = await client.batch_completion_models(
        models=["openai/slow-delay-1500", "openai/fast-delay-50"], messages=conv("hi"), **up
    )
    elapsed = time.perf_counter() - t0
    assert elapsed < 0.5
    assert response.model == "fast-delay-50"
    race = response.hidden_params["race"]
    assert race["winner"] == "openai/fast-delay-50" and race["winner_index"] == 1
    assert race["cancelled"] == ["openai/slow-delay-1500"]
    assert [a["status"] for a in race["attempts"]] == ["cancelled", "won"]
    assert response.hidden_params["model_label"] == "openai/fast-delay-50"
    assert await wait_stats(emulator, "disconnected", 1, timeout=1.0) < 0.1


async def test_race_fast_error_never_wins(client: AsyncClient, up: dict[str, Any]) -> None:
    response = await client.batch_completion_models(
        models=["openai/bad-status-500", "openai/good-delay-100"], messages=conv("hi"), **up
    )
    assert response.model == "good-delay-100"
    first = response.hidden_params["race"]["attempts"][0]
    assert first["status"] == "failed" and "500" in first["error"]


async def test_race_all_failed_is_typed(client: AsyncClient, up: dict[str, Any]) -> None:
    models = ["openai/a-status-429", "openai/b-status-503"]
    with pytest.raises(AllModelsFailedError) as info:
        await client.batch_completion_models(models=models, messages=conv("hi"), **up)
    assert [type(e) for e in info.value.exceptions] == [RateLimitError, ServiceUnavailableError]
    rate_limited: list[BaseException] = []
    try:
        await client.batch_completion_models(models=models, messages=conv("hi"), **up)
    except* RateLimitError as group:
        rate_limited.extend(group.exceptions)
    except* ServiceUnavailableError:
        pass
    assert len(rate_limited) == 1 and rate_limited[0].model == "a-status-429"  # type: ignore[attr-defined]


async def test_hedge_backup_not_sent_when_primary_answers_in_time(
    client: AsyncClient, emulator: Any, up: dict[str, Any]
) -> None:
    response = await client.batch_completion_models(
        models=["openai/primary-delay-50", "openai/backup"], messages=conv("hi"), hedge_delay=0.5, **up
    )
    assert response.model == "primary-delay-50"
    await asyncio.sleep(0.1)
    assert (await emulator.astats())["received"] == 1
    assert response.hidden_params["race"]["attempts"][1]["status"] == "not_started"


async def test_hedge_backup_sent_after_the_delay(client: AsyncClient, emulator: Any, up: dict[str, Any]) -> None:
    t0 = time.perf_counter()
    response = await client.batch_completion_models(
        models=["openai/primary-delay-1500", "openai/backup-delay-20"], messages=conv("hi"), hedge_delay=0.15, **up
    )
    assert 0.15 <= time.perf_counter() - t0 < 0.6
    assert response.model == "backup-delay-20"
    assert (await emulator.astats())["received"] == 2
    await wait_stats(emulator, "disconnected", 1, timeout=1.0)


async def test_hedge_failure_starts_backup_at_once(client: AsyncClient, up: dict[str, Any]) -> None:
    t0 = time.perf_counter()
    response = await client.batch_completion_models(
        models=["openai/primary-status-500", "openai/backup"], messages=conv("hi"), hedge_delay=2.0, **up
    )
    assert time.perf_counter() - t0 < 0.5
    assert response.model == "backup"


async def test_race_timeout_bounds_the_whole_race(client: AsyncClient, emulator: Any, up: dict[str, Any]) -> None:
    t0 = time.perf_counter()
    with pytest.raises(Timeout):
        await client.batch_completion_models(
            models=["openai/a-delay-3000", "openai/b-delay-3000"], messages=conv("hi"), timeout=0.2, **up
        )
    assert time.perf_counter() - t0 < 0.6
    await wait_stats(emulator, "disconnected", 2, timeout=1.0)


async def test_stream_race_on_first_token_returns_winner_with_first_chunk(
    client: AsyncClient, emulator: Any, up: dict[str, Any]
) -> None:
    t0 = time.perf_counter()
    stream = await client.batch_completion_models(
        models=["openai/slow-ttft-1500", "openai/fast-ttft-30"], messages=conv("hello there"), stream=True, **up
    )
    assert isinstance(stream, CompletionStream)
    assert time.perf_counter() - t0 < 0.5
    assert stream.hidden_params["race"]["winner"] == "openai/fast-ttft-30"
    text = ""
    async with stream:
        async for chunk in stream:
            for choice in chunk.choices:
                text += choice.delta.content or ""
    assert text == "Echo: hello there"
    await wait_stats(emulator, "disconnected", 1, timeout=1.0)


async def test_stream_race_skips_attempts_that_fail_before_their_first_token(
    client: AsyncClient, up: dict[str, Any]
) -> None:
    # 'a' opens its stream but times out waiting for the first token; 'b' fails at once; 'c' wins
    stream = await client.batch_completion_models(
        models=[
            {"model": "openai/a-ttft-3000", "stream_first_token_timeout": 0.1, "stream_idle_timeout": 0.1},
            "openai/b-status-500",
            "openai/c-ttft-300",
        ],
        messages=conv("x"),
        stream=True,
        **up,
    )
    assert isinstance(stream, CompletionStream)
    async with stream:
        chunks = [c async for c in stream]
    race = stream.hidden_params["race"]
    assert race["winner"] == "openai/c-ttft-300"
    assert [a["status"] for a in race["attempts"]] == ["failed", "failed", "won"]
    assert "timeout" in race["attempts"][0]["error"]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Echo: x"


async def test_deployments_form_is_not_mutated_and_settings_do_not_leak(
    client: AsyncClient, emulator: Any, up: dict[str, Any]
) -> None:
    deployments = [
        {"model": "openai/slow-delay-1000", "api_base": up["api_base"], "api_key": "test", "temperature": 0.1},
        {"model": "openai/fast-delay-20", "api_base": up["api_base"], "api_key": "test"},
    ]
    before = copy.deepcopy(deployments)
    response = await client.batch_completion_models(deployments=deployments, messages=conv("hi"), model_list=[])
    assert response.model == "fast-delay-20"
    assert deployments == before
    # the second deployment has no key of its own: it must not borrow the first one's
    no_key = [deployments[0], {"model": "openai/fast", "api_base": up["api_base"]}]
    with pytest.raises(AuthenticationError):
        await client.batch_completion_models(deployments=no_key, messages=conv("hi"))
    assert deployments == before


async def test_models_as_dicts_with_their_own_settings(client: AsyncClient, up: dict[str, Any]) -> None:
    response = await client.batch_completion_models(
        models=[{"model": "openai/a", "api_key": "bad-key", "api_base": up["api_base"]}, "openai/b-delay-50"],
        messages=conv("hi"),
        **up,
    )
    assert response.model == "b-delay-50"  # 'a' used its own bad key and failed
    assert "401" in response.hidden_params["race"]["attempts"][0]["error"]


async def test_race_same_model_on_two_bases_gets_distinct_labels(client: AsyncClient, emulator: Any) -> None:
    other = emulator.url + "/v1/"  # same server, another spelling: a second deployment
    response = await client.batch_completion_models(
        models=[
            {"model": "openai/m-delay-1000", "api_base": emulator.openai_base, "api_key": "test"},
            {"model": "openai/m-delay-1000", "api_base": other, "api_key": "test"},
        ],
        messages=conv("hi"),
        timeout=5,
    )
    labels = [a["model"] for a in response.hidden_params["race"]["attempts"]]
    assert labels == [f"openai/m-delay-1000@{emulator.openai_base}", f"openai/m-delay-1000@{other}"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"models": []},
        {"models": ["openai/a", "openai/a"]},
        {"models": ["openai/a", ""]},
        {"models": [{"api_base": "x"}]},
        {"models": ["openai/a"], "deployments": [{"model": "openai/b"}]},
        {"models": ["openai/a"], "fastest_response": True},
        {"models": [{"model": "openai/a", "weird": 1}]},
        {"models": ["openai/a"], "hedge_delay": -1},
        {"models": ["openai/a"], "model": "openai/b"},
    ],
)
async def test_race_bad_input_fails_before_any_request(
    client: AsyncClient, emulator: Any, up: dict[str, Any], kwargs: dict[str, Any]
) -> None:
    with pytest.raises(BadRequestError):
        await client.batch_completion_models(messages=conv("hi"), **kwargs, **up)
    assert (await emulator.astats())["received"] == 0


async def test_race_caller_cancel_closes_every_request(client: AsyncClient, emulator: Any, up: dict[str, Any]) -> None:
    task = asyncio.create_task(
        client.batch_completion_models(models=["openai/a-delay-3000", "openai/b-delay-3000"], messages=conv("x"), **up)
    )
    await wait_stats(emulator, "in_flight", 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_stats(emulator, "disconnected", 2, timeout=1.0)


# --- all responses ----------------------------------------------------------------------------------


async def test_all_responses_in_models_order(client: AsyncClient, up: dict[str, Any]) -> None:
    models = ["openai/a-delay-150", "openai/b-status-500", "openai/c-delay-10"]
    t0 = time.perf_counter()
    ok = await client.batch_completion_models_all_responses(models=models, messages=conv("hi"), **up)
    assert time.perf_counter() - t0 < 0.4  # in parallel
    assert [r.model for r in ok] == ["a-delay-150", "c-delay-10"]
    slots = await client.batch_completion_models_all_responses(
        models=models, messages=conv("hi"), return_exceptions=True, **up
    )
    assert slots[0].model == "a-delay-150" and isinstance(slots[1], InternalServerError) and slots[2].model


async def test_all_responses_all_failed(client: AsyncClient, up: dict[str, Any]) -> None:
    with pytest.raises(AllModelsFailedError) as info:
        await client.batch_completion_models_all_responses(
            models=["openai/a-status-429", "openai/b-status-401"], messages=conv("hi"), **up
        )
    assert [type(e) for e in info.value.exceptions] == [RateLimitError, AuthenticationError]


@pytest.mark.real_llm
async def test_race_loser_is_cancelled_by_the_real_model(
    client: AsyncClient, up: dict[str, Any], real_llm: Any
) -> None:
    since = real_llm.log_size()
    slow = {"model": f"openai/{real_llm.model}", "api_base": real_llm.openai_base, "api_key": "none", "max_tokens": 400}
    response = await client.batch_completion_models(
        models=[slow, {"model": "openai/fast-delay-50", **up}],
        messages=conv("Write a very long story about a dragon and a knight."),
        temperature=0.8,
    )
    assert response.model == "fast-delay-50"
    assert response.hidden_params["race"]["cancelled"] == [slow["model"]]
    log = await real_llm.wait_for_log("cancel task", since=since, timeout=10)
    assert "cancel task" in log, f"the losing generation was not cancelled upstream:\n{log[-2000:]}"
