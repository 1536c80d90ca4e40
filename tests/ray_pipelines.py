"""Pipelines and agents the Ray tests run both locally and on the test session's cluster.

Everything here is at module level so Ray workers import it by name (the cluster's
workers have the repository on their path). Agents that must leave a trace across
processes append lines to a log file given in their input or closure; agents that
must wait for a cancellation block until it comes.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import attrs
import trio

from flujo_trio import (
    AgentResult,
    MapStep,
    ParallelStep,
    PipelineContext,
    Step,
    Usage,
    UsageLimits,
)
from flujo_trio.dsl.parallel import MergeStrategy


@attrs.define
class Notes(PipelineContext):
    """A context with a list, a dict and a plain field, to exercise every merge."""

    seen: list[str] = attrs.field(factory=list)
    tally: dict[str, int] = attrs.field(factory=dict)
    last: str | None = None


@attrs.frozen
class Scored:
    """An attrs output: it must come back from a worker as this class."""

    text: str
    score: int


async def note(data: Any, *, context: Notes) -> AgentResult[Scored]:
    text = str(data)
    context.seen.append(text)
    context.tally[text] = context.tally.get(text, 0) + 1
    context.last = text
    return AgentResult(Scored(text, len(text)), Usage(0.001 * len(text), len(text)))


async def shout(data: Scored) -> AgentResult[str]:
    return AgentResult(data.text.upper(), Usage(0.0005, 2))


def noting_body(name: str) -> Any:
    """Two steps, the second under a budget of its own (scoped inside the job)."""
    return Step(f"{name}_note", note) >> Step(
        f"{name}_shout", shout, limits=UsageLimits(total_cost_usd_limit=1.0)
    )


def parallel_step(strategy: Any, executor: Any) -> ParallelStep:
    return ParallelStep(
        "fan",
        {"a": noting_body("a"), "bb": noting_body("bb"), "ccc": noting_body("ccc")},
        merge_strategy=strategy,
        executor=executor,
    )


def keep_longest(parent: Notes, branches: dict[str, Notes]) -> None:
    """A merge callable: the parent keeps what the longest branch saw."""
    longest = max(branches, key=len)
    parent.seen.extend(branches[longest].seen)
    parent.last = branches[longest].last


MERGES: list[Any] = [*MergeStrategy, keep_longest]


def map_step(executor: Any, **options: Any) -> MapStep:
    return MapStep("m", noting_body("item"), executor=executor, **options)


# -- logs across processes -----------------------------------------------------------------


def log_line(log: Path, line: str) -> None:
    with log.open("a") as file:
        file.write(line + "\n")


def read_log(log: Path) -> list[str]:
    return log.read_text().split("\n")[:-1] if log.exists() else []


async def poll_until(check: Any, *, timeout_s: float = 60.0) -> None:
    """Wait until ``check()`` (sync or async) is true: another process writes what we
    wait for, so there is no event to wait on; the wait is bounded."""
    with trio.fail_after(timeout_s):
        while True:
            done = check()
            if not isinstance(done, bool):
                done = await done
            if done:
                return
            await trio.sleep(0.02)


def first_to_claim(marker: Path) -> bool:
    """True for exactly one caller across every process (an exclusive create)."""
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


@attrs.frozen
class Spender:
    """Spends ``1 + item % 3`` thousandths of a dollar per item, logging each spend."""

    log: Path

    async def __call__(self, item: int) -> AgentResult[int]:
        cost = (1 + item % 3) / 1000
        log_line(self.log, f"{item} {cost!r}")
        return AgentResult(item, Usage(cost, 1))


@attrs.frozen
class Blocker:
    """Logs its start; the first item to start breaches (if ``breach``: once a second
    item runs, writing the time into ``marker``), every other one blocks until it is
    cancelled, and logs that."""

    log: Path
    marker: Path
    breach: bool

    async def __call__(self, item: int) -> AgentResult[int]:
        log_line(self.log, f"start {item}")
        if self.breach and first_to_claim(self.marker):
            # Breach once another item is running for sure, and say when.
            await poll_until(lambda: sum(x.startswith("start") for x in read_log(self.log)) > 1)
            self.marker.write_text(repr(time.time()))
            return AgentResult(item, Usage(5.0, 1))
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            log_line(self.log, f"cancelled {item}")
            raise
        raise AssertionError("unreachable")


@attrs.frozen
class Killer:
    """The first call anywhere kills its own worker process (SIGKILL); others succeed."""

    log: Path
    marker: Path

    async def __call__(self, item: int) -> AgentResult[int]:
        log_line(self.log, f"call {item} {os.getpid()}")
        if first_to_claim(self.marker):
            os.kill(os.getpid(), signal.SIGKILL)
        return AgentResult(item * 10, Usage(0.01, 1))
