"""A worker process sharing one PostgreSQL store with others (see test_workers.py).

``python -m tests.pg_worker run DSN SCHEMA LOG RUN_ID... [--hang RUN_ID]`` runs the
given runs at once; the run named by ``--hang`` prints ``READY <run_id>`` when its
``review`` call starts (everything before it is durable by then) and hangs there, for
the parent to SIGKILL. ``python -m tests.pg_worker resume DSN SCHEMA LOG RUN_ID
[--clock-ahead S]`` resumes a run with a clock S seconds ahead of the wall clock (a
lease that has run out, without waiting for it); a refused resume exits with 3.

Every agent call appends ``<run_id> <step> <item>`` to LOG before it works, so the
parent can count which calls ran, in every process. Each call costs exactly $0.1 and
1 token and reserves as much, so a call lost in a crash is charged what it really
spent.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import trio

from flujo_trio import (
    AgentResult,
    MapStep,
    ParallelStep,
    PipelineResult,
    PostgresStore,
    ResumeError,
    Runner,
    Step,
    Usage,
    UsageLimits,
)
from flujo_trio.context import utc_now

COST = Usage(0.1, 1)
CALLS_PER_RUN = 8
PRICE = Decimal("0.1")


def build(log: str, hang: str | None) -> Any:
    def agent(name: str):
        async def run(data: Any, context: Any) -> AgentResult[Any]:
            item = data if name == "item" else ""
            # One short append per call: whole lines, whichever processes write.
            async with await trio.open_file(log, "a") as file:
                await file.write(f"{context.run_id} {name} {item}\n")
            if name == "review" and context.run_id == hang:
                print(f"READY {context.run_id}", flush=True)
                await trio.sleep_forever()
            await trio.lowlevel.checkpoint()
            return AgentResult(f"{name}({data})", COST)

        return run

    def step(name: str) -> Step:
        return Step(name, agent(name), reserve=COST)

    fan = ParallelStep(
        "fan",
        {
            "a": step("a"),
            "b": step("b"),
            "items": MapStep("items", step("item"), items=[1, 2, 3]),
        },
    )
    return step("first") >> fan >> step("review") >> step("last")


def runner(dsn: str, schema: str, log: str, *, hang: str | None = None, ahead: float = 0.0):
    def clock() -> datetime:
        return utc_now() + timedelta(seconds=ahead)

    store = PostgresStore(dsn, schema=schema, clock=clock)
    return Runner(build(log, hang), store=store, name="workers", limits=UsageLimits(10.0))


def report(result: PipelineResult) -> None:
    print(
        json.dumps(
            {
                "run_id": result.run_id,
                "status": result.status.value,
                "cost": result.total_cost_usd,
                "output": result.output,
            }
        ),
        flush=True,
    )


async def run_all(args: argparse.Namespace) -> None:
    """The runs at once; the one that hangs starts after the others ended."""
    work = runner(args.dsn, args.schema, args.log, hang=args.hang)
    async with work.store:
        async with trio.open_nursery() as nursery:
            for run_id in args.run_ids:
                if run_id == args.hang:
                    continue

                async def one(run_id: str = run_id) -> None:
                    report(await work.run("go", run_id=run_id))

                nursery.start_soon(one, name=f"worker-run:{run_id}")
        if args.hang:
            await work.run("go", run_id=args.hang)


async def resume(args: argparse.Namespace) -> int:
    work = runner(args.dsn, args.schema, args.log, ahead=args.clock_ahead)
    async with work.store:
        try:
            result = await work.resume(args.run_ids[0])
        except ResumeError as error:
            print(f"REFUSED: {error}", file=sys.stderr, flush=True)
            return 3
    report(result)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["run", "resume"])
    parser.add_argument("dsn")
    parser.add_argument("schema")
    parser.add_argument("log")
    parser.add_argument("run_ids", nargs="+")
    parser.add_argument("--hang")
    parser.add_argument("--clock-ahead", type=float, default=0.0)
    args = parser.parse_args()
    if args.mode == "run":
        trio.run(run_all, args)
        return 0
    return trio.run(resume, args)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
