"""The runtime core next to the Trio floor: the six figures of the core's goals.

Each figure is measured in this process run together with a floor that does the
same work with no runtime, and reported as a ratio:

- per step of a 100-step sequence (floor: a task and a nursery per step);
- fan-out of K=10,000 branches x 3 steps (floors: a task per branch making the same
  3 agent calls, and a task per branch making one);
- traced Python memory per branch at K=10,000;
- caller cancel with 10,000 calls in flight (floor: 10,000 tasks in one nursery);
- a budget breach with 10,000 calls in flight, until every call is cancelled and
  ``run()`` has raised (floor: a task that cancels its nursery of 10,000);
- ``import flujo_trio`` next to ``import trio`` (fresh interpreters, median).

Times are CPU-light medians of a few runs; the machine is shared, so quote ratios.
"""

from __future__ import annotations

import contextlib
import gc
import statistics
import subprocess
import sys
import time
import tracemalloc
from typing import Any

import trio

from flujo_trio import (
    AgentResult,
    ParallelStep,
    Pipeline,
    Processors,
    Runner,
    Step,
    Usage,
    UsageLimitExceededError,
    UsageLimits,
)

from .cancellation import cancel_floor, cancel_ours
from .overhead import sequence_floor
from .support import print_table, ratio, write_results

K = 10_000


async def echo(data: Any) -> Any:
    await trio.lowlevel.checkpoint()
    return data


def _median_s(fn: Any, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


# -- sequence ------------------------------------------------------------------------------


def sequence(steps: int = 100, repeats: int = 30) -> dict[str, float]:
    runner = Runner(Pipeline([Step(f"s{i}", echo) for i in range(steps)]))

    ours = _median_s(lambda: trio.run(runner.run, 0), repeats) / steps * 1e6
    base = _median_s(lambda: trio.run(sequence_floor, steps, echo), repeats) / steps * 1e6
    return {"ours_us": ours, "floor_us": base}


# -- fan-out ---------------------------------------------------------------------------------


def _fan(k: int, m: int) -> Runner:
    branch = Pipeline([Step(f"s{s}", echo) for s in range(m)])
    return Runner(ParallelStep("fan", {f"b{b}": branch for b in range(k)}))


async def _floor_fan(k: int, calls: int) -> None:
    async def branch(index: int) -> None:
        data: Any = index
        for _ in range(calls):
            data = await echo(data)

    async with trio.open_nursery() as nursery:
        for index in range(k):
            nursery.start_soon(branch, index)


def fanout(k: int = K, m: int = 3, repeats: int = 3) -> dict[str, float]:
    runner = _fan(k, m)
    ours = _median_s(lambda: trio.run(runner.run, 0), repeats)
    same_calls = _median_s(lambda: trio.run(_floor_fan, k, m), repeats)
    one_call = _median_s(lambda: trio.run(_floor_fan, k, 1), repeats)
    return {"ours_s": ours, "floor_same_calls_s": same_calls, "floor_task_per_branch_s": one_call}


def memory(k: int = K, m: int = 3) -> dict[str, float]:
    def traced(work: Any) -> float:
        gc.collect()
        tracemalloc.start()
        try:
            work()
            return tracemalloc.get_traced_memory()[1] / k
        finally:
            tracemalloc.stop()

    runner = _fan(k, m)
    return {
        "ours_bytes": traced(lambda: trio.run(runner.run, 0)),
        "floor_bytes": traced(lambda: trio.run(_floor_fan, k, m)),
    }


# -- cancellation ------------------------------------------------------------------------------


def _index(i: int) -> Any:
    def processor(data: Any, context: Any) -> int:
        return i

    return processor


class _Breacher:
    """N calls wait until all are in flight; then one of them spends over the limit."""

    def __init__(self, n: int) -> None:
        self.n, self.started, self.all_in_flight = n, 0, trio.Event()
        self.breach_at = 0.0

    async def run(self, data: Any) -> Any:
        self.started += 1
        if self.started == self.n:
            self.all_in_flight.set()
        await self.all_in_flight.wait()
        if data == 0 and not self.breach_at:
            self.breach_at = time.perf_counter()
            return AgentResult(data, Usage(tokens=1_000_000))
        await trio.sleep_forever()


async def _breach_ours(n: int) -> float:
    breacher = _Breacher(n)
    # Each branch gets its own index as input, so exactly one call breaches.
    step = ParallelStep(
        "fan",
        {
            f"b{i}": Step(f"s{i}", breacher, processors=Processors(input=(_index(i),)))
            for i in range(n)
        },
    )
    runner = Runner(step, limits=UsageLimits(total_tokens_limit=10))
    with contextlib.suppress(UsageLimitExceededError):
        await runner.run(None)
    return time.perf_counter() - breacher.breach_at


async def _breach_floor(n: int) -> float:
    breacher = _Breacher(n)
    async with trio.open_nursery() as nursery:

        async def call(index: int) -> None:
            await breacher.run(index)
            nursery.cancel_scope.cancel(reason="benchmark: the budget is gone")

        for index in range(n):
            nursery.start_soon(call, index)
    return time.perf_counter() - breacher.breach_at


def cancellation(n: int = K) -> dict[str, float]:
    return {
        "cancel_ours_s": trio.run(cancel_ours, n),
        "cancel_floor_s": trio.run(cancel_floor, n),
        "breach_ours_s": trio.run(_breach_ours, n),
        "breach_floor_s": trio.run(_breach_floor, n),
    }


# -- import ----------------------------------------------------------------------------------


def imports(repeats: int = 9) -> dict[str, float]:
    def once(module: str) -> float:
        code = (
            f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        return float(done.stdout)

    ours = statistics.median(once("flujo_trio") for _ in range(repeats))
    base = statistics.median(once("trio") for _ in range(repeats))
    return {"ours_ms": ours * 1e3, "floor_ms": base * 1e3}


def run() -> dict[str, Any]:
    return {
        "sequence": sequence(),
        "fanout": fanout(),
        "memory": memory(),
        "cancellation": cancellation(),
        "imports": imports(),
    }


def _row(figure: str, ours: float, floor: float, unit: str, fmt: str) -> list[str]:
    return [figure, f"{ours:{fmt}} {unit}", f"{floor:{fmt}} {unit}", ratio(ours, floor)]


def report(results: dict[str, Any]) -> None:
    seq, fan, mem = results["sequence"], results["fanout"], results["memory"]
    cancel, imp = results["cancellation"], results["imports"]
    print_table(
        "Runtime core next to the Trio floor (same work, same run)",
        ["figure", "flujo-trio", "floor", "ratio"],
        [
            _row("per step, 100-step sequence", seq["ours_us"], seq["floor_us"], "µs", ".1f"),
            _row(
                "fan-out K=10,000 x 3 (same calls)",
                fan["ours_s"],
                fan["floor_same_calls_s"],
                "s",
                ".2f",
            ),
            _row(
                "fan-out K=10,000 x 3 (task per branch)",
                fan["ours_s"],
                fan["floor_task_per_branch_s"],
                "s",
                ".2f",
            ),
            _row(
                "memory per branch, K=10,000",
                mem["ours_bytes"] / 1024,
                mem["floor_bytes"] / 1024,
                "KB",
                ".1f",
            ),
            _row(
                "caller cancel, 10,000 in flight",
                cancel["cancel_ours_s"],
                cancel["cancel_floor_s"],
                "s",
                ".3f",
            ),
            _row(
                "breach -> all cancelled, 10,000 in flight",
                cancel["breach_ours_s"],
                cancel["breach_floor_s"],
                "s",
                ".3f",
            ),
            _row("import flujo_trio / import trio", imp["ours_ms"], imp["floor_ms"], "ms", ".0f"),
        ],
    )


if __name__ == "__main__":
    results = run()
    report(results)
    print(write_results("core", results))
