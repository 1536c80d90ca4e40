"""A pipeline run in a child process that the crash-recovery test kills with SIGKILL.

``python -m tests.crash_pipeline DB LOG RUN_ID`` starts the run; the second step
prints READY and hangs, so the parent knows step one was checkpointed and kills
the process mid-run. Every agent call appends the step name to LOG, so the parent
can count what ran in which process.
"""

from __future__ import annotations

import sys
from pathlib import Path

import trio

from flujo_trio import AgentResult, Pipeline, Runner, SqliteStore, Step, Usage


def build(log: Path, *, hang: bool) -> Pipeline:
    def agent(name: str, hangs: bool = False):
        async def run(data: str) -> AgentResult[str]:
            with log.open("a") as file:
                file.write(f"{name}\n")
            if hangs:
                print("READY", flush=True)
                await trio.sleep_forever()
            return AgentResult(f"{data}>{name}", Usage(0.1, 1))

        return run

    return Pipeline(
        [
            Step("one", agent("one")),
            Step("two", agent("two", hangs=hang)),
            Step("three", agent("three")),
        ]
    )


def runner(db: Path, log: Path, *, hang: bool) -> Runner:
    return Runner(build(log, hang=hang), store=SqliteStore(db), name="crashy")


if __name__ == "__main__":
    db, log, run_id = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    trio.run(lambda: runner(db, log, hang=True).run("start", run_id=run_id))
