"""The PostgreSQL store's tables, kept in a schema of their own, and forward-only migrations.

A store owns one PostgreSQL schema (``flujo_trio`` unless told otherwise), so its
tables never meet an application's own ``runs`` table, and several stores can share
one database. ``schema_version`` records every migration applied. Opening a store
applies the missing migrations in order inside one transaction that first takes an
advisory lock for that schema: workers that start together wait for the first one
and then find the schema finished, never half made (``CREATE ... IF NOT EXISTS``
alone is not safe against concurrent creators in PostgreSQL).

State columns are ``json``, not ``jsonb``: ``json`` keeps the exact text the codec
wrote, while ``jsonb`` reorders object keys, turns ``1e16`` into an integer and
refuses ``\\u0000`` in strings, so a round trip would not give the stored value back.
Both are JSON to PostgreSQL (validated on insert, ``->`` and ``->>`` work in psql;
cast with ``::jsonb`` to index or compare).
"""

from __future__ import annotations

import hashlib
from typing import Any

import attrs
import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from ..errors import StoreError


@attrs.frozen
class Migration:
    """One step of the schema: statements with ``{schema}`` where the schema goes."""

    version: int
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        (
            """CREATE TABLE {schema}.runs (
                run_id text PRIMARY KEY,
                pipeline_name text NOT NULL,
                status text NOT NULL,
                created_at timestamptz NOT NULL,
                updated_at timestamptz NOT NULL,
                total_cost_usd numeric NOT NULL,
                total_tokens bigint NOT NULL,
                total_requests bigint NOT NULL,
                origin text,
                fingerprint text,
                owner text,
                owner_since timestamptz,
                lease_expires_at timestamptz,
                version bigint NOT NULL,
                next_seq bigint NOT NULL,
                input json NOT NULL,
                context json NOT NULL,
                initial_context json NOT NULL,
                limits json NOT NULL,
                shape json NOT NULL
            )""",
            "CREATE INDEX runs_status ON {schema}.runs (status)",
            "CREATE INDEX runs_updated ON {schema}.runs (updated_at)",
            "CREATE INDEX runs_pipeline ON {schema}.runs (pipeline_name)",
            """CREATE TABLE {schema}.journal (
                run_id text NOT NULL REFERENCES {schema}.runs (run_id) ON DELETE CASCADE,
                seq bigint NOT NULL,
                kind text NOT NULL,
                address json NOT NULL,
                entry json NOT NULL,
                PRIMARY KEY (run_id, seq)
            )""",
        ),
    ),
)

#: The schema this version of flujo-trio writes; a newer one is refused.
SCHEMA_VERSION = MIGRATIONS[-1].version


def lock_key(schema: str) -> int:
    """The advisory lock that serialises openers of one schema (a signed 64-bit key)."""
    digest = hashlib.blake2b(f"flujo-trio:{schema}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def prepare(
    connection: psycopg.Connection[Any],
    schema: str,
    migrations: tuple[Migration, ...] = MIGRATIONS,
) -> int:
    """Create or migrate the store in ``schema``; returns the version it is now at.

    Raises :class:`StoreError` for a schema that holds other tables, or one written by
    a newer flujo-trio.
    """
    latest = migrations[-1].version
    name = sql.Identifier(schema)
    with connection.transaction(), connection.cursor(row_factory=tuple_row) as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [lock_key(schema)])
        cursor.execute(
            "SELECT to_regclass(%s) IS NOT NULL, "
            "(SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            " WHERE n.nspname = %s)",
            [sql.SQL("{}.schema_version").format(name).as_string(connection), schema],
        )
        versioned, relations = cursor.fetchone() or (False, 0)
        if versioned:
            cursor.execute(
                sql.SQL("SELECT coalesce(max(version), 0) FROM {}.schema_version").format(name)
            )
            version = int((cursor.fetchone() or (0,))[0])
        elif relations:
            raise StoreError(
                f"PostgreSQL schema {schema!r} holds tables that are not a flujo-trio store; "
                "give the store a schema of its own (PostgresStore(..., schema=...))"
            )
        else:
            cursor.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(name))
            cursor.execute(
                sql.SQL(
                    "CREATE TABLE {}.schema_version (version integer PRIMARY KEY, "
                    "applied_at timestamptz NOT NULL DEFAULT now())"
                ).format(name)
            )
            version = 0
        if version > latest:
            raise StoreError(
                f"PostgreSQL schema {schema!r} was written by a newer flujo-trio (store schema "
                f"{version}, this version reads up to {latest}); upgrade flujo-trio to open it"
            )
        for migration in migrations:
            if migration.version <= version:
                continue
            for statement in migration.statements:
                cursor.execute(sql.SQL(statement).format(schema=name))
            cursor.execute(
                sql.SQL("INSERT INTO {}.schema_version (version) VALUES (%s)").format(name),
                [migration.version],
            )
    return latest
