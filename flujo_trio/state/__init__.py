"""Run state and where it is kept: the StateStore protocol and the stores.

The SQLite (and PostgreSQL) stores load their database modules only when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .memory import MemoryStore as MemoryStore
from .protocol import StateStore as StateStore
from .records import RunState as RunState
from .records import RunSummary as RunSummary

if TYPE_CHECKING:
    from .postgres import PostgresStore as PostgresStore
    from .sqlite import SqliteStore as SqliteStore
    from .sqlite_cache import SqliteCache as SqliteCache

_LAZY = {
    "PostgresStore": ".postgres",
    "SqliteStore": ".sqlite",
    "SqliteCache": ".sqlite_cache",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module, __name__), name)
