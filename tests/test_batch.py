"""batch_completion against the real emulator: alignment, bounds, pacing, checkpoints, cancellation."""

from __future__ import annotations

import asyncio
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from llmplex import AsyncClient
from llmplex._request import resolve_call
from llmplex.config import ClientConfig
from llmplex.exceptions import (
    BadRequestError,
    InternalServerError,
    RateLimitError,
    ServiceUnavailableError,
    UnknownModelError,
)
from llmplex.types import ModelResponse
from tests.batch_support import conv, prompts, wait_stats

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
