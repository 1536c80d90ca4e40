"""One PostgreSQL database behind a store: its connection pool, its schema, worker
threads, and errors that say what went wrong without showing the password.

psycopg's async connections run on asyncio only, so the store uses its blocking API
in Trio worker threads: one thread per call, at most ``pool_size`` at once (a
:class:`trio.CapacityLimiter` of the store's own, so no thread sits waiting for a free
connection). A call in a thread is never abandoned on cancel: a transaction that
started commits or rolls back before the caller sees the cancellation.

The pool opens on first use, after one direct connection has created or migrated
the schema (a direct connection also reports the real reason a server cannot be
reached, where the pool would only time out). It closes with :meth:`close`, or when
the database object is garbage-collected.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
import psycopg_pool
import trio
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row
from psycopg.types.string import TextLoader

from ..errors import ConfigurationError, SerializationError, StoreError
from .postgres_schema import prepare

T = TypeVar("T")
Connection = psycopg.Connection[dict[str, Any]]

#: Seconds to wait for a new connection unless the DSN says (``connect_timeout``).
CONNECT_TIMEOUT_S = 10


def _secrets(dsn: str) -> list[str]:
    """Every spelling of the password a message could contain (even of a bad DSN)."""
    found = re.findall(r"password\s*=\s*'?([^\s']+)", dsn)
    found += re.findall(r"://[^:/@]*:([^@/]*)@", dsn)
    try:
        password = conninfo_to_dict(dsn).get("password")
    except psycopg.Error:
        password = None
    if password:
        found.append(str(password))
    return [secret for secret in found if secret]


def scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def describe(dsn: str) -> str:
    """The DSN as a URL without its password, to name the server in messages."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.Error:
        return "postgresql://(an invalid DSN)"
    user = f"{params['user']}@" if params.get("user") else ""
    host = str(params.get("host") or "")
    port = f":{params['port']}" if params.get("port") else ""
    return f"postgresql://{user}{host}{port}/{params.get('dbname') or ''}"


def check_dsn(dsn: object) -> dict[str, Any]:
    if not isinstance(dsn, str) or not dsn.strip():
        raise ConfigurationError(
            "PostgresStore needs a DSN such as postgresql://user:password@host:5432/dbname, "
            f"got {type(dsn).__name__}"
        )
    try:
        return dict(conninfo_to_dict(dsn))
    except psycopg.Error as error:
        reason = scrub(str(error), _secrets(dsn))
        raise ConfigurationError(
            f"Invalid PostgreSQL DSN ({reason}); write it as "
            "postgresql://user:password@host:5432/dbname or 'host=... dbname=...'"
        ) from None


def _hint(error: psycopg.Error) -> str:
    if isinstance(error, pg_errors.InsufficientPrivilege):
        return (
            "; the database user lacks a privilege the store needs (it creates its schema "
            "and tables on first use): grant it, or create the schema for the store"
        )
    if isinstance(error, pg_errors.UndefinedTable):
        return "; the store's tables are gone: reopen the store to create them again"
    if isinstance(error, psycopg_pool.PoolTimeout):
        return (
            "; every connection of the pool stayed busy: give the store a larger pool_size, "
            "or check for long transactions on the server"
        )
    if isinstance(error, psycopg.OperationalError):
        return (
            "; check that the server is running and reachable, and the DSN's host, port, "
            "user, password and database name"
        )
    return ""


def _configure(connection: Connection) -> None:
    """Every pooled connection: JSON columns come back as the text that was stored
    (decoded by the store's safe converter), timestamps in UTC."""
    connection.adapters.register_loader("json", TextLoader)
    connection.execute("SET TIME ZONE 'UTC'")


def _close(pool: psycopg_pool.ConnectionPool[Any]) -> None:
    pool.close(timeout=5.0)


class PostgresDatabase:
    """The pool, the schema and error translation; used by :class:`PostgresStore`."""

    def __init__(self, dsn: str, *, schema: str, pool_size: int) -> None:
        params = check_dsn(dsn)
        self._dsn = dsn
        self._kwargs: dict[str, Any] = {"autocommit": True, "row_factory": dict_row}
        if "connect_timeout" not in params:
            self._kwargs["connect_timeout"] = CONNECT_TIMEOUT_S
        self._secrets = _secrets(dsn)
        self.where = describe(dsn)
        self.schema = schema
        self.pool_size = pool_size
        self._limiter = trio.CapacityLimiter(pool_size)
        self._lock = threading.Lock()
        self._pool: psycopg_pool.ConnectionPool[Any] | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._closed = False

    def explain(self, error: psycopg.Error) -> StoreError:
        """A :class:`StoreError` naming the server and the real reason, never the password."""
        reason = " ".join(str(error).split()) or type(error).__name__
        message = f"PostgreSQL store {self.where} (schema {self.schema}): {reason}{_hint(error)}"
        return StoreError(scrub(message, self._secrets))

    def connect(self) -> Connection:
        """A connection of its own (not pooled), configured like the pooled ones."""
        connection = psycopg.connect(self._dsn, **self._kwargs)
        _configure(connection)
        return connection

    def _open(self) -> psycopg_pool.ConnectionPool[Any]:
        with self.connect() as connection:
            prepare(connection, self.schema)
        pool: psycopg_pool.ConnectionPool[Any] = psycopg_pool.ConnectionPool(
            self._dsn,
            kwargs=self._kwargs,
            min_size=1,
            max_size=self.pool_size,
            open=False,
            configure=_configure,
            name=f"flujo-trio:{self.schema}",
        )
        pool.open(wait=False)
        self._finalizer = weakref.finalize(self, _close, pool)
        return pool

    def _call(self, fn: Callable[[Connection], T]) -> T:
        try:
            with self._lock:
                if self._closed:
                    # Reopening would leave a pool (and its threads) nobody closes.
                    raise StoreError(
                        f"PostgreSQL store {self.where} (schema {self.schema}) is closed: "
                        "open a new store to use it"
                    )
                if self._pool is None:
                    self._pool = self._open()
                pool = self._pool
            try:
                with pool.connection() as connection:
                    return fn(connection)
            except psycopg_pool.PoolTimeout as timeout:
                # The pool only says it waited; a direct connection says why.
                with self.connect():
                    pass
                raise timeout
        except psycopg.Error as error:
            raise self.explain(error) from error
        except UnicodeEncodeError as error:
            # The driver sends UTF-8: text with a lone surrogate cannot be sent at all.
            raise SerializationError(
                f"Cannot store a value in {self.where}: it holds text that is not valid "
                f"Unicode ({error.reason}: {error.object[error.start : error.end]!r}); "
                "clean the text (e.g. encode and decode it with errors='replace')"
            ) from error

    async def run(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` with a pooled connection in a worker thread (see the module)."""
        return await trio.to_thread.run_sync(self._call, fn, limiter=self._limiter)

    async def aclose(self) -> None:
        """Close the pool in a worker thread (closing joins the pool's own threads)."""
        await trio.to_thread.run_sync(self.close)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._finalizer is not None:
                self._finalizer()
                self._finalizer = None
            self._pool = None
