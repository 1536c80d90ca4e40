"""Governance benchmark: K branches x M steps under a limit at half the demand.

For each K it measures, in one process run:

- ``us/step``: wall time per branch step of a full run with no limit;
- ``over %``: spend above the limit when the limit is half the demand, with and
  without reservations;
- ``stop ms``: time from the moment the agents' reported spend first passed the
  limit to ``run()`` having raised with every branch cancelled;

and the same figures for a raw-Trio floor: K plain tasks doing M checkpoints each and
sending usage over a memory channel to one ledger task that cancels the nursery on a
breach (no runtime, no records, no merging). Ratios are ours / floor.

Usage: ``python -m benchmarks.governance [--ks 10,100,1000,10000] [--steps 5]``.
Prints a table and writes ``benchmarks/results/governance.json``.
"""

from __future__ import annotations

import argparse
import math
import time
from typing import Any

import trio

from flujo_trio import (
    AgentResult,
    ParallelStep,
    Pipeline,
    Runner,
    Step,
    Usage,
    UsageLimitExceededError,
    UsageLimits,
)

from .support import print_table, ratio, write_results

TOKENS_PER_CALL = 10


class Spend:
    """Shared by a run's agents: what they really spent, and when it passed the limit."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.tokens = 0
        self.breach_at: float | None = None

    def add(self, tokens: int) -> None:
        self.tokens += tokens
        if self.limit is not None and self.breach_at is None and self.tokens > self.limit:
            self.breach_at = time.perf_counter()


class Agent:
    def __init__(self, spend: Spend) -> None:
        self.spend = spend

    async def run(self, data: Any) -> AgentResult[Any]:
        await trio.lowlevel.checkpoint()
        self.spend.add(TOKENS_PER_CALL)
        return AgentResult(data, Usage(tokens=TOKENS_PER_CALL))


def build(k: int, m: int, spend: Spend, reserve: bool) -> ParallelStep:
    agent = Agent(spend)
    reservation = Usage(tokens=TOKENS_PER_CALL) if reserve else None
    branches = {
        f"b{b}": Pipeline([Step(f"s{s}", agent, reserve=reservation) for s in range(m)])
        for b in range(k)
    }
    return ParallelStep("fan", branches)


async def run_ours(k: int, m: int, limit: int | None, reserve: bool) -> dict[str, float]:
    spend = Spend(limit)
    limits = UsageLimits(total_tokens_limit=limit)
    runner = Runner(build(k, m, spend, reserve), limits=limits)
    start = time.perf_counter()
    reported = None
    try:
        result = await runner.run("x")
        reported = result.total_tokens
    except UsageLimitExceededError as error:
        reported = error.result.total_tokens
    end = time.perf_counter()
    return _figures(k, m, limit, spend, start, end, reported)


async def run_floor(k: int, m: int, limit: int | None) -> dict[str, float]:
    """Plain tasks + one channel to a ledger task: the least a governed fan-out costs."""
    spend = Spend(limit)
    send, receive = trio.open_memory_channel[int](math.inf)
    start = time.perf_counter()

    async def branch(out: trio.MemorySendChannel[int]) -> None:
        with out:
            for _ in range(m):
                await trio.lowlevel.checkpoint()
                spend.add(TOKENS_PER_CALL)
                out.send_nowait(TOKENS_PER_CALL)

    async def ledger(scope: trio.CancelScope) -> None:
        total = 0
        async for tokens in receive:
            total += tokens
            if limit is not None and total > limit:
                scope.cancel(reason="floor ledger: limit breached")
                return

    async with trio.open_nursery() as outer:
        with trio.CancelScope() as scope:
            outer.start_soon(ledger, scope, name="floor-ledger")
            async with trio.open_nursery() as nursery:
                with send:
                    for b in range(k):
                        nursery.start_soon(branch, send.clone(), name=f"floor-branch-{b}")
        outer.cancel_scope.cancel(reason="floor run finished")
    end = time.perf_counter()
    return _figures(k, m, limit, spend, start, end, None)


def _figures(
    k: int, m: int, limit: int | None, spend: Spend, start: float, end: float, reported: int | None
) -> dict[str, float]:
    figures: dict[str, float] = {
        "seconds": end - start,
        "us_per_step": (end - start) / (k * m) * 1e6,
    }
    if limit is not None:
        figures["over_pct"] = max(0.0, (spend.tokens - limit) / limit * 100)
        figures["spent"] = spend.tokens
        figures["stop_ms"] = ((end - spend.breach_at) * 1e3) if spend.breach_at else 0.0
        if reported is not None:
            figures["reported"] = reported
    return figures


def measure_shape(k: int, m: int) -> dict[str, Any]:
    limit = k * m * TOKENS_PER_CALL // 2
    return {
        "k": k,
        "m": m,
        "limit_tokens": limit,
        "ours_full": trio.run(run_ours, k, m, None, False),
        "floor_full": trio.run(run_floor, k, m, None),
        "ours_limit": trio.run(run_ours, k, m, limit, False),
        "ours_reserved": trio.run(run_ours, k, m, limit, True),
        "floor_limit": trio.run(run_floor, k, m, limit),
    }


def run(ks: tuple[int, ...] = (10, 100, 1000, 10000), m: int = 5) -> list[dict[str, Any]]:
    return [measure_shape(k, m) for k in ks]


def report(rows: list[dict[str, Any]]) -> None:
    print_table(
        f"Governance: K branches x M steps, token limit at half the demand "
        f"({TOKENS_PER_CALL} tokens per call)",
        [
            "K",
            "M",
            "us/step",
            "floor",
            "ratio",
            "over% no-res",
            "over% res",
            "floor over%",
            "stop ms",
            "floor ms",
            "ratio",
            "reported/spent",
        ],
        [
            [
                r["k"],
                r["m"],
                f"{r['ours_full']['us_per_step']:.1f}",
                f"{r['floor_full']['us_per_step']:.1f}",
                ratio(r["ours_full"]["us_per_step"], r["floor_full"]["us_per_step"]),
                f"{r['ours_limit']['over_pct']:.1f}",
                f"{r['ours_reserved']['over_pct']:.1f}",
                f"{r['floor_limit']['over_pct']:.1f}",
                f"{r['ours_limit']['stop_ms']:.2f}",
                f"{r['floor_limit']['stop_ms']:.2f}",
                ratio(r["ours_limit"]["stop_ms"], r["floor_limit"]["stop_ms"]),
                f"{r['ours_limit'].get('reported', 0)}/{r['ours_limit']['spent']}",
            ]
            for r in rows
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ks", default="10,100,1000,10000")
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    rows = run(tuple(int(k) for k in args.ks.split(",")), args.steps)
    report(rows)
    print(write_results("governance", rows))


if __name__ == "__main__":
    main()
