"""Shared helpers: agents with scripted usage, and a check that no task is left behind."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import trio
import trio.lowlevel

from flujo_trio import AgentResult, Usage


class CostAgent:
    """Returns its input (or a fixed output) and reports a fixed usage per call."""

    def __init__(self, cost: float = 0.0, tokens: int = 0, output: Any = None) -> None:
        self.usage = Usage(cost, tokens)
        self.output = output
        self.calls: list[Any] = []

    async def run(self, data: Any) -> AgentResult[Any]:
        self.calls.append(data)
        await trio.lowlevel.checkpoint()
        return AgentResult(self.output if self.output is not None else data, self.usage)


@contextmanager
def raw_sqlite(path: str | Path) -> Iterator[sqlite3.Connection]:
    """A plain connection to a store's file, for tests that read or tamper with its rows:
    committed when the block succeeds and always closed (``with sqlite3.connect(...)``
    only commits, and Python 3.13 warns about a connection left to the collector)."""
    connection = sqlite3.connect(path)
    try:
        with connection:
            yield connection
    finally:
        connection.close()


def stray_tasks() -> list[str]:
    """Names of flujo-trio tasks (steps, governor) still alive anywhere in this Trio run."""
    root = trio.lowlevel.current_root_task()
    names: list[str] = []

    def walk(task: trio.lowlevel.Task) -> None:
        for nursery in task.child_nurseries:
            for child in nursery.child_tasks:
                names.append(child.name)
                walk(child)

    walk(root)
    return [name for name in names if "flujo" in name]
