"""One side of an SDK benchmark, in its own process so CPU time and peak RSS are per side.

Run by path (``python bench/workers/sdk_worker.py --side llmplex|litellm|aiohttp``), with LiteLLM's own
venv python for ``litellm``: it imports only the standard library, aiohttp and the side's library.
Reads one JSON command per line on stdin, answers one ``BENCH_RESULT {json}`` line per command.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any

RESULT_PREFIX = "BENCH_RESULT "


def rusage() -> tuple[float, float]:
    """(CPU seconds of all threads so far, peak RSS in MiB)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024


def prompts(n: int) -> list[list[dict[str, str]]]:
    return [[{"role": "user", "content": f"prompt {i}: say hello"}] for i in range(n)]


def upstream_stats(url: str) -> dict[str, int]:
    with urllib.request.urlopen(url, timeout=2) as resp:
        data: dict[str, int] = json.loads(resp.read())
    return data


def wait_disconnect(stats_url: str, limit_s: float = 1.0) -> float | None:
    """perf_counter() when the upstream first reports a disconnected request; None within ``limit_s``."""
    deadline = time.perf_counter() + limit_s
    for _ in range(5000):  # bounded; ~1 ms per poll
        if upstream_stats(stats_url).get("disconnected", 0) >= 1:
            return time.perf_counter()
        if time.perf_counter() > deadline:
            return None
        time.sleep(0.0005)
    return None


def classify(model_name: str) -> str:
    name = model_name.lower()
    return "slow" if "slow" in name else "fast" if "fast" in name else f"unknown ({model_name})"


class Side:
    """Common driver; subclasses implement the calls."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def run(self, coro: Awaitable[Any]) -> Any:
        return self.loop.run_until_complete(coro)

    def wait_disconnect(self, stats_url: str, limit_s: float = 1.0) -> float | None:
        """``wait_disconnect`` polled from a thread while this side's loop keeps running, as an application's would.

        A race that cancels its loser and returns (LiteLLM's Router: ``t.cancel()`` then ``return``) only closes
        the loser's socket on the loop's next iterations; polling with the loop stopped never saw it.
        """
        seen: float | None = self.run(asyncio.to_thread(wait_disconnect, stats_url, limit_s))
        return seen

    def batch(self, cmd: dict[str, Any]) -> dict[str, Any]:
        msgs = prompts(cmd["n"])
        cpu0, _ = rusage()
        t0 = time.perf_counter()
        results = self.do_batch(cmd, msgs)
        wall = time.perf_counter() - t0
        cpu1, peak = rusage()
        errors = [r for r in results if isinstance(r, BaseException) or r is None]
        return {
            "wall_s": wall,
            "n": cmd["n"],
            "ok": len(results) - len(errors),
            "errors": len(errors),
            "first_error": repr(errors[0])[:300] if errors else None,
            "cpu_s": cpu1 - cpu0,
            "peak_rss_mb": peak,
        }

    def percall(self, cmd: dict[str, Any]) -> dict[str, Any]:
        msgs = [{"role": "user", "content": "per-call overhead probe"}]
        self.run(self.sequential(cmd, msgs, cmd["warmup"]))
        cpu0, _ = rusage()
        t0 = time.perf_counter()
        errors = self.run(self.sequential(cmd, msgs, cmd["n"]))
        wall = time.perf_counter() - t0
        cpu1, peak = rusage()
        n = cmd["n"]
        return {
            "cpu_ms_per_call": (cpu1 - cpu0) * 1000 / n,
            "wall_ms_per_call": wall * 1000 / n,
            "errors": errors,
            "peak_rss_mb": peak,
        }

    async def sequential(self, cmd: dict[str, Any], msgs: list[dict[str, str]], n: int) -> int:
        errors = 0
        call = self.router_call if cmd.get("router") else self.one_call
        for _ in range(n):
            try:
                await call(cmd, cmd["model"], msgs)
            except Exception:
                errors += 1
        return errors

    def router_percall(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """``percall`` through the side's Router (one group, one deployment) instead of its bare client."""
        return self.percall({**cmd, "router": True})

    def router_batch(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """``batch`` through the Router's ``abatch_completion_one_model_multiple_requests``."""
        return self.batch({**cmd, "router": True})

    async def router_call(self, cmd: dict[str, Any], model: str, msgs: list[dict[str, str]]) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no Router")

    def router_for(self, cmd: dict[str, Any], groups: dict[str, str]) -> Any:
        """One Router per model list, built on first use (the cost of building it is not what is measured)."""
        key = json.dumps([cmd["api_base"], groups], sort_keys=True)
        cache: dict[str, Any] = self.__dict__.setdefault("_routers", {})
        if key not in cache:
            model_list = [
                {
                    "model_name": name,
                    "litellm_params": {"model": model, "api_base": cmd["api_base"], "api_key": cmd["api_key"]},
                }
                for name, model in groups.items()
            ]
            cache[key] = self.make_router(model_list)
        return cache[key]

    def make_router(self, model_list: list[dict[str, Any]]) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no Router")

    def do_batch(self, cmd: dict[str, Any], msgs: list[list[dict[str, str]]]) -> list[Any]:
        raise NotImplementedError

    async def one_call(self, cmd: dict[str, Any], model: str, msgs: list[dict[str, str]]) -> Any:
        raise NotImplementedError

    def race(self, cmd: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError(f"{type(self).__name__} has no race")

    def embed(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Embed ``n`` short texts; the answer must hold ``n`` vectors in input order."""
        texts = [f"document {i} of the bench corpus" for i in range(cmd["n"])]
        cpu0, _ = rusage()
        t0 = time.perf_counter()
        vectors = self.run(self.do_embed(cmd, texts))
        wall = time.perf_counter() - t0
        cpu1, peak = rusage()
        return {"wall_s": wall, "n": cmd["n"], "vectors": len(vectors), "cpu_s": cpu1 - cpu0, "peak_rss_mb": peak}

    async def do_embed(self, cmd: dict[str, Any], texts: list[str]) -> list[Any]:
        raise NotImplementedError(f"{type(self).__name__} has no embeddings")

    def hedge(self, cmd: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError(f"{type(self).__name__} has no hedging")


async def bounded_gather(n: int, concurrency: int, make: Callable[[int], Awaitable[Any]]) -> list[Any]:
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> Any:
        async with sem:
            try:
                return await make(i)
            except Exception as exc:
                return exc

    return list(await asyncio.gather(*(one(i) for i in range(n))))


class AiohttpSide(Side):
    """The ceiling: a bare aiohttp loop posting the same body, no SDK."""

    def __init__(self) -> None:
        super().__init__()
        import aiohttp

        self.aiohttp = aiohttp
        self.session: Any = None

    def ensure_session(self, limit: int) -> Any:
        """Called inside the running loop (aiohttp binds a session to it)."""
        if self.session is None:
            self.session = self.aiohttp.ClientSession(connector=self.aiohttp.TCPConnector(limit=limit))
        return self.session

    async def post(self, cmd: dict[str, Any], model: str, msgs: list[dict[str, str]]) -> Any:
        body = {"model": model.split("/", 1)[1], "messages": msgs}
        headers = {"Authorization": f"Bearer {cmd['api_key']}"}
        async with self.session.post(cmd["api_base"] + "/chat/completions", json=body, headers=headers) as resp:
            resp.raise_for_status()
            return await resp.json()

    def do_batch(self, cmd: dict[str, Any], msgs: list[list[dict[str, str]]]) -> list[Any]:
        async def go() -> list[Any]:
            self.ensure_session(cmd["concurrency"])
            return await bounded_gather(len(msgs), cmd["concurrency"], lambda i: self.post(cmd, cmd["model"], msgs[i]))

        return list(self.run(go()))

    async def one_call(self, cmd: dict[str, Any], model: str, msgs: list[dict[str, str]]) -> Any:
        self.ensure_session(100)
        return await self.post(cmd, model, msgs)

    async def do_embed(self, cmd: dict[str, Any], texts: list[str]) -> list[Any]:
        """The same splits the SDK makes (``split`` inputs per request), sent concurrently, put back in order."""
        self.ensure_session(cmd["concurrency"])
        split = cmd["split"]
        headers = {"Authorization": f"Bearer {cmd['api_key']}"}
        model = cmd["model"].split("/", 1)[1]

        async def part(i: int) -> list[Any]:
            body = {"model": model, "input": texts[i * split : (i + 1) * split]}
            async with self.session.post(cmd["api_base"] + "/embeddings", json=body, headers=headers) as resp:
                resp.raise_for_status()
                data = (await resp.json())["data"]
            return [item["embedding"] for item in sorted(data, key=lambda item: item["index"])]

        parts = await bounded_gather(-(-len(texts) // split), cmd["concurrency"], part)
        for result in parts:
            if isinstance(result, BaseException):
                raise result
        return [vector for result in parts for vector in result]


class LlmplexSide(Side):
    def __init__(self) -> None:
        super().__init__()
        import llmplex

        self.llmplex = llmplex

    def make_router(self, model_list: list[dict[str, Any]]) -> Any:
        return self.llmplex.Router(model_list=model_list, num_retries=0)

    async def router_call(self, cmd: dict[str, Any], model: str, msgs: list[dict[str, str]]) -> Any:
        return await self.router_for(cmd, {"bench": model}).acompletion("bench", msgs)

    def router_race(self, cmd: dict[str, Any]) -> dict[str, Any]:
        router = self.router_for(cmd, {"slow": cmd["slow"], "fast": cmd["fast"]})
        msgs = [{"role": "user", "content": "race"}]
        t0 = time.perf_counter()
        resp = self.run(router.abatch_completion_fastest_response("slow, fast", msgs))
        t_return = time.perf_counter()
        t_disc = self.wait_disconnect(cmd["stats_url"])
        race = resp.hidden_params.get("race") or {}
        won: dict[str, Any] = next((a for a in race.get("attempts", []) if a.get("status") == "won"), {})
        win_ms = None if won.get("latency_ms") is None else (won.get("started_ms") or 0.0) + won["latency_ms"]
        t_win = t0 + win_ms / 1000 if win_ms is not None else t_return
        return {
            "wall_s": t_return - t0,
            "winner": classify(str(race.get("winner") or resp.model)),
            "winner_latency_ms": win_ms,
            "disconnect_after_win_ms": None if t_disc is None else (t_disc - t_win) * 1000,
            "disconnect_after_return_ms": None if t_disc is None else (t_disc - t_return) * 1000,
            "upstream": upstream_stats(cmd["stats_url"]),
        }

    def do_batch(self, cmd: dict[str, Any], msgs: list[list[dict[str, str]]]) -> list[Any]:
        if cmd.get("router"):
            router = self.router_for(cmd, {"bench": cmd["model"]})
            return list(
                self.run(
                    router.abatch_completion_one_model_multiple_requests(
                        "bench", msgs, max_concurrency=cmd["concurrency"]
                    )
                )
            )
        return list(
            self.run(
                self.llmplex.abatch_completion(
                    cmd["model"],
                    msgs,
                    max_concurrency=cmd["concurrency"],
                    api_base=cmd["api_base"],
                    api_key=cmd["api_key"],
                )
            )
        )

    async def one_call(self, cmd: dict[str, Any], model: str, msgs: list[dict[str, str]]) -> Any:
        return await self.llmplex.acompletion(model, msgs, api_base=cmd["api_base"], api_key=cmd["api_key"])

    async def do_embed(self, cmd: dict[str, Any], texts: list[str]) -> list[Any]:
        response = await self.llmplex.aembedding(
            cmd["model"], texts, max_concurrency=cmd["concurrency"], api_base=cmd["api_base"], api_key=cmd["api_key"]
        )
        return list(response.data)

    def race(self, cmd: dict[str, Any]) -> dict[str, Any]:
        msgs = [{"role": "user", "content": "race"}]
        t0 = time.perf_counter()
        resp = self.run(
            self.llmplex.abatch_completion_models(
                models=[cmd["slow"], cmd["fast"]], messages=msgs, api_base=cmd["api_base"], api_key=cmd["api_key"]
            )
        )
        t_return = time.perf_counter()
        t_disc = self.wait_disconnect(cmd["stats_url"])
        hidden = getattr(resp, "hidden_params", None) or getattr(resp, "_hidden_params", None) or {}
        race = hidden.get("race") or {}
        label = hidden.get("model_label") or race.get("winner") or resp.model
        won: dict[str, Any] = next((a for a in race.get("attempts", []) if a.get("status") == "won"), {})
        win_ms = None if won.get("latency_ms") is None else (won.get("started_ms") or 0.0) + won["latency_ms"]
        t_win = t0 + win_ms / 1000 if win_ms is not None else t_return
        return {
            "wall_s": t_return - t0,
            "winner": classify(str(label)),
            "winner_latency_ms": win_ms,
            "disconnect_after_win_ms": None if t_disc is None else (t_disc - t_win) * 1000,
            "disconnect_after_return_ms": None if t_disc is None else (t_disc - t_return) * 1000,
            "upstream": upstream_stats(cmd["stats_url"]),
        }

    def hedge(self, cmd: dict[str, Any]) -> dict[str, Any]:
        rng = random.Random(cmd["seed"])
        primaries = [
            cmd["primary_slow"] if rng.random() < cmd["tail_fraction"] else cmd["primary_fast"] for _ in range(cmd["n"])
        ]
        msgs = [{"role": "user", "content": "hedge"}]
        latencies: list[float] = []
        winners: dict[str, int] = {}

        async def one(i: int) -> None:
            t0 = time.perf_counter()
            if cmd["mode"] == "none":
                await self.one_call(cmd, primaries[i], msgs)
                label = "primary"
            else:
                resp = await self.llmplex.abatch_completion_models(
                    models=[primaries[i], cmd["backup"]],
                    messages=msgs,
                    hedge_delay=cmd["hedge_delay"],
                    api_base=cmd["api_base"],
                    api_key=cmd["api_key"],
                )
                hidden = getattr(resp, "hidden_params", None) or {}
                label = "backup" if "backup" in str(hidden.get("model_label") or resp.model) else "primary"
            latencies.append((time.perf_counter() - t0) * 1000)
            winners[label] = winners.get(label, 0) + 1

        results = self.run(bounded_gather(cmd["n"], cmd["concurrency"], one))
        errors = [r for r in results if isinstance(r, BaseException)]
        return {
            "latencies_ms": latencies,
            "winners": winners,
            "errors": len(errors),
            "first_error": repr(errors[0])[:300] if errors else None,
            "tail_requests": sum(1 for p in primaries if p == cmd["primary_slow"]),
        }


class LitellmSide(Side):
    def __init__(self) -> None:
        super().__init__()
        import litellm  # type: ignore[import-not-found]

        self.litellm = litellm

    def make_router(self, model_list: list[dict[str, Any]]) -> Any:
        return self.litellm.Router(model_list=model_list, num_retries=0)

    async def router_call(self, cmd: dict[str, Any], model: str, msgs: list[dict[str, str]]) -> Any:
        return await self.router_for(cmd, {"bench": model}).acompletion(model="bench", messages=msgs)

    def router_race(self, cmd: dict[str, Any]) -> dict[str, Any]:
        router = self.router_for(cmd, {"slow": cmd["slow"], "fast": cmd["fast"]})
        msgs = [{"role": "user", "content": "race"}]
        t0 = time.perf_counter()
        resp = self.run(router.abatch_completion_fastest_response(model="slow, fast", messages=msgs))
        t_return = time.perf_counter()
        t_disc = self.wait_disconnect(cmd["stats_url"], limit_s=0.3)
        return {
            "wall_s": t_return - t0,
            "winner": classify(str(getattr(resp, "model", resp))),
            "winner_latency_ms": None,
            "disconnect_after_win_ms": None if t_disc is None else (t_disc - t_return) * 1000,
            "disconnect_after_return_ms": None if t_disc is None else (t_disc - t_return) * 1000,
            "upstream": upstream_stats(cmd["stats_url"]),
        }

    def do_batch(self, cmd: dict[str, Any], msgs: list[list[dict[str, str]]]) -> list[Any]:
        if cmd.get("router"):  # LiteLLM gathers every prompt at once (no concurrency bound)
            router = self.router_for(cmd, {"bench": cmd["model"]})
            return list(self.run(router.abatch_completion_one_model_multiple_requests(model="bench", messages=msgs)))
        return list(
            self.litellm.batch_completion(
                model=cmd["model"],
                messages=msgs,
                max_workers=cmd["concurrency"],
                api_base=cmd["api_base"],
                api_key=cmd["api_key"],
            )
        )

    async def one_call(self, cmd: dict[str, Any], model: str, msgs: list[dict[str, str]]) -> Any:
        return await self.litellm.acompletion(
            model=model, messages=msgs, api_base=cmd["api_base"], api_key=cmd["api_key"]
        )

    def race(self, cmd: dict[str, Any]) -> dict[str, Any]:
        msgs = [{"role": "user", "content": "race"}]
        t0 = time.perf_counter()
        resp = self.litellm.batch_completion_models(
            models=[cmd["slow"], cmd["fast"]], messages=msgs, api_base=cmd["api_base"], api_key=cmd["api_key"]
        )
        t_return = time.perf_counter()
        t_disc = self.wait_disconnect(cmd["stats_url"], limit_s=0.3)
        return {
            "wall_s": t_return - t0,
            "winner": classify(str(getattr(resp, "model", resp))),
            "winner_latency_ms": None,
            "disconnect_after_win_ms": None if t_disc is None else (t_disc - t_return) * 1000,
            "disconnect_after_return_ms": None if t_disc is None else (t_disc - t_return) * 1000,
            "upstream": upstream_stats(cmd["stats_url"]),
        }


SIDES: dict[str, Callable[[], Side]] = {"aiohttp": AiohttpSide, "llmplex": LlmplexSide, "litellm": LitellmSide}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--side", choices=sorted(SIDES), required=True)
    side = SIDES[parser.parse_args().side]()
    print(RESULT_PREFIX + json.dumps({"ready": True, "peak_rss_mb": rusage()[1]}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["op"] == "exit":
            break
        try:
            out = getattr(side, cmd["op"])(cmd)
        except Exception as exc:
            out = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        print(RESULT_PREFIX + json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
