"""A step cache in SQLite: results survive restarts and are shared by processes."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from ..cache import CachedOutput, make_cache_key
from ..errors import ConfigurationError, SerializationError
from ..serialization import structure, unstructure
from .sqlite_db import SqliteDatabase, write


class SqliteCache:
    """Same interface as :class:`~flujo_trio.MemoryCache`, kept in a SQLite file.

    Args:
        path: the database file (may be the same file as a ``SqliteStore``).
        ttl_s: seconds an entry stays fresh (wall clock, shared by processes).
        key: ``fn(data) -> str`` replacing the default fingerprint of the input.
        max_entries: oldest entries are evicted past this many; None: unbounded.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        ttl_s: float | None = None,
        key: Callable[[Any], str] | None = None,
        max_entries: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        for name, value in (("ttl_s", ttl_s), ("max_entries", max_entries)):
            if value is not None and (isinstance(value, bool) or value <= 0):
                raise ConfigurationError(f"SqliteCache.{name} must be > 0 or None, got {value}")
        self.database = SqliteDatabase(path)
        self.ttl_s, self.key, self.max_entries, self.clock = ttl_s, key, max_entries, clock

    def make_key(self, step_name: str, data: Any) -> str | None:
        return make_cache_key(self.key, step_name, data)

    async def get(self, key: str) -> CachedOutput | None:
        def fetch(connection: sqlite3.Connection) -> tuple[float, str] | None:
            row = connection.execute(
                "SELECT stored_at, value FROM cache WHERE key = ?", (key,)
            ).fetchone()
            return None if row is None else (row[0], row[1])

        row = await self.database.run(fetch)
        if row is None:
            return None
        stored_at, text = row
        if self.ttl_s is not None and self.clock() - stored_at > self.ttl_s:
            await self.database.run(
                lambda c: write(c, lambda c: c.execute("DELETE FROM cache WHERE key = ?", (key,)))
            )
            return None
        try:
            return structure(json.loads(text), CachedOutput, what=f"cache entry {key!r}")
        except (SerializationError, json.JSONDecodeError):
            return None  # an unreadable entry is a miss; the next success replaces it

    async def put(self, key: str, value: CachedOutput) -> None:
        try:
            text = json.dumps(unstructure(value, CachedOutput, what=f"cache entry {key!r}"))
        except (SerializationError, TypeError, ValueError):
            return  # outputs that cannot be stored are simply not cached
        max_entries = self.max_entries

        def store(connection: sqlite3.Connection) -> None:
            connection.execute(
                "INSERT OR REPLACE INTO cache (key, stored_at, value) VALUES (?, ?, ?)",
                (key, self.clock(), text),
            )
            if max_entries is not None:
                connection.execute(
                    "DELETE FROM cache WHERE key NOT IN "
                    "(SELECT key FROM cache ORDER BY stored_at DESC LIMIT ?)",
                    (max_entries,),
                )

        await self.database.run(lambda c: write(c, store))

    async def __aenter__(self) -> SqliteCache:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.database.close()

    async def aclose(self) -> None:
        self.database.close()

    def close(self) -> None:
        self.database.close()
