"""Fan-out of K branches x M steps: time, peak RSS and bytes per branch.

- time: wall seconds of one run in this process;
- peak RSS: the workload run alone in a fresh child process (its peak resident set
  minus the same process's RSS after imports), so earlier runs cannot hide growth;
- bytes per branch: the peak of Python allocations during the run (tracemalloc, in a
  separate untimed run) divided by K.

The floor: K plain tasks in one nursery, each calling the same agent M times.
"""

from __future__ import annotations

import gc
import json
import pathlib
import resource
import subprocess
import sys
import time
import tracemalloc
from typing import Any

import trio

from flujo_trio import ParallelStep, Pipeline, Runner, Step

from .support import current_rss_bytes, print_table, ratio, write_results


async def agent(data: Any) -> Any:
    await trio.lowlevel.checkpoint()
    return data


def build(k: int, m: int) -> Runner:
    branch = Pipeline([Step(f"s{s}", agent) for s in range(m)])
    return Runner(ParallelStep("fan", {f"b{b}": branch for b in range(k)}))


async def _floor(k: int, m: int) -> list[Any]:
    results: list[Any] = [None] * k

    async def branch(index: int) -> None:
        data: Any = index
        for _ in range(m):
            data = await agent(data)
        results[index] = data

    async with trio.open_nursery() as nursery:
        for index in range(k):
            nursery.start_soon(branch, index)
    return results


def _workload(kind: str, k: int, m: int) -> Any:
    if kind == "ours":
        runner = build(k, m)
        return lambda: trio.run(runner.run, 0)
    return lambda: trio.run(_floor, k, m)


def _seconds(kind: str, k: int, m: int) -> float:
    work = _workload(kind, k, m)
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def _traced_peak(kind: str, k: int, m: int) -> int:
    work = _workload(kind, k, m)
    gc.collect()
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _child_peak_rss(kind: str, k: int, m: int) -> int | None:
    """Peak RSS growth of the workload run alone in a new interpreter, in bytes."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.fanout", "--child", kind, str(k), str(m)],
        capture_output=True,
        text=True,
        cwd=pathlib.Path(__file__).parent.parent,
    )
    if done.returncode != 0:
        return None
    baseline, peak = json.loads(done.stdout)
    return int(peak - baseline)


def _child(kind: str, k: int, m: int) -> None:
    work = _workload(kind, k, m)
    gc.collect()
    baseline = current_rss_bytes() or 0
    work()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps([baseline, peak]))


def run(ks: tuple[int, ...] = (10, 100, 1000, 10000), m: int = 3) -> list[dict[str, Any]]:
    rows = []
    for k in ks:
        row: dict[str, Any] = {"k": k, "m": m}
        for kind in ("ours", "floor"):
            row[f"{kind}_s"] = _seconds(kind, k, m)
            row[f"{kind}_peak_rss_bytes"] = _child_peak_rss(kind, k, m)
            row[f"{kind}_bytes_per_branch"] = _traced_peak(kind, k, m) / k
        rows.append(row)
    return rows


def report(rows: list[dict[str, Any]]) -> None:
    print_table(
        "Fan-out: K branches x M trivial steps",
        [
            "K",
            "M",
            "time s",
            "floor s",
            "ratio",
            "peak RSS MB",
            "floor MB",
            "B/branch",
            "floor B/branch",
            "ratio",
        ],
        [
            [
                r["k"],
                r["m"],
                f"{r['ours_s']:.3f}",
                f"{r['floor_s']:.4f}",
                ratio(r["ours_s"], r["floor_s"]),
                f"{(r['ours_peak_rss_bytes'] or 0) / 2**20:.1f}",
                f"{(r['floor_peak_rss_bytes'] or 0) / 2**20:.1f}",
                f"{r['ours_bytes_per_branch']:.0f}",
                f"{r['floor_bytes_per_branch']:.0f}",
                ratio(r["ours_bytes_per_branch"], r["floor_bytes_per_branch"]),
            ]
            for r in rows
        ],
    )


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        _child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        raise SystemExit(0)
    results = run()
    report(results)
    print(write_results("fanout", results))
