"""SQLite store: embedded, zero-setup, durable; state kept as JSON text.

A run is a header row (status, totals, owner and lease, and its input, context,
limits and shape as JSON columns) plus an append-only journal. A checkpoint appends
what finished since the last one and updates the header in one transaction, so its
cost grows with what changed, not with the run. ``sqlite3 flujo_trio.db 'select
entry from journal'`` is readable: enums are stored by value.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import attrs

from ..context import RunStatus, utc_now
from ..errors import ResumeError
from ..usage import UsageLimits
from .codec import (
    EncodedEntry,
    decode_run,
    encode_context,
    encode_entry,
    encode_header,
    encode_limits,
    holding_from_row,
    summary_from_row,
)
from .journal import Entry
from .owner import DEFAULT_LEASE_S, Claim, check_lease, claim_refusal, lost_ownership, run_exists
from .protocol import ClosesOnExit, Finish
from .records import RunState, RunSummary, Spent, listing_filters, timestamp
from .sqlite_db import SqliteDatabase, write

_SUMMARY_COLUMNS = (
    "run_id, status, pipeline_name, created_at, updated_at, total_cost_usd, total_tokens, "
    "total_requests, origin, owner"
)
_STATE_COLUMNS = (
    _SUMMARY_COLUMNS + ", fingerprint, owner_since, lease_expires_at, version, next_seq, "
    "input, context, initial_context, limits, shape"
)


def _row(cursor: sqlite3.Cursor, values: tuple[Any, ...] | None) -> dict[str, Any] | None:
    if values is None:
        return None
    return {column[0]: value for column, value in zip(cursor.description, values, strict=True)}


def _fetch_state(connection: sqlite3.Connection, run_id: str) -> dict[str, Any] | None:
    cursor = connection.execute(f"SELECT {_STATE_COLUMNS} FROM runs WHERE run_id = ?", (run_id,))
    return _row(cursor, cursor.fetchone())


class SqliteStore(ClosesOnExit):
    """A :class:`~flujo_trio.StateStore` in one SQLite file (created on first use).

    Args:
        path: the database file; its directory must exist and be writable.
        lease_s: how long an owner's lease lasts without renewal (the running process
            renews it about three times per lease).
        clock: the wall clock leases are measured on (timezone-aware UTC).

    Use it as an async context manager (or call :meth:`aclose`) to close the
    connection; a store that is garbage-collected closes it too.
    """

    #: Survives the process: every finished call is written before its branch goes on.
    durable = True

    def __init__(
        self,
        path: str | os.PathLike[str] = "flujo_trio.db",
        *,
        lease_s: float = DEFAULT_LEASE_S,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.database = SqliteDatabase(path)
        self.lease_s = check_lease(lease_s)
        self.clock = clock

    @property
    def path(self) -> str:
        return self.database.path

    def __repr__(self) -> str:
        return f"SqliteStore({self.path!r})"

    async def aclose(self) -> None:
        self.database.close()

    def close(self) -> None:
        self.database.close()

    def encode_entry(self, entry: Entry) -> EncodedEntry:
        return encode_entry(entry)

    # -- writes ------------------------------------------------------------------------

    async def create_run(self, state: RunState) -> None:
        header = encode_header(state)
        now = self.clock()
        lease = Claim(state.owner, now, self.lease_s).expires if state.owner else None
        entries = [encode_entry(entry, state.run_id) for entry in state.journal]

        def insert(connection: sqlite3.Connection) -> bool:
            cursor = connection.execute(
                """INSERT INTO runs (run_id, pipeline_name, status, created_at, updated_at,
                       total_cost_usd, total_tokens, total_requests, origin, fingerprint,
                       owner, owner_since, lease_expires_at, version, next_seq, input,
                       context, initial_context, limits, shape)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (run_id) DO NOTHING""",
                (
                    state.run_id,
                    state.pipeline_name,
                    state.status.value,
                    timestamp(now),
                    timestamp(now),
                    str(state.spent.cost_usd),
                    state.spent.tokens,
                    state.spent.requests,
                    state.origin,
                    state.fingerprint,
                    state.owner,
                    timestamp(now) if state.owner else None,
                    timestamp(lease) if lease else None,
                    len(entries),
                    *(header[name] for name in ("input", "context", "initial_context")),
                    header["limits"],
                    header["shape"],
                ),
            )
            if cursor.rowcount == 0:
                return False
            _insert_entries(connection, state.run_id, 0, entries)
            return True

        if not await self.database.run(lambda c: write(c, insert)):
            raise run_exists(state.run_id)

    async def claim_run(
        self,
        run_id: str,
        owner: str,
        *,
        expected_version: int | None,
        limits: UsageLimits,
    ) -> RunState:
        claim = Claim(owner, self.clock(), self.lease_s)
        limits_text = encode_limits(limits)

        def take(connection: sqlite3.Connection) -> RunState | Exception:
            row = _fetch_state(connection, run_id)
            if row is None:
                return ResumeError(f"No run {run_id!r} in {self.path}")
            refusal = claim_refusal(holding_from_row(row), claim, expected_version)
            if refusal is not None:
                return refusal
            # Decoded before the claim commits: a run that cannot be loaded stays as it was
            # (the error rolls the transaction back).
            loaded = decode_run(row, _fetch_entries(connection, run_id))
            connection.execute(
                """UPDATE runs SET status = ?, owner = ?, owner_since = ?, lease_expires_at = ?,
                       limits = ?, updated_at = ?, version = version + 1
                   WHERE run_id = ?""",
                (
                    RunStatus.RUNNING.value,
                    claim.owner,
                    timestamp(claim.now),
                    timestamp(claim.expires),
                    limits_text,
                    timestamp(claim.now),
                    run_id,
                ),
            )
            return attrs.evolve(
                loaded,
                status=RunStatus.RUNNING,
                owner=claim.owner,
                owner_since=claim.now,
                lease_expires_at=claim.expires,
                limits=limits,
                updated_at=claim.now,
                version=loaded.version + 1,
            )

        outcome = await self.database.run(lambda c: write(c, take))
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def append(
        self,
        run_id: str,
        owner: str,
        entries: Sequence[Any],
        spent: Spent,
        *,
        finish: Finish | None = None,
    ) -> None:
        now = self.clock()
        lease = Claim(owner, now, self.lease_s).expires
        context = (
            encode_context(finish.context, run_id)
            if finish is not None and finish.context is not None
            else None
        )

        def add(connection: sqlite3.Connection) -> Exception | None:
            found = connection.execute(
                "SELECT owner, next_seq FROM runs WHERE run_id = ?", (run_id,)
            ).fetchone()
            if found is None or found[0] != owner:
                return lost_ownership(run_id, found[0] if found else None)
            next_seq = found[1]
            _insert_entries(connection, run_id, next_seq, entries)
            assignments = [
                "total_cost_usd = ?",
                "total_tokens = ?",
                "total_requests = ?",
                "updated_at = ?",
                "lease_expires_at = ?",
                "next_seq = ?",
                "version = version + 1",
            ]
            values: list[Any] = [
                str(spent.cost_usd),
                spent.tokens,
                spent.requests,
                timestamp(now),
                timestamp(lease),
                next_seq + len(entries),
            ]
            if finish is not None:
                assignments.append("status = ?")
                values.append(finish.status.value)
                if context is not None:
                    assignments.append("context = ?")
                    values.append(context)
                if finish.status is not RunStatus.RUNNING:
                    assignments += [
                        "owner = NULL",
                        "owner_since = NULL",
                        "lease_expires_at = NULL",
                    ]
                    assignments.remove("lease_expires_at = ?")
                    values.remove(timestamp(lease))
            connection.execute(
                f"UPDATE runs SET {', '.join(assignments)} WHERE run_id = ?", (*values, run_id)
            )
            return None

        problem = await self.database.run(lambda c: write(c, add))
        if problem is not None:
            raise problem

    async def renew(self, run_id: str, owner: str) -> None:
        expires = timestamp(Claim(owner, self.clock(), self.lease_s).expires)

        def push(connection: sqlite3.Connection) -> int:
            return connection.execute(
                "UPDATE runs SET lease_expires_at = ? WHERE run_id = ? AND owner = ?",
                (expires, run_id, owner),
            ).rowcount

        if await self.database.run(lambda c: write(c, push)) == 0:
            current = await self.get_summary(run_id)
            raise lost_ownership(run_id, current.owner if current else None)

    async def save_run(self, state: RunState) -> None:
        header = encode_header(state)
        entries = [encode_entry(entry, state.run_id) for entry in state.journal]
        now = self.clock().isoformat()

        def replace(connection: sqlite3.Connection) -> None:
            connection.execute("DELETE FROM journal WHERE run_id = ?", (state.run_id,))
            connection.execute(
                """INSERT INTO runs (run_id, pipeline_name, status, created_at, updated_at,
                       total_cost_usd, total_tokens, total_requests, origin, fingerprint,
                       owner, owner_since, lease_expires_at, version, next_seq, input,
                       context, initial_context, limits, shape)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (run_id) DO UPDATE SET
                       pipeline_name = excluded.pipeline_name, status = excluded.status,
                       updated_at = excluded.updated_at,
                       total_cost_usd = excluded.total_cost_usd,
                       total_tokens = excluded.total_tokens,
                       total_requests = excluded.total_requests, origin = excluded.origin,
                       fingerprint = excluded.fingerprint, owner = excluded.owner,
                       owner_since = excluded.owner_since,
                       lease_expires_at = excluded.lease_expires_at,
                       version = runs.version + 1, next_seq = excluded.next_seq,
                       input = excluded.input, context = excluded.context,
                       initial_context = excluded.initial_context,
                       limits = excluded.limits, shape = excluded.shape""",
                (
                    state.run_id,
                    state.pipeline_name,
                    state.status.value,
                    timestamp(state.created_at),
                    now,
                    str(state.spent.cost_usd),
                    state.spent.tokens,
                    state.spent.requests,
                    state.origin,
                    state.fingerprint,
                    state.owner,
                    timestamp(state.owner_since) if state.owner_since else None,
                    timestamp(state.lease_expires_at) if state.lease_expires_at else None,
                    len(entries),
                    *(header[name] for name in ("input", "context", "initial_context")),
                    header["limits"],
                    header["shape"],
                ),
            )
            _insert_entries(connection, state.run_id, 0, entries)

        await self.database.run(lambda c: write(c, replace))

    # -- reads -------------------------------------------------------------------------

    async def load_run(self, run_id: str) -> RunState | None:
        def fetch(
            connection: sqlite3.Connection,
        ) -> tuple[dict[str, Any], list[tuple[int, str, str]]] | None:
            connection.execute("BEGIN")  # one snapshot for the header and its journal
            try:
                row = _fetch_state(connection, run_id)
                if row is None:
                    return None
                return row, _fetch_entries(connection, run_id)
            finally:
                connection.execute("COMMIT")

        found = await self.database.run(fetch)
        if found is None:
            return None
        return decode_run(*found)

    async def list_runs(
        self,
        status: RunStatus | None = None,
        *,
        pipeline: str | None = None,
        since: datetime | None = None,
        limit: int | None = None,
    ) -> list[RunSummary]:
        since = listing_filters(since, limit)
        where, params = [], []
        if status is not None:
            where.append("status = ?")
            params.append(status.value)
        if pipeline is not None:
            where.append("pipeline_name = ?")
            params.append(pipeline)
        if since is not None:
            where.append("updated_at >= ?")
            params.append(timestamp(since))
        sql = f"SELECT {_SUMMARY_COLUMNS} FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY updated_at DESC, run_id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"

        def fetch(connection: sqlite3.Connection) -> list[dict[str, Any]]:
            cursor = connection.execute(sql, params)
            return [row for values in cursor.fetchall() if (row := _row(cursor, values))]

        return [summary_from_row(row) for row in await self.database.run(fetch)]

    async def get_summary(self, run_id: str) -> RunSummary | None:
        def fetch(connection: sqlite3.Connection) -> dict[str, Any] | None:
            cursor = connection.execute(
                f"SELECT {_SUMMARY_COLUMNS} FROM runs WHERE run_id = ?", (run_id,)
            )
            return _row(cursor, cursor.fetchone())

        row = await self.database.run(fetch)
        return None if row is None else summary_from_row(row)

    async def delete_run(self, run_id: str) -> bool:
        def delete(connection: sqlite3.Connection) -> int:
            connection.execute("DELETE FROM journal WHERE run_id = ?", (run_id,))
            return connection.execute("DELETE FROM runs WHERE run_id = ?", (run_id,)).rowcount

        return bool(await self.database.run(lambda c: write(c, delete)))


def _fetch_entries(connection: sqlite3.Connection, run_id: str) -> list[tuple[int, str, str]]:
    return connection.execute(
        "SELECT seq, kind, entry FROM journal WHERE run_id = ? ORDER BY seq", (run_id,)
    ).fetchall()


def _insert_entries(
    connection: sqlite3.Connection, run_id: str, first_seq: int, entries: Sequence[Any]
) -> None:
    connection.executemany(
        "INSERT INTO journal (run_id, seq, kind, address, entry) VALUES (?, ?, ?, ?, ?)",
        [
            (run_id, first_seq + offset, entry.kind, entry.address, entry.data)
            for offset, entry in enumerate(entries)
        ],
    )
