"""One SQLite file: its connection, its schema (created and migrated atomically), and
errors that say what is wrong with the file instead of a bare ``sqlite3`` exception.

The connection is used by one worker thread at a time (a lock serialises the calls
Trio hands to threads), in WAL mode so readers in other processes are not blocked.
It is closed by :meth:`SqliteDatabase.close`, or when the database object is
garbage-collected, so a forgotten store never leaks a connection.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import trio

from ..errors import StoreError
from .sqlite_schema import APPLICATION_ID, SCHEMA_VERSION, migrate

T = TypeVar("T")


def explain(error: sqlite3.Error, path: str) -> StoreError:
    """A :class:`StoreError` naming the file and the real reason, with what to do."""
    reason = str(error) or type(error).__name__
    directory = os.path.dirname(os.path.abspath(path))
    hint = ""
    if os.path.isdir(path):
        hint = "; it is a directory: give the path of a file (it is created on first use)"
    elif not os.path.isdir(directory):
        hint = f"; the directory {directory} does not exist: create it first"
    elif "readonly" in reason or "read-only" in reason or not os.access(directory, os.W_OK):
        if os.path.exists(path) and not os.access(path, os.W_OK):
            hint = "; the file is read-only: make it writable or use another path"
        elif not os.access(directory, os.W_OK):
            hint = (
                f"; the directory {directory} is read-only (SQLite needs to create its "
                "journal files next to the database): use a writable directory"
            )
    elif "locked" in reason or "busy" in reason:
        hint = "; another process holds a long write lock on it: retry later"
    elif isinstance(error, sqlite3.DatabaseError) and "not a database" in reason:
        hint = (
            "; it is not a flujo-trio SQLite store: point the store at a new file or at "
            "one flujo-trio created"
        )
    return StoreError(f"SQLite store {path}: {reason}{hint}")


def _close(connection: sqlite3.Connection) -> None:
    connection.close()


class SqliteDatabase:
    """The connection, its lock and its schema; shared by the store and the cache."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._closed = False

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self.path, timeout=30, check_same_thread=False, isolation_level=None
        )
        try:
            connection.execute("PRAGMA busy_timeout=30000")
            if connection.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA foreign_keys=ON")
            self._prepare(connection)
        except BaseException:
            connection.close()
            raise
        return connection

    def _prepare(self, connection: sqlite3.Connection) -> None:
        """Create or migrate the schema in one write transaction: a concurrent opener
        waits for the lock and then sees the finished schema, never half of it."""
        connection.execute("BEGIN IMMEDIATE")
        try:
            app_id = connection.execute("PRAGMA application_id").fetchone()[0]
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            tables = connection.execute(
                "SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
            ).fetchone()[0]
            if app_id == 0 and tables == 0:
                version = 0
            elif app_id != APPLICATION_ID:
                raise StoreError(
                    f"{self.path} is a SQLite database but not a flujo-trio store; "
                    "use another path for the store"
                )
            elif version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} was written by a newer flujo-trio (store schema {version}, "
                    f"this version reads up to {SCHEMA_VERSION}); upgrade flujo-trio to open it"
                )
            if version < SCHEMA_VERSION:
                migrate(connection, version)
                connection.execute(f"PRAGMA application_id={APPLICATION_ID}")
                connection.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            if self._closed:
                # Reopening would leave a connection nobody closes: say so instead.
                raise StoreError(f"SQLite store {self.path} is closed: open a new store to use it")
            try:
                if self._connection is None:
                    self._connection = self._connect()
                    self._finalizer = weakref.finalize(self, _close, self._connection)
                return fn(self._connection)
            except sqlite3.Error as error:
                raise explain(error, self.path) from error

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` with the connection in a worker thread.

        Not abandoned on cancel: a transaction that started finishes (or rolls back)
        before the caller sees the cancellation, so nothing is left half-written.
        """
        return await trio.to_thread.run_sync(self._call, fn)

    def run_now(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in this thread (for synchronous callers)."""
        return self._call(fn)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._finalizer is not None:
                self._finalizer()
                self._finalizer = None
            self._connection = None


def write(connection: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    """``fn`` inside one ``BEGIN IMMEDIATE`` transaction: it commits whole or not at all."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        result = fn(connection)
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
    return result
