"""The store behind ``--db``: a SQLite file, or a PostgreSQL database given by its DSN."""

from __future__ import annotations

from pathlib import Path

from ..state.protocol import StateStore

#: ``--db`` values that name a PostgreSQL database rather than a file.
DSN_PREFIXES = ("postgresql://", "postgres://")


def is_dsn(db: str) -> bool:
    return db.startswith(DSN_PREFIXES)


def open_store(db: str) -> StateStore:
    """A SQLite store for a path, a PostgreSQL store for a ``postgresql://`` DSN (its
    module, and psycopg, load only then)."""
    if is_dsn(db):
        from ..state.postgres import PostgresStore

        return PostgresStore(db)
    from ..state.sqlite import SqliteStore

    return SqliteStore(db)


def shown(db: str) -> str:
    """``db`` as messages print it: a DSN without its password."""
    if is_dsn(db):
        from ..state.postgres_db import describe

        return describe(db)
    return db


def missing(db: str) -> bool:
    """True for a SQLite path with no file yet (a DSN is checked by connecting)."""
    return not is_dsn(db) and not Path(db).exists()
