"""Shared helpers: agents with scripted usage, and a check that no task is left behind."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
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


ROOT = Path(__file__).resolve().parent.parent


async def child_until(module: str, *args: str, expect: str = "READY") -> None:
    """Run ``python -m MODULE ARGS`` from the repository root and read its first line,
    which must be ``expect``: on ``"READY"`` SIGKILL it there (no cleanup, no final
    save), otherwise let it exit on its own with status 0."""
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert process.stdout is not None
        line = b""
        while not line.endswith(b"\n"):
            chunk = await process.stdout.receive_some()
            assert chunk, f"{module} exited before printing {expect}"
            line += chunk
        assert line.strip().decode() == expect
        if expect == "READY":
            process.kill()
            assert await process.wait() == -9
        else:
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        if process.stdout is not None:
            await process.stdout.aclose()
