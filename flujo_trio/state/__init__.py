"""Run state and where it is kept: the StateStore protocol, memory and SQLite stores."""

from .memory import MemoryStore as MemoryStore
from .models import RunState as RunState
from .models import RunSummary as RunSummary
from .protocol import StateStore as StateStore
from .sqlite import SqliteStore as SqliteStore
from .sqlite_cache import SqliteCache as SqliteCache
