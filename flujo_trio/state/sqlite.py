"""SQLite store: embedded, zero-setup, durable; state kept as JSON text.

One connection, used by one worker thread at a time (a lock serialises calls that
Trio hands to threads), WAL mode so readers in other processes are not blocked, and
each save in one transaction: a save either lands whole or not at all. Rows are
plain JSON with enums stored by value, so ``sqlite3 flujo_trio.db 'select state
from runs'`` is readable.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import trio

from ..context import RunStatus
from ..errors import SerializationError, StoreError
from ..serialization import structure, unstructure
from .models import RunState, RunSummary

T = TypeVar("T")

#: Bumped when the tables change; a store written by a newer version is refused.
SCHEMA_VERSION = 1
APPLICATION_ID = 0x464C4A54  # "FLJT": marks the file as a flujo-trio store

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    pipeline_name TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    total_cost_usd REAL NOT NULL,
    total_tokens INTEGER NOT NULL,
    origin TEXT,
    state TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_status ON runs (status);
CREATE TABLE IF NOT EXISTS cache (
    key TEXT PRIMARY KEY,
    stored_at REAL NOT NULL,
    value TEXT NOT NULL
);
"""


class SqliteDatabase:
    """The connection, its lock and its schema checks; shared by the store and cache."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        try:
            connection = sqlite3.connect(
                self.path, timeout=30, check_same_thread=False, isolation_level=None
            )
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            self._check_schema(connection)
        except sqlite3.DatabaseError as error:
            raise StoreError(
                f"{self.path} is not a flujo-trio SQLite store ({error}); "
                "point the store at a new file or at one flujo-trio created"
            ) from error
        return connection

    def _check_schema(self, connection: sqlite3.Connection) -> None:
        app_id = connection.execute("PRAGMA application_id").fetchone()[0]
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        tables = connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if app_id == 0 and tables == 0:
            with connection:
                connection.execute("BEGIN IMMEDIATE")
                connection.executescript(_SCHEMA)
                connection.execute(f"PRAGMA application_id={APPLICATION_ID}")
                connection.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            return
        if app_id != APPLICATION_ID:
            raise StoreError(
                f"{self.path} is a SQLite database but not a flujo-trio store; "
                "use another path for the store"
            )
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written by a newer flujo-trio (store schema {version}, "
                f"this version reads up to {SCHEMA_VERSION}); upgrade flujo-trio to open it"
            )

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            if self._connection is None:
                self._connection = self._connect()
            return fn(self._connection)

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` with the connection in a worker thread.

        Not abandoned on cancel: a transaction that started finishes (or rolls back)
        before the caller sees the cancellation, so nothing is left half-written.
        """
        return await trio.to_thread.run_sync(self._call, fn)

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None


def _transaction(sql: str, params: tuple[Any, ...]) -> Callable[[sqlite3.Connection], int]:
    def run(connection: sqlite3.Connection) -> int:
        with connection:
            connection.execute("BEGIN IMMEDIATE")
            return connection.execute(sql, params).rowcount

    return run


_SUMMARY = (
    "SELECT run_id, status, pipeline_name, created_at, updated_at, "
    "total_cost_usd, total_tokens, origin FROM runs"
)


def _summary(row: tuple[Any, ...]) -> RunSummary:
    run_id, status, name, created, updated, cost, tokens, origin = row
    return RunSummary(
        run_id,
        RunStatus(status),
        name,
        datetime.fromisoformat(created),
        datetime.fromisoformat(updated),
        cost,
        tokens,
        origin,
    )


class SqliteStore:
    """A :class:`StateStore` in one SQLite file (created on first use)."""

    #: Survives the process: the runner checkpoints after every top-level step.
    durable = True

    def __init__(self, path: str | os.PathLike[str] = "flujo_trio.db") -> None:
        self.database = SqliteDatabase(path)

    @property
    def path(self) -> str:
        return self.database.path

    async def save_run(self, state: RunState) -> None:
        # Serialise before touching the database: a value that cannot be stored
        # fails here, and the previous checkpoint stays as it was.
        data = unstructure(state, RunState, what=f"run {state.run_id!r}")
        try:
            text = json.dumps(data, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise SerializationError(f"Cannot serialize run {state.run_id!r}: {error}") from error
        now = datetime.now(UTC).isoformat()
        await self.database.run(
            _transaction(
                """
                INSERT INTO runs (run_id, pipeline_name, status, created_at, updated_at,
                                  total_cost_usd, total_tokens, origin, state)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (run_id) DO UPDATE SET
                    pipeline_name = excluded.pipeline_name, status = excluded.status,
                    updated_at = excluded.updated_at, total_cost_usd = excluded.total_cost_usd,
                    total_tokens = excluded.total_tokens, origin = excluded.origin,
                    state = excluded.state
                """,
                (
                    state.run_id,
                    state.pipeline_name,
                    state.status.value,
                    state.created_at.isoformat(),
                    now,
                    state.total_cost_usd,
                    state.spent_tokens,
                    state.origin,
                    text,
                ),
            )
        )

    async def load_run(self, run_id: str) -> RunState | None:
        def fetch(connection: sqlite3.Connection) -> tuple[str, str, str] | None:
            row = connection.execute(
                "SELECT state, created_at, updated_at FROM runs WHERE run_id = ?", (run_id,)
            ).fetchone()
            return None if row is None else (row[0], row[1], row[2])

        row = await self.database.run(fetch)
        if row is None:
            return None
        text, created_at, updated_at = row
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise SerializationError(
                f"Cannot load run {run_id!r}: its stored state is not valid JSON ({error})"
            ) from error
        state = structure(data, RunState, what=f"run {run_id!r}")
        state.created_at = datetime.fromisoformat(created_at)
        state.updated_at = datetime.fromisoformat(updated_at)
        return state

    async def list_runs(self, status: RunStatus | None = None) -> list[RunSummary]:
        def fetch(connection: sqlite3.Connection) -> list[tuple[Any, ...]]:
            if status is None:
                return connection.execute(_SUMMARY + " ORDER BY updated_at DESC").fetchall()
            return connection.execute(
                _SUMMARY + " WHERE status = ? ORDER BY updated_at DESC", (status.value,)
            ).fetchall()

        return [_summary(row) for row in await self.database.run(fetch)]

    async def get_summary(self, run_id: str) -> RunSummary | None:
        """The listing row of one run, without loading (or validating) its state."""

        def fetch(connection: sqlite3.Connection) -> tuple[Any, ...] | None:
            row = connection.execute(_SUMMARY + " WHERE run_id = ?", (run_id,)).fetchone()
            return None if row is None else tuple(row)

        row = await self.database.run(fetch)
        return None if row is None else _summary(row)

    async def delete_run(self, run_id: str) -> bool:
        deleted = await self.database.run(
            _transaction("DELETE FROM runs WHERE run_id = ?", (run_id,))
        )
        return deleted > 0

    def close(self) -> None:
        self.database.close()
