"""Per-step overhead of sequential pipelines of trivial agents, next to the Trio floor.

The floor runs the same shape with no runtime: each step is a task in a nursery of
its own calling the same agent (what an actor per step costs at the very least).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import trio

from flujo_trio import Pipeline, Runner, Step

from .support import print_table, ratio, write_results


async def agent(data: Any) -> Any:
    return data


async def _ours(runner: Runner) -> None:
    await runner.run(0)


async def sequence_floor(steps: int, step_fn: Any = agent) -> None:
    """The floor of a sequence: a task and a nursery per step, each fed the last output."""
    data: Any = 0
    for _ in range(steps):
        out: list[Any] = []

        async def call(value: Any, out: list[Any] = out) -> None:
            out.append(await step_fn(value))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(call, data)
        data = out[0]


def _median_us_per_step(fn: Any, *args: Any, steps: int, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        trio.run(fn, *args)
        samples.append((time.perf_counter() - start) / steps * 1e6)
    return statistics.median(samples)


def run(sizes: tuple[int, ...] = (10, 100), repeats: int = 30) -> list[dict[str, Any]]:
    rows = []
    for steps in sizes:
        runner = Runner(Pipeline([Step(f"s{i}", agent) for i in range(steps)]))
        ours = _median_us_per_step(_ours, runner, steps=steps, repeats=repeats)
        floor = _median_us_per_step(sequence_floor, steps, steps=steps, repeats=repeats)
        rows.append({"steps": steps, "ours_us_per_step": ours, "floor_us_per_step": floor})
    return rows


def report(rows: list[dict[str, Any]]) -> None:
    print_table(
        "Sequential overhead (median of runs, µs per step)",
        ["steps", "flujo-trio", "trio floor", "ratio"],
        [
            [
                r["steps"],
                f"{r['ours_us_per_step']:.1f}",
                f"{r['floor_us_per_step']:.1f}",
                ratio(r["ours_us_per_step"], r["floor_us_per_step"]),
            ]
            for r in rows
        ],
    )


if __name__ == "__main__":
    results = run()
    report(results)
    print(write_results("overhead", results))
