"""Caller cancel of a run with N in-flight agent calls: time until run() has unwound.

The floor: N plain tasks blocked in the same agent, cancelled by their nursery.
"""

from __future__ import annotations

import time
from typing import Any

import trio

from flujo_trio import ParallelStep, Runner, Step

from .support import print_table, ratio, write_results


class Waiter:
    """An agent that never returns; counts calls and says when all N are in flight."""

    def __init__(self, n: int) -> None:
        self.n, self.started, self.all_in_flight = n, 0, trio.Event()

    async def run(self, data: Any) -> Any:
        self.started += 1
        if self.started == self.n:
            self.all_in_flight.set()
        await trio.sleep_forever()


async def _cancel_after_all_started(start: Any, waiter: Waiter) -> float:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(start)
        await waiter.all_in_flight.wait()
        began = time.perf_counter()
        nursery.cancel_scope.cancel(reason="benchmark: caller cancels")
    return time.perf_counter() - began


async def cancel_ours(n: int) -> float:
    waiter = Waiter(n)
    step = ParallelStep("fan", {f"b{i}": Step(f"s{i}", waiter) for i in range(n)})
    return await _cancel_after_all_started(Runner(step).run, waiter)


async def cancel_floor(n: int) -> float:
    waiter = Waiter(n)

    async def all_calls() -> None:
        async with trio.open_nursery() as nursery:
            for _ in range(n):
                nursery.start_soon(waiter.run, None)

    return await _cancel_after_all_started(all_calls, waiter)


def run(ns: tuple[int, ...] = (1000, 10000)) -> list[dict[str, Any]]:
    return [
        {
            "in_flight": n,
            "ours_ms": trio.run(cancel_ours, n) * 1e3,
            "floor_ms": trio.run(cancel_floor, n) * 1e3,
        }
        for n in ns
    ]


def report(rows: list[dict[str, Any]]) -> None:
    print_table(
        "Caller cancel with N in-flight agent calls (ms from cancel to run() unwound)",
        ["in flight", "flujo-trio ms", "floor ms", "ratio"],
        [
            [
                r["in_flight"],
                f"{r['ours_ms']:.1f}",
                f"{r['floor_ms']:.1f}",
                ratio(r["ours_ms"], r["floor_ms"]),
            ]
            for r in rows
        ],
    )


if __name__ == "__main__":
    results = run()
    report(results)
    print(write_results("cancellation", results))
