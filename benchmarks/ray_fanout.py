"""A map of 1,000 items with a 10 ms CPU-bound body: here, and on Ray with 1 and 2 workers.

``python -m benchmarks.ray_fanout`` (from the repository root: Ray's workers import
this module) starts a local two-CPU Ray cluster and measures, per case:

- overhead per item: wall time x workers / items - 10 ms (what each item costs a
  worker beyond its body: submission, the relay, trio.run on the worker, the result);
  "1 worker" is a task that reserves both CPUs (``RayExecutor(num_cpus=2)``), "2
  workers" one CPU each; both with the default ``max_in_flight`` (twice what fits);
- CPU per item: CPU time of this process and every process it started (the Ray
  cluster included) per item, less the body and less what the idle cluster burns in
  the same time (measured first): what the work costs in all, however busy the
  machine is with other things;
- budget overshoot: the same map under a cost limit a third of what it would spend,
  with reservations (must be 0) and without;
- the floor: the same body as bare Ray tasks, all submitted at once (what Ray itself
  costs per item, with no budget, journal or cancellation);
- breach to all cancelled: items that block until cancelled plus one that breaches
  once the others run; the time from its breaching return to ``run()`` raising, with
  every remote task stopped.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import trio

from flujo_trio import (
    AgentResult,
    MapStep,
    RayExecutor,
    Runner,
    Step,
    Usage,
    UsageLimitExceededError,
    UsageLimits,
)

from .support import cpu_between, print_table, tree_cpu, write_results

ITEMS = 1000
BODY_S = 0.010
COST = 0.001


async def busy(item: int) -> AgentResult[int]:
    """10 ms of CPU (no await: it holds the worker, as parsing or a local model would)."""
    end = time.perf_counter() + BODY_S
    while time.perf_counter() < end:
        pass
    return AgentResult(item, Usage(COST, 1))


async def _other_processes_wrote(check: Any) -> None:
    """Poll (bounded) for files other processes write: there is no event to wait on."""
    with trio.fail_after(60):
        while True:
            if check():
                return
            await trio.sleep(0.005)


class Breaker:
    """Every item blocks until cancelled, but the first to start once ``others`` are
    running: it writes the time and spends past the limit."""

    def __init__(self, folder: Path, others: int) -> None:
        self.folder, self.others = folder, others

    async def __call__(self, item: int) -> AgentResult[int]:
        (self.folder / f"start-{item}").touch()
        try:
            os.close(os.open(self.folder / "breacher", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            await trio.sleep_forever()
        await _other_processes_wrote(lambda: len(list(self.folder.glob("start-*"))) > self.others)
        (self.folder / "breach-at").write_text(repr(time.time()))
        return AgentResult(item, Usage(100.0, 1))


def _plain_body(item: int) -> int:
    """The floor's task: the same 10 ms of CPU in a bare Ray task (no Trio, no runtime)."""
    end = time.perf_counter() + BODY_S
    while time.perf_counter() < end:
        pass
    return item


def _floor(workers: int, idle: float) -> dict[str, Any]:
    """Ray alone: every item a bare task, all submitted at once, results gathered."""
    import ray

    task = ray.remote(_plain_body).options(num_cpus=2 / workers)
    cpu = tree_cpu()
    began = time.perf_counter()
    assert ray.get([task.remote(i) for i in range(ITEMS)]) == list(range(ITEMS))
    wall = time.perf_counter() - began
    cpu_s = cpu_between(cpu, tree_cpu()) - idle * wall
    return {
        "case": f"ray floor, {workers} worker{'s' if workers > 1 else ''}",
        "wall_s": wall,
        "items_per_s": ITEMS / wall,
        "overhead_ms_per_item": (wall * workers / ITEMS - BODY_S) * 1e3,
        "cpu_ms_per_item": (cpu_s / ITEMS - BODY_S) * 1e3,
        "overshoot_reserved_usd": None,
        "overshoot_unreserved_usd": None,
        "breach_to_cancelled_ms": None,
    }


def _executor(workers: int | None) -> RayExecutor | None:
    """None (local), or tasks that each reserve 2 / ``workers`` of the two CPUs."""
    return None if workers is None else RayExecutor(num_cpus=2 / workers)


def _idle_cpu_per_s(seconds: float = 5.0) -> float:
    """CPU per second this process tree burns doing nothing (Ray's own services)."""
    before = tree_cpu()
    time.sleep(seconds)
    return cpu_between(before, tree_cpu()) / seconds


async def _throughput(workers: int | None, idle: float) -> dict[str, Any]:
    step = MapStep("m", Step("busy", busy, reserve=Usage(COST, 1)), executor=_executor(workers))
    runner = Runner(step, limits=UsageLimits(total_cost_usd_limit=ITEMS * COST * 2))
    cpu = tree_cpu()
    began = time.perf_counter()
    result = await runner.run(list(range(ITEMS)))
    wall = time.perf_counter() - began
    cpu = cpu_between(cpu, tree_cpu()) - idle * wall
    assert result.success
    assert result.total_tokens == ITEMS
    parallel = workers or 1
    return {
        "wall_s": wall,
        "items_per_s": ITEMS / wall,
        "overhead_ms_per_item": (wall * parallel / ITEMS - BODY_S) * 1e3,
        "cpu_ms_per_item": (cpu / ITEMS - BODY_S) * 1e3,
    }


async def _overshoot(workers: int | None, reserve: bool) -> float:
    limit = Decimal(repr(ITEMS * COST / 3))
    step = MapStep(
        "m",
        Step("busy", busy, reserve=Usage(COST, 1) if reserve else None),
        executor=_executor(workers),
    )
    runner = Runner(step, limits=UsageLimits(total_cost_usd_limit=float(limit)))
    try:
        result = await runner.run(list(range(ITEMS)))
    except UsageLimitExceededError as error:
        result = error.result
    spent = Decimal(repr(result.total_cost_usd))
    return float(max(spent - limit, Decimal(0)))


def _empty(folder: Path) -> None:
    for leftover in folder.iterdir():
        leftover.unlink()


async def _breach_to_cancelled(workers: int | None, folder: Path) -> float:
    _empty(folder)
    step = MapStep(
        "m", Step("block", Breaker(folder, (workers or 1) - 1)), executor=_executor(workers)
    )
    runner = Runner(step, limits=UsageLimits(total_cost_usd_limit=1.0))
    try:
        await runner.run(list(range(50)))
    except UsageLimitExceededError:
        ended = time.time()
    else:
        raise AssertionError("the run should have breached")
    return ended - float((folder / "breach-at").read_text())


async def _case(name: str, workers: int | None, folder: Path, idle: float) -> dict[str, Any]:
    row = {"case": name, **(await _throughput(workers, idle))}
    row["overshoot_reserved_usd"] = await _overshoot(workers, True)
    row["overshoot_unreserved_usd"] = await _overshoot(workers, False)
    row["breach_to_cancelled_ms"] = (
        None if workers is None else (await _breach_to_cancelled(workers, folder)) * 1e3
    )
    return row


def run(folder: Path) -> list[dict[str, Any]]:
    import ray

    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False)
    for sig, handler in saved.items():
        signal.signal(sig, handler)
    try:
        trio.run(_throughput, 2, 0.0)  # warm the workers up (imports, first task)
        idle = _idle_cpu_per_s()
        rows = [
            trio.run(_case, name, workers, folder, idle)
            for name, workers in (("local", None), ("ray, 1 worker", 1), ("ray, 2 workers", 2))
        ]
        return [*rows, _floor(1, idle), _floor(2, idle)]
    finally:
        ray.shutdown()


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def main() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        rows = run(Path(folder))
    print_table(
        f"Map of {ITEMS} items, {BODY_S * 1e3:.0f} ms CPU-bound body (Python {sys.version.split()[0]})",
        [
            "case",
            "wall s",
            "items/s",
            "overhead ms/item",
            "CPU ms/item",
            "overshoot reserved $",
            "overshoot unreserved $",
            "breach->cancelled ms",
        ],
        [
            [
                r["case"],
                f"{r['wall_s']:.2f}",
                f"{r['items_per_s']:.0f}",
                f"{r['overhead_ms_per_item']:.2f}",
                f"{r['cpu_ms_per_item']:.2f}",
                _money(r["overshoot_reserved_usd"]),
                _money(r["overshoot_unreserved_usd"]),
                "-"
                if r["breach_to_cancelled_ms"] is None
                else f"{r['breach_to_cancelled_ms']:.0f}",
            ]
            for r in rows
        ],
    )
    print(f"\nwrote {write_results('ray_fanout', rows)}")


if __name__ == "__main__":
    main()
