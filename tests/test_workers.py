"""Four worker processes share one PostgreSQL store; one is SIGKILLed mid-run on
"another machine", and its run is resumed elsewhere once its lease has run out.

The killed worker runs in a UTS namespace of its own with the hostname ``worker-0``,
so its owner id names another host: the store cannot tell that it died (that works
only for processes of this host) and must rely on the lease alone. The resuming
process moves its clock past the lease instead of waiting for it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import trio

from flujo_trio import PostgresStore, RunStatus
from flujo_trio.state.journal import CallRecord, CallStatus
from flujo_trio.state.owner import DEFAULT_LEASE_S
from tests.pg_worker import CALLS_PER_RUN, PRICE

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def worker(mode: str, dsn: str, schema: str, log: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "tests.pg_worker", mode, dsn, schema, str(log), *args]


def on_another_host(command: list[str], hostname: str) -> list[str]:
    """``command`` in a UTS namespace whose hostname is ``hostname`` (same pid: exec)."""
    isolate = (
        ["unshare", "--uts"]
        if os.geteuid() == 0
        else ["unshare", "--user", "--map-root-user", "--uts"]
    )
    script = f'hostname {hostname} && exec "$@"'
    return [*isolate, "--", "sh", "-c", script, "sh", *command]


async def read_line(stream: trio.abc.ReceiveStream) -> bytes:
    line = b""
    while not line.endswith(b"\n"):
        chunk = await stream.receive_some(1)
        assert chunk, "the worker exited before it reached its hanging call"
        line += chunk
    return line


def reports(stdout: bytes) -> dict[str, dict]:
    return {doc["run_id"]: doc for doc in map(json.loads, stdout.decode().splitlines())}


async def test_four_workers_one_killed_and_resumed_after_its_lease(
    postgres_dsn, pg_schema, tmp_path
):
    log = tmp_path / "calls.log"
    finished: dict[str, dict] = {}
    with trio.fail_after(120):  # a bound for a hung child, not part of what is tested
        killed = await trio.lowlevel.open_process(
            on_another_host(
                worker("run", postgres_dsn, pg_schema, log, "w0-a", "w0-hang", "--hang", "w0-hang"),
                "worker-0",
            ),
            cwd=ROOT,
            env=ENV,
            stdout=subprocess.PIPE,
        )
        try:

            async def other(index: int) -> None:
                runs = [f"w{index}-a", f"w{index}-b"]
                done = await trio.run_process(
                    worker("run", postgres_dsn, pg_schema, log, *runs),
                    cwd=ROOT,
                    env=ENV,
                    capture_stdout=True,
                )
                finished.update(reports(done.stdout))

            async with trio.open_nursery() as nursery:
                for index in (1, 2, 3):
                    nursery.start_soon(other, index)
                assert killed.stdout is not None
                ready = b""
                while not ready.startswith(b"READY"):
                    ready = await read_line(killed.stdout)
                    if not ready.startswith(b"READY"):
                        finished.update(reports(ready))
                assert ready.strip() == b"READY w0-hang"
                killed.kill()  # SIGKILL: no cleanup, no last write
                assert await killed.wait() == -9
        finally:
            if killed.returncode is None:
                killed.kill()
                await killed.wait()
            if killed.stdout is not None:
                await killed.stdout.aclose()

        async with PostgresStore(postgres_dsn, schema=pg_schema) as store:
            stopped = await store.load_run("w0-hang")
        assert stopped.status is RunStatus.RUNNING and stopped.owner.startswith("worker-0:")
        ended = {
            (r.address[-1], r.output)
            for r in stopped.journal
            if isinstance(r, CallRecord) and r.status is CallStatus.SUCCEEDED
        }
        assert ended == {("first", "first(go)"), ("a", "a(first(go))"), ("b", "b(first(go))")} | {
            ("item", f"item({n})") for n in (1, 2, 3)
        }

        # The lease still runs: a resume now is refused, naming the owner on its host.
        refused = await trio.run_process(
            worker("resume", postgres_dsn, pg_schema, log, "w0-hang"),
            cwd=ROOT,
            env=ENV,
            capture_stderr=True,
            check=False,
        )
        assert refused.returncode == 3
        assert b"being executed by process" in refused.stderr and b"on worker-0" in refused.stderr
        # Past the lease, another worker takes the run over and finishes it.
        resumed = await trio.run_process(
            worker(
                "resume",
                postgres_dsn,
                pg_schema,
                log,
                "w0-hang",
                "--clock-ahead",
                str(DEFAULT_LEASE_S + 1),
            ),
            cwd=ROOT,
            env=ENV,
            capture_stdout=True,
        )
        finished.update(reports(resumed.stdout))

    everyone = [f"w{i}-{x}" for i in (1, 2, 3) for x in "ab"] + ["w0-a", "w0-hang"]
    assert sorted(finished) == sorted(everyone)
    assert all(doc["status"] == "completed" for doc in finished.values())

    calls = Counter(log.read_text().splitlines())
    for run_id in everyone:
        mine = {call: n for call, n in calls.items() if call.startswith(f"{run_id} ")}
        assert sum(mine.values()) == CALLS_PER_RUN + (run_id == "w0-hang"), mine
        # Only the call that was in flight when the worker died ran twice.
        assert [call for call, n in mine.items() if n > 1] == (
            ["w0-hang review "] if run_id == "w0-hang" else []
        )
    async with PostgresStore(postgres_dsn, schema=pg_schema) as store:
        summaries = {s.run_id: s for s in await store.list_runs()}
        assert set(summaries) == set(everyone)
        for run_id in everyone:
            state = await store.load_run(run_id)
            ran = sum(n for call, n in calls.items() if call.startswith(f"{run_id} "))
            # Spend is exact: every call that ran is paid once, the lost one included.
            assert state.spent.cost_usd == PRICE * ran and state.spent.tokens == ran
            assert state.status is RunStatus.COMPLETED and state.owner is None
