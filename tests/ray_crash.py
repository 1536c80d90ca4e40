"""A run whose map items run on Ray, in a child process the crash test kills (SIGKILL).

``python -m tests.ray_crash DB LOG RUN_ID ADDRESS`` connects to the test session's
Ray cluster at ADDRESS and maps over four items on a SQLite store. Each item runs two
steps: ``first`` (logs ``first N``) and ``work`` (logs ``call N``), where item 3's
``work`` waits forever; the others finish.
"""

from __future__ import annotations

import sys
from pathlib import Path

import attrs
import trio

from flujo_trio import AgentResult, MapStep, RayExecutor, Runner, SqliteStore, Step, Usage
from tests.ray_pipelines import log_line


@attrs.frozen
class Work:
    log: Path
    hang: bool

    async def __call__(self, item: int) -> AgentResult[int]:
        log_line(self.log, f"call {item}")
        if item == 3 and self.hang:
            await trio.sleep_forever()
        return AgentResult(item * 100, Usage(0.01, 1))


@attrs.frozen
class First:
    log: Path

    async def __call__(self, item: int) -> AgentResult[int]:
        log_line(self.log, f"first {item}")
        return AgentResult(item, Usage(0.001, 1))


def runner(db: Path, log: Path, *, hang: bool) -> Runner:
    body = Step("first", First(log)) >> Step("work", Work(log, hang))
    step = MapStep("m", body, executor=RayExecutor())
    return Runner(step, store=SqliteStore(db), name="ray-crashy")


if __name__ == "__main__":
    import ray

    db, log, run_id, address = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]
    ray.init(address=address, configure_logging=False)
    trio.run(lambda: runner(db, log, hang=True).run([0, 1, 2, 3], run_id=run_id))
