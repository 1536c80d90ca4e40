"""The SQLite store's tables, and forward-only migrations from every older schema.

Schema 1 (flujo-trio 0.1) kept each run as one JSON document holding the whole step
tree. Schema 2 keeps a small header row per run and an append-only journal, so a
checkpoint writes what changed instead of the whole run. Migrations run inside the
opener's write transaction (see ``SqliteDatabase._prepare``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

#: Bumped when the tables change; a store written by a newer version is refused.
SCHEMA_VERSION = 2
APPLICATION_ID = 0x464C4A54  # "FLJT": marks the file as a flujo-trio store

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    pipeline_name TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    total_cost_usd TEXT NOT NULL,
    total_tokens INTEGER NOT NULL,
    total_requests INTEGER NOT NULL,
    origin TEXT,
    fingerprint TEXT,
    owner TEXT,
    owner_since TEXT,
    lease_expires_at TEXT,
    version INTEGER NOT NULL,
    next_seq INTEGER NOT NULL,
    input TEXT NOT NULL,
    context TEXT NOT NULL,
    initial_context TEXT NOT NULL,
    limits TEXT NOT NULL,
    shape TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_status ON runs (status);
CREATE INDEX IF NOT EXISTS runs_updated ON runs (updated_at);
CREATE INDEX IF NOT EXISTS runs_pipeline ON runs (pipeline_name);
CREATE TABLE IF NOT EXISTS journal (
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    address TEXT NOT NULL,
    entry TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cache (
    key TEXT PRIMARY KEY,
    stored_at REAL NOT NULL,
    value TEXT NOT NULL
);
"""


def migrate(connection: sqlite3.Connection, from_version: int) -> None:
    """Bring a store at ``from_version`` (0: a new file) to :data:`SCHEMA_VERSION`."""
    if from_version == 1:
        connection.execute("ALTER TABLE runs RENAME TO runs_v1")
        connection.execute("DROP INDEX IF EXISTS runs_status")
    for statement in SCHEMA.split(";"):
        if statement.strip():
            connection.execute(statement)
    if from_version == 1:
        _copy_v1_runs(connection)
        connection.execute("DROP TABLE runs_v1")


# -- schema 1 -> 2 ---------------------------------------------------------------------------


def _copy_v1_runs(connection: sqlite3.Connection) -> None:
    """Each 0.1 run becomes a header row and a journal of its finished steps.

    0.1 stored no pipeline shape, so migrated runs resume without a shape check, and
    the steps of loop iterations are numbered by their order in the stored tree.
    """
    rows = connection.execute(
        "SELECT run_id, pipeline_name, status, created_at, updated_at, total_tokens, origin, "
        "state FROM runs_v1"
    ).fetchall()
    for run_id, name, status, created, updated, tokens, origin, text in rows:
        try:
            state = json.loads(text)
        except ValueError:
            state = {}
        context = state.get("context", {"__type__": "flujo_trio.context.PipelineContext"})
        entries = list(_v1_entries(state.get("steps") or [], (), ()))
        connection.execute(
            """INSERT INTO runs (run_id, pipeline_name, status, created_at, updated_at,
                   total_cost_usd, total_tokens, total_requests, origin, fingerprint, owner,
                   owner_since, lease_expires_at, version, next_seq, input, context,
                   initial_context, limits, shape)
               VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, NULL, NULL, NULL, NULL, 1, ?, ?, ?, 'null',
                       ?, 'null')""",
            (
                run_id,
                name,
                status,
                created,
                updated,
                str(Decimal(str(state.get("spent_cost", "0")))),
                tokens,
                origin,
                len(entries),
                json.dumps(state.get("input")),
                json.dumps(context),
                json.dumps(state.get("limits") or {}),
            ),
        )
        connection.executemany(
            "INSERT INTO journal (run_id, seq, kind, address, entry) VALUES (?, ?, 'step', ?, ?)",
            [
                (run_id, seq, json.dumps(entry["address"]), json.dumps(entry))
                for seq, entry in enumerate(entries)
            ],
        )


def _v1_entries(
    records: list[dict[str, Any]], address: tuple[Any, ...], position: tuple[int, ...]
) -> Iterator[dict[str, Any]]:
    first_name = records[0].get("name") if records else None
    iteration = 0
    for index, record in enumerate(records):
        name = str(record.get("name", "?"))
        if name == first_name:
            iteration += 1
        repeats = sum(1 for r in records if r.get("name") == first_name) > 1
        here_address = (*address, iteration, name) if repeats else (*address, name)
        here_position = (*position, iteration, index) if repeats else (*position, index)
        yield from _v1_entries(record.get("children") or [], here_address, here_position)
        success, paused = record.get("success"), record.get("paused")
        if paused:
            status = "paused"
        elif success is True:
            status = "ok"
        elif success is False:
            cancelled = (record.get("metadata") or {}).get("cancelled")
            status = "cancelled" if cancelled else "failed"
        else:
            continue
        metadata = dict(record.get("metadata") or {})
        pause_message = metadata.pop("pause_message", None)
        yield {
            "address": list(here_address),
            "position": list(here_position),
            "kind": "step",
            "status": status,
            "output": record.get("output"),
            "attempts": record.get("attempts", 0),
            "cost_usd": str(record.get("own_cost", "0")),
            "tokens": record.get("own_tokens", 0),
            "latency_s": record.get("latency_s") or 0.0,
            "feedback": record.get("feedback"),
            "metadata": metadata,
            "pause_message": pause_message,
            "denied": bool(metadata.pop("reservation_denied", False)),
            "changes": [],
        }
