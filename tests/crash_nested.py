"""Deeply nested pipelines and human steps, run in a child process the tests SIGKILL.

``python -m tests.crash_nested KIND DB LOG RUN_ID HANG MODE [ANSWER]`` runs (MODE
"run") or resumes (MODE "resume", with ANSWER if given) the ``KIND`` pipeline
("nested" or "human") on the SQLite store ``DB``. Every agent call appends ``start
LABEL`` and, when it returns, ``done LABEL`` to ``LOG``, and returns its label as
its output; the call labelled ``HANG`` prints READY and hangs so the parent can kill
the process there. A run that pauses prints PAUSED.

"nested" is four containers deep: a conditional, a loop (two iterations), a parallel
step whose branch "a" maps over two items (one at a time) and whose branch "b" is one
step. Labels name the call's place: ``work@i2.1`` is item 1 of iteration 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import attrs
import trio

from flujo_trio import (
    AgentResult,
    ConditionalStep,
    HumanStep,
    LoopStep,
    MapStep,
    ParallelStep,
    Pipeline,
    PipelineContext,
    PostgresStore,
    ResumeError,
    Runner,
    RunStatus,
    SqliteStore,
    Step,
    Usage,
)
from flujo_trio.serialization import register

COST = 0.1
RESERVE = Usage(0.25, 50)
AGENTS = frozenset({"before", "work", "side", "after", "x", "y", "flaky", "flaky2"})


@register
@attrs.define
class Seen(PipelineContext):
    """Every call also writes to the context, so a lost or doubled change shows."""

    seen: list[str] = attrs.field(factory=list)
    counts: dict[str, int] = attrs.field(factory=dict)


def agent(log: Path, hang: str | None, name: str) -> Any:
    async def run(data: Any, context: Seen) -> AgentResult[str]:
        label = f"{name}@{data}" if name in ("work", "side") else name
        with log.open("a") as file:
            file.write(f"start {label}\n")
        if label == hang:
            print("READY", flush=True)
            await trio.sleep_forever()
        await trio.lowlevel.checkpoint()
        context.seen.append(label)
        context.counts[label] = context.counts.get(label, 0) + 1
        with log.open("a") as file:
            file.write(f"done {label}\n")
        return AgentResult(label, Usage(COST, 10))

    return run


class Spent(Exception):
    """A failed attempt that still cost money (reported through ``usage``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.usage = Usage(COST, 10)


def flaky(log: Path, hang: str | None, name: str) -> Any:
    async def run(data: Any, context: Seen, feedback: list[str]) -> AgentResult[str]:
        label = f"{name}#{len(feedback) + 1}"
        with log.open("a") as file:
            file.write(f"start {label}\n")
        if label == hang:
            print("READY", flush=True)
            await trio.sleep_forever()
        await trio.lowlevel.checkpoint()
        with log.open("a") as file:
            file.write(f"done {label}\n")
        if not feedback:
            raise Spent(f"{label} failed")
        context.seen.append(label)
        context.counts[label] = context.counts.get(label, 0) + 1
        return AgentResult(label, Usage(COST, 10))

    return run


def worked(context: Seen) -> int:
    return sum(1 for label in context.seen if label.startswith(("work@", "side@")))


def pipeline(kind: str, log: Path, hang: str | None) -> Pipeline:
    def step(name: str, **options: Any) -> Step:
        return Step(name, agent(log, hang, name), **options)

    if kind == "nested":
        items = Step("split", lambda data: [f"{data}.0", f"{data}.1"]) >> MapStep(
            "items", step("work", reserve=RESERVE), max_concurrency=1
        )
        fan = ParallelStep("fan", {"a": items, "b": step("side", reserve=RESERVE)})
        loop = LoopStep(
            "loop",
            fan,
            exit_condition=lambda output, context: worked(context) >= 6,
            max_loops=3,
            initial_input_mapper=lambda data, context: "i1",
            iteration_input_mapper=lambda output, context, iteration: f"i{iteration + 1}",
        )
        route = ConditionalStep(
            "route",
            condition=lambda data, context: "shallow" if data == "skip" else "deep",
            branches={"deep": loop, "shallow": step("never")},
        )
        return Pipeline([step("before"), route, step("after")])
    if kind == "retry":
        # The first attempt of each call fails after spending; the second succeeds.
        return Pipeline(
            [
                step("before"),
                Step("flaky", flaky(log, hang, "flaky"), reserve=RESERVE, max_retries=2),
                Step("flaky2", flaky(log, hang, "flaky2"), reserve=RESERVE, max_retries=2),
                step("after"),
            ]
        )
    if kind == "human":
        post = ParallelStep("post", {"x": step("x"), "y": step("y", reserve=RESERVE)})
        return Pipeline([step("before"), HumanStep("approve"), post, step("after")])
    raise ValueError(kind)


def runner(kind: str, db: Path | str, log: Path, hang: str | None) -> Runner:
    """``db``: a SQLite file, or a ``postgresql://`` DSN (the store's default schema)."""
    store = PostgresStore(db) if str(db).startswith("postgresql://") else SqliteStore(db)
    return Runner(pipeline(kind, log, hang), store=store, context_type=Seen, name=kind)


async def main(kind: str, db: str, log: Path, run_id: str, hang: str, mode: str, *answer: str):
    # Imported by name, so stored classes name tests.crash_nested, not __main__.
    from tests.crash_nested import runner as imported

    the_runner = imported(kind, db, log, hang)
    try:
        if mode == "run":
            result = await the_runner.run("in", run_id=run_id)
        else:
            result = await the_runner.resume(run_id, *answer)
    except ResumeError as error:
        print(f"REFUSED {error}", flush=True)
        return
    finally:
        await the_runner.store.aclose()
    print(
        "PAUSED" if result.status is RunStatus.PAUSED else f"DONE {result.status.value}", flush=True
    )


if __name__ == "__main__":
    kind, db, log, run_id, hang, mode, *rest = sys.argv[1:]
    trio.run(main, kind, db, Path(log), run_id, hang, mode, *rest)
