"""The SQLite store at its edges: concurrent openers, unusable files, closed connections."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from flujo_trio import HumanStep, MemoryStore, Runner, RunStatus, SqliteStore, Step, StoreError
from flujo_trio.testing import StubAgent

ROOT = Path(__file__).resolve().parent.parent


async def test_processes_opening_a_new_file_together_never_see_half_a_schema(tmp_path):
    db = tmp_path / "fresh.db"
    code = textwrap.dedent(
        """
        import sys, trio
        from flujo_trio import SqliteStore
        async def main():
            async with SqliteStore(sys.argv[1]) as store:
                print(len(await store.list_runs()))
        trio.run(main)
        """
    )
    results: list[subprocess.CompletedProcess[bytes]] = []

    async def open_it() -> None:
        results.append(
            await trio.run_process(
                [sys.executable, "-c", code, str(db)],
                capture_stdout=True,
                capture_stderr=True,
                check=False,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
        )

    async with trio.open_nursery() as nursery:
        for _ in range(8):
            nursery.start_soon(open_it)
    assert [r.returncode for r in results] == [0] * 8, [r.stderr for r in results]
    assert all(r.stdout.strip() == b"0" for r in results)


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Make ``path`` unwritable even for root (the immutable flag), then writable again."""
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(path)], check=True)
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True)
    else:
        mode = path.stat().st_mode
        path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield
        finally:
            path.chmod(mode)


async def test_a_read_only_file_is_a_store_error_naming_it(tmp_path):
    db = tmp_path / "ro.db"
    async with SqliteStore(db) as store:
        await store.list_runs()
    with read_only(db), pytest.raises(StoreError) as info:
        async with SqliteStore(db) as store:
            await Runner(Step("s", StubAgent([1])), store=store).run("x")
    message = str(info.value)
    assert str(db) in message and "read-only" in message, message


async def test_a_read_only_directory_is_a_store_error_naming_it(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    db = folder / "runs.db"
    with read_only(folder), pytest.raises(StoreError) as info:
        async with SqliteStore(db) as store:
            await store.list_runs()
    message = str(info.value)
    assert str(db) in message and f"{folder} is read-only" in message, message


async def test_a_missing_directory_is_a_store_error_saying_so(tmp_path):
    missing = tmp_path / "no" / "such" / "dir" / "runs.db"
    with pytest.raises(StoreError, match=r"does not exist: create it first") as info:
        async with SqliteStore(missing) as store:
            await store.list_runs()
    assert str(missing) in str(info.value)


def test_stores_close_their_connections_without_resource_warnings(tmp_path):
    code = textwrap.dedent(
        """
        import gc, sys, trio
        from flujo_trio import Runner, SqliteStore, SqliteCache, Step
        from flujo_trio.testing import StubAgent
        async def main(path):
            async with SqliteStore(path) as store:
                await Runner(Step("s", StubAgent([1])), store=store).run("x")
            # Forgotten, never closed: the store closes its connection when collected.
            forgotten = SqliteStore(path)
            await forgotten.list_runs()
            cache = SqliteCache(path)
            await Runner(Step("c", StubAgent([2]), cache=cache)).run("y")
        trio.run(main, sys.argv[1])
        gc.collect()
        """
    )
    done = subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error", "-c", code, str(tmp_path / "w.db")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "ResourceWarning" not in done.stderr and "unclosed" not in done.stderr


async def test_memory_store_keeps_a_bounded_number_of_finished_runs():
    store = MemoryStore(max_finished=3)
    runner = Runner(Step("s", StubAgent(["x"] * 10)), store=store)
    paused_runner = Runner(Step("p", StubAgent(["y"] * 10)) >> HumanStep("h"), store=store)
    paused = await paused_runner.run("keep me")
    for index in range(6):
        await runner.run(index, run_id=f"done{index}")
    kept = {summary.run_id for summary in await store.list_runs()}
    assert kept == {paused.run_id, "done3", "done4", "done5"}  # oldest finished evicted
    assert (await store.load_run(paused.run_id)).status is RunStatus.PAUSED
    assert await store.load_run("done0") is None
    assert (await paused_runner.resume(paused, "ok")).success
    # Now finished too: it is the newest of the three finished runs kept.
    kept = {summary.run_id for summary in await store.list_runs()}
    assert kept == {paused.run_id, "done4", "done5"}
