"""Pipelines with composites, run in a child process that the tests kill with SIGKILL.

``python -m tests.crash_composites KIND DB LOG RUN_ID HANG`` starts a run of the
``KIND`` pipeline ("parallel", "map" or "loop") on the SQLite store ``DB``. Every
agent call appends ``start NAME`` and, when it returns, ``done NAME COST`` to
``LOG``. The call named ``HANG`` prints READY and hangs, so the parent knows where
the run is and kills it there. Sibling calls that must have finished first wait for
each other through a shared event, so what the journal holds at the kill is exact.
"""

from __future__ import annotations

import sys
from pathlib import Path

import attrs
import trio

from flujo_trio import (
    AgentResult,
    LoopStep,
    MapStep,
    ParallelStep,
    Pipeline,
    PipelineContext,
    Runner,
    SqliteStore,
    Step,
    Usage,
)
from flujo_trio.serialization import register

COST = 0.1
RESERVE = Usage(0.25, 50)


@register
@attrs.define
class Notes(PipelineContext):
    """Every call also writes to the context, so a lost context change shows."""

    seen: list[str] = attrs.field(factory=list)
    counts: dict[str, int] = attrs.field(factory=dict)


class Calls:
    """The agents of one pipeline, sharing the side-effect log and the hang point."""

    def __init__(
        self, log: Path, hang: str | None, waits_for: int = 0, numbered: bool = False
    ) -> None:
        self.log, self.hang = log, hang
        self.numbered = numbered
        self.waits_for = waits_for
        self.finished = 0
        self.others_done = trio.Event() if waits_for else None

    def write(self, line: str) -> None:
        with self.log.open("a") as file:
            file.write(line + "\n")

    def agent(self, name: str, *, waits: bool = False):
        async def run(data, context: Notes) -> AgentResult[str]:
            item = str(data).split(">")[0]  # map items are 0, 1, ...: name calls by item
            label = f"{name}:{item}" if item.isdigit() else name
            if self.numbered:  # loop iterations, counted from the (replayed) context
                label = f"{name}#{sum(1 for seen in context.seen if seen.startswith(name)) + 1}"
            self.write(f"start {label}")
            if waits and self.others_done is not None:
                await self.others_done.wait()
            if self.hang == label:
                print("READY", flush=True)
                await trio.sleep_forever()
            await trio.lowlevel.checkpoint()
            context.seen.append(label)
            context.counts[label] = context.counts.get(label, 0) + 1
            self.write(f"done {label} {COST}")
            if not waits:
                self.finished += 1
                if self.others_done is not None and self.finished >= self.waits_for:
                    self.others_done.set()
            return AgentResult(f"{data}>{label}", Usage(COST, 10))

        return run


def pipeline(kind: str, calls: Calls) -> Pipeline:
    if kind == "parallel":
        branches = {}
        for branch in ("a", "b", "c"):
            first = Step(f"{branch}1", calls.agent(f"{branch}1", waits=branch == "c"))
            second = Step(f"{branch}2", calls.agent(f"{branch}2"), reserve=RESERVE)
            branches[branch] = first >> second
        fan = ParallelStep("fan", branches)
        before, after = Step("before", calls.agent("before")), Step("after", calls.agent("after"))
        return Pipeline([before, fan, after])
    if kind == "map":
        body = Step("first", calls.agent("first")) >> Step(
            "second", calls.agent("second"), reserve=RESERVE
        )
        # One item at a time: what has finished when the hanging call starts is exact.
        return Pipeline([MapStep("items", body, items=[0, 1, 2, 3], max_concurrency=1)])
    if kind == "loop":
        body = Step("draft", calls.agent("draft"), reserve=RESERVE) >> Step(
            "check", calls.agent("check")
        )
        loop = LoopStep(
            "loop",
            body,
            exit_condition=lambda out, ctx: len(ctx.seen) >= 8,
            max_loops=6,
        )
        return Pipeline([loop, Step("after", calls.agent("after"))])
    raise ValueError(kind)


def runner(kind: str, db: Path, log: Path, hang: str | None) -> Runner:
    # In "parallel", c1 waits until a1, a2, b1, b2 and "before" are done (not on a resume:
    # those are taken from the journal then, not called).
    calls = Calls(
        log, hang, waits_for=5 if kind == "parallel" and hang else 0, numbered=kind == "loop"
    )
    return Runner(pipeline(kind, calls), store=SqliteStore(db), context_type=Notes, name=kind)


if __name__ == "__main__":
    # Run through the module's import name, so stored classes name tests.crash_composites
    # (not __main__) and the parent process can load them.
    from tests.crash_composites import runner as imported_runner

    kind, db, log, run_id, hang = sys.argv[1:6]
    trio.run(lambda: imported_runner(kind, Path(db), Path(log), hang).run("in", run_id=run_id))
