"""Durable stores: journal cost per step and runs per second, SQLite vs PostgreSQL.

- journal cost: a 1000-step sequential run of trivial agents on each durable store,
  in µs per journaled step, next to the same run on the MemoryStore (the runtime
  without durability) and to the database's plain INSERT floor: one small row per
  autocommitted INSERT from one connection, what a store cannot beat for a write
  per step;
- runs per second: 1 and 4 worker processes on one store, each running short runs
  (5 steps) one after another; the processes start together once all have opened
  the store, so interpreter start-up is not counted;
- driver: what one PostgreSQL round trip costs in this thread, through a Trio worker
  thread and pool (how the store calls it), and a bare thread hop, which is why the
  store uses psycopg's blocking API in threads (psycopg's async API needs asyncio).

PostgreSQL is measured twice: with its defaults (every commit flushed to disk) and
with ``synchronous_commit=off`` for the session, which is closer to SQLite's WAL mode
with ``synchronous=NORMAL`` (a commit survives the process, not a power cut).

``python -m benchmarks.stores`` uses ``FLUJO_TRIO_BENCH_POSTGRES_DSN`` (or the tests'
``FLUJO_TRIO_TEST_POSTGRES_DSN``) when set, else starts a throwaway server with
PostgreSQL's default durability settings.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pathlib
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import trio

from flujo_trio import MemoryStore, Pipeline, PostgresStore, Runner, SqliteStore, Step

from .support import print_table, ratio, write_results

ROW = json.dumps({"address": ["s1"], "status": "ok", "output": "x" * 200, "attempts": 1})


async def agent(data: Any) -> Any:
    return data


def pipeline(steps: int) -> Pipeline:
    return Pipeline([Step(f"s{i}", agent) for i in range(steps)])


def asynchronous(dsn: str) -> str:
    """The DSN with commits not waiting for the disk (this session only)."""
    from psycopg.conninfo import make_conninfo

    return make_conninfo(dsn, options="-c synchronous_commit=off")


def drop_schema(dsn: str, schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


# -- journal cost per step -------------------------------------------------------------------


def journal_us_per_step(make_store: Callable[[], Any], steps: int, repeats: int) -> float:
    runner_pipeline = pipeline(steps)
    samples = []

    async def one(store: Any) -> None:
        async with store:
            await Runner(runner_pipeline, store=store).run(0)

    for _ in range(repeats):
        store = make_store()
        started = time.perf_counter()
        trio.run(one, store)
        samples.append((time.perf_counter() - started) / steps * 1e6)
    return statistics.median(samples)


def sqlite_insert_us(path: pathlib.Path, n: int) -> float:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE t (run_id TEXT, seq INTEGER, entry TEXT, PRIMARY KEY (run_id, seq))")
    started = time.perf_counter()
    for seq in range(n):
        db.execute("INSERT INTO t VALUES (?, ?, ?)", ("r", seq, ROW))
    elapsed = time.perf_counter() - started
    db.close()
    return elapsed / n * 1e6


def postgres_insert_us(dsn: str, n: int) -> float:
    import psycopg

    table = f"floor_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute(
            f"CREATE TABLE {table} (run_id text, seq bigint, entry json, PRIMARY KEY (run_id, seq))"
        )
        try:
            started = time.perf_counter()
            for seq in range(n):
                db.execute(f"INSERT INTO {table} VALUES (%s, %s, %s::json)", ("r", seq, ROW))
            elapsed = time.perf_counter() - started
        finally:
            db.execute(f"DROP TABLE {table}")
    return elapsed / n * 1e6


def driver_us(dsn: str, n: int = 2000) -> dict[str, float]:
    """One round trip here, one through the store's thread and pool, one bare hop."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute("SELECT 1")
        started = time.perf_counter()
        for _ in range(n):
            db.execute("SELECT 1").fetchone()
        direct = (time.perf_counter() - started) / n * 1e6
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    store = PostgresStore(dsn, schema=schema)

    def select_one(connection: Any) -> Any:
        return connection.execute("SELECT 1").fetchone()

    async def through_threads() -> tuple[float, float]:
        async with store:
            await store.database.run(select_one)
            started = time.perf_counter()
            for _ in range(n):
                await store.database.run(select_one)
            pooled = (time.perf_counter() - started) / n * 1e6
        started = time.perf_counter()
        for _ in range(n):
            await trio.to_thread.run_sync(int)
        hop = (time.perf_counter() - started) / n * 1e6
        return pooled, hop

    try:
        pooled, hop = trio.run(through_threads)
    finally:
        drop_schema(dsn, schema)
    return {"select_1_direct_us": direct, "select_1_store_thread_us": pooled, "thread_hop_us": hop}


# -- runs per second with worker processes ---------------------------------------------------


def open_store(target: str, schema: str) -> Any:
    if target.startswith("postgresql://") or "=" in target:
        return PostgresStore(target, schema=schema)
    return SqliteStore(target)


def worker(target: str, schema: str, runs: int, steps: int) -> None:
    """One worker process: open the store, say READY, wait for GO, run, report."""
    store = open_store(target, schema)
    runner = Runner(pipeline(steps), store=store)

    async def main() -> None:
        async with store:
            await store.list_runs(limit=1)  # the store is open (and its schema made)
            print("READY", flush=True)
            await trio.to_thread.run_sync(sys.stdin.readline)
            started = time.time()
            for _ in range(runs):
                await runner.run(0)
            print(json.dumps({"start": started, "end": time.time()}), flush=True)

    trio.run(main)


def runs_per_second(target: str, schema: str, workers: int, runs: int, steps: int) -> float:
    command = [sys.executable, "-m", "benchmarks.stores", "--worker", target, schema]
    command += [str(runs), str(steps)]
    root = pathlib.Path(__file__).resolve().parent.parent
    processes = [
        subprocess.Popen(
            command, cwd=root, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        for _ in range(workers)
    ]
    try:
        for process in processes:
            assert process.stdout is not None
            if process.stdout.readline().strip() != "READY":
                raise RuntimeError("a benchmark worker did not start")
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("GO\n")
            process.stdin.flush()
        spans = []
        for process in processes:
            out, _ = process.communicate(timeout=600)
            if process.returncode != 0:
                raise RuntimeError(f"a benchmark worker failed ({process.returncode})")
            spans.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    elapsed = max(s["end"] for s in spans) - min(s["start"] for s in spans)
    return workers * runs / elapsed


# -- the whole benchmark ---------------------------------------------------------------------


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    dsn = os.environ.get("FLUJO_TRIO_BENCH_POSTGRES_DSN") or os.environ.get(
        "FLUJO_TRIO_TEST_POSTGRES_DSN"
    )
    if dsn:
        yield dsn
        return
    from tests.pg_server import throwaway_server

    with throwaway_server(settings=()) as started:
        yield started


def run(steps: int = 1000, repeats: int = 3, runs: int = 100, run_steps: int = 5) -> dict[str, Any]:
    results: dict[str, Any] = {"steps": steps, "runs_per_worker": runs, "run_steps": run_steps}
    with tempfile.TemporaryDirectory() as scratch, postgres() as dsn:
        folder = pathlib.Path(scratch)
        schemas: list[tuple[str, str]] = []

        def schema_on(target: str) -> str:
            name = f"bench_{uuid.uuid4().hex[:8]}"
            schemas.append((target, name))
            return name

        targets = {"postgres": dsn, "postgres (async commit)": asynchronous(dsn)}
        try:
            results["memory_us_per_step"] = journal_us_per_step(MemoryStore, steps, repeats)
            journal: list[dict[str, Any]] = []
            path = folder / "journal.db"
            journal.append(
                {
                    "store": "sqlite",
                    "us_per_step": journal_us_per_step(lambda: SqliteStore(path), steps, repeats),
                    "insert_floor_us": sqlite_insert_us(folder / "floor.db", steps),
                }
            )
            for name, target in targets.items():
                schema = schema_on(dsn)
                journal.append(
                    {
                        "store": name,
                        "us_per_step": journal_us_per_step(
                            lambda target=target, schema=schema: PostgresStore(
                                target, schema=schema
                            ),
                            steps,
                            repeats,
                        ),
                        "insert_floor_us": postgres_insert_us(target, steps),
                    }
                )
            results["journal"] = journal
            throughput: list[dict[str, Any]] = []
            for name, target in [("sqlite", str(folder / "runs.db")), *targets.items()]:
                row: dict[str, Any] = {"store": name}
                for workers in (1, 4):
                    schema = schema_on(dsn) if name != "sqlite" else "-"
                    row[f"runs_per_s_{workers}"] = runs_per_second(
                        target, schema, workers, runs, run_steps
                    )
                throughput.append(row)
            results["throughput"] = throughput
            results["driver"] = driver_us(dsn)
        finally:
            for target, schema in schemas:
                drop_schema(target, schema)
    return results


def report(results: dict[str, Any]) -> None:
    memory = results["memory_us_per_step"]
    print_table(
        f"Journal cost, {results['steps']}-step durable run (median µs per step; "
        f"MemoryStore: {memory:.0f} µs)",
        ["store", "µs/step", "INSERT floor µs", "ratio to floor", "over memory µs"],
        [
            [
                r["store"],
                f"{r['us_per_step']:.0f}",
                f"{r['insert_floor_us']:.0f}",
                ratio(r["us_per_step"], r["insert_floor_us"]),
                f"{r['us_per_step'] - memory:.0f}",
            ]
            for r in results["journal"]
        ],
    )
    print_table(
        f"Runs per second ({results['run_steps']}-step runs, {results['runs_per_worker']} "
        "per worker, one after another)",
        ["store", "1 worker", "4 workers"],
        [
            [r["store"], f"{r['runs_per_s_1']:.0f}", f"{r['runs_per_s_4']:.0f}"]
            for r in results["throughput"]
        ],
    )
    driver = results["driver"]
    print_table(
        "PostgreSQL driver: one round trip (µs)",
        ["SELECT 1 in this thread", "via the store's worker thread + pool", "bare thread hop"],
        [
            [
                f"{driver['select_1_direct_us']:.0f}",
                f"{driver['select_1_store_thread_us']:.0f}",
                f"{driver['thread_hop_us']:.0f}",
            ]
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=4, metavar=("TARGET", "SCHEMA", "RUNS", "STEPS"))
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    if args.worker:
        target, schema, runs, steps = args.worker
        worker(target, schema, int(runs), int(steps))
        return
    results = run(args.steps, args.repeats, args.runs)
    report(results)
    print(write_results("stores", results))


if __name__ == "__main__":
    main()
