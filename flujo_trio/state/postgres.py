"""PostgreSQL store: one durable store shared by many workers on many machines.

The same shape as the SQLite store (a header row per run plus an append-only
journal, state as JSON text through the shared codec, the same ownership rules), in
a schema of its own (see ``postgres_schema``). What PostgreSQL adds is concurrency:
a claim locks the run's row (``SELECT ... FOR UPDATE``) while it compares and sets,
and an append is one statement that checks the owner, adds the journal entries and
updates the totals and the lease, so a checkpoint costs one round trip however many
workers write.

Leases are measured on the store's ``clock`` (this host's wall clock by default):
hosts that share a store need synchronised clocks, with a skew well below
``lease_s``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from ..context import RunStatus, utc_now
from ..errors import ConfigurationError, ResumeError
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
from .postgres_db import Connection, PostgresDatabase
from .postgres_sql import Statements, entry_rows
from .protocol import ClosesOnExit, Finish
from .records import RunState, RunSummary, Spent, listing_filters


def _check_pool_size(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"pool_size must be an int >= 1, got {value!r}")
    return value


def _check_schema(value: object) -> str:
    if not isinstance(value, str) or not value or len(value.encode()) > 63:
        raise ConfigurationError(
            f"schema must be a PostgreSQL schema name (1 to 63 bytes), got {value!r}"
        )
    return value


class PostgresStore(ClosesOnExit):
    """A :class:`~flujo_trio.StateStore` in a PostgreSQL database (tables made on first use).

    Args:
        dsn: ``postgresql://user:password@host:5432/dbname`` or ``"host=... dbname=..."``;
            the password never appears in messages.
        lease_s: how long an owner's lease lasts without renewal (the running process
            renews it about three times per lease).
        pool_size: connections (and worker threads) this store uses at most.
        schema: the PostgreSQL schema holding the store's tables.
        clock: the wall clock leases are measured on (timezone-aware UTC).

    Use it as an async context manager (or call :meth:`aclose`) to close the pool;
    a store that is garbage-collected closes it too.
    """

    #: Survives the process: every finished call is written before its branch goes on.
    durable = True

    def __init__(
        self,
        dsn: str,
        *,
        lease_s: float = DEFAULT_LEASE_S,
        pool_size: int = 4,
        schema: str = "flujo_trio",
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.lease_s = check_lease(lease_s)
        self.database = PostgresDatabase(
            dsn, schema=_check_schema(schema), pool_size=_check_pool_size(pool_size)
        )
        self.clock = clock
        self._sql = Statements.for_schema(schema)

    @property
    def where(self) -> str:
        """The server and database, without the password."""
        return self.database.where

    @property
    def schema(self) -> str:
        return self.database.schema

    def __repr__(self) -> str:
        return f"PostgresStore({self.where!r}, schema={self.schema!r})"

    async def aclose(self) -> None:
        """Close the pool (waiting for its threads); a later call opens a new one."""
        await self.database.aclose()

    def encode_entry(self, entry: Entry) -> EncodedEntry:
        return encode_entry(entry)

    # -- writes ------------------------------------------------------------------------

    def _run_values(
        self, state: RunState, entries: Sequence[EncodedEntry], now: datetime
    ) -> dict[str, Any]:
        header = encode_header(state)
        return {
            "run_id": state.run_id,
            "pipeline_name": state.pipeline_name,
            "status": state.status.value,
            "updated_at": now,
            "cost": state.spent.cost_usd,
            "tokens": state.spent.tokens,
            "requests": state.spent.requests,
            "origin": state.origin,
            "fingerprint": state.fingerprint,
            "owner": state.owner,
            "count": len(entries),
            **header,
        }

    async def create_run(self, state: RunState) -> None:
        now = self.clock()
        entries = [encode_entry(entry, state.run_id) for entry in state.journal]
        values = self._run_values(state, entries, now)
        values.update(
            created_at=now,
            owner_since=now if state.owner else None,
            lease=Claim(state.owner, now, self.lease_s).expires if state.owner else None,
        )

        def insert(connection: Connection) -> bool:
            with connection.transaction():
                if connection.execute(self._sql.insert_run, values).rowcount == 0:
                    return False
                with connection.cursor() as cursor:
                    cursor.executemany(self._sql.insert_entry, entry_rows(state.run_id, entries))
                return True

        if not await self.database.run(insert):
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
        values = {
            "run_id": run_id,
            "status": RunStatus.RUNNING.value,
            "owner": owner,
            "now": claim.now,
            "lease": claim.expires,
            "limits": encode_limits(limits),
        }

        def take(connection: Connection) -> RunState:
            # The run's row stays locked from the check to the update; the state is
            # decoded before the commit, so a run that cannot be loaded stays unclaimed.
            with connection.transaction():
                row = connection.execute(self._sql.lock_state, [run_id]).fetchone()
                if row is None:
                    raise ResumeError(f"No run {run_id!r} in {self.where} (schema {self.schema})")
                refusal = claim_refusal(holding_from_row(row), claim, expected_version)
                if refusal is not None:
                    raise refusal
                claimed = connection.execute(self._sql.claim, values).fetchone()
                assert claimed is not None
                return self._decode(connection, claimed)

        return await self.database.run(take)

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
        context = (
            encode_context(finish.context, run_id)
            if finish is not None and finish.context is not None
            else None
        )
        values = {
            "run_id": run_id,
            "owner": owner,
            "cost": spent.cost_usd,
            "tokens": spent.tokens,
            "requests": spent.requests,
            "now": now,
            "lease": Claim(owner, now, self.lease_s).expires,
            "status": finish.status.value if finish is not None else None,
            "context": context,
            "release": finish is not None and finish.status is not RunStatus.RUNNING,
            "count": len(entries),
        }
        statement, entry_values = self._sql.append_with(entries)
        values.update(entry_values)

        def add(connection: Connection) -> Exception | None:
            if connection.execute(statement, values).rowcount == 1:
                return None
            return self._lost(connection, run_id)

        problem = await self.database.run(add)
        if problem is not None:
            raise problem

    async def renew(self, run_id: str, owner: str) -> None:
        expires = Claim(owner, self.clock(), self.lease_s).expires

        def push(connection: Connection) -> Exception | None:
            if connection.execute(self._sql.renew, [expires, run_id, owner]).rowcount:
                return None
            return self._lost(connection, run_id)

        problem = await self.database.run(push)
        if problem is not None:
            raise problem

    def _lost(self, connection: Connection, run_id: str) -> Exception:
        found = connection.execute(self._sql.owner, [run_id]).fetchone()
        return lost_ownership(run_id, found["owner"] if found else None)

    async def save_run(self, state: RunState) -> None:
        entries = [encode_entry(entry, state.run_id) for entry in state.journal]
        values = self._run_values(state, entries, self.clock())
        values.update(
            created_at=state.created_at,
            owner_since=state.owner_since,
            lease=state.lease_expires_at,
        )

        def replace(connection: Connection) -> None:
            with connection.transaction(), connection.cursor() as cursor:
                cursor.execute(self._sql.delete_entries, [state.run_id])
                cursor.execute(self._sql.upsert_run, values)
                cursor.executemany(self._sql.insert_entry, entry_rows(state.run_id, entries))

        await self.database.run(replace)

    # -- reads -------------------------------------------------------------------------

    def _decode(self, connection: Connection, row: dict[str, Any]) -> RunState:
        rows = connection.execute(self._sql.journal, [row["run_id"]]).fetchall()
        return decode_run(row, [(found["seq"], found["kind"], found["entry"]) for found in rows])

    async def load_run(self, run_id: str) -> RunState | None:
        def fetch(connection: Connection) -> RunState | None:
            with connection.transaction():  # one snapshot for the header and its journal
                connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                row = connection.execute(self._sql.state, [run_id]).fetchone()
                return None if row is None else self._decode(connection, row)

        return await self.database.run(fetch)

    async def list_runs(
        self,
        status: RunStatus | None = None,
        *,
        pipeline: str | None = None,
        since: datetime | None = None,
        limit: int | None = None,
    ) -> list[RunSummary]:
        since = listing_filters(since, limit)
        where: list[str] = []
        params: list[Any] = []
        if status is not None:
            where.append("status = %s")
            params.append(status.value)
        if pipeline is not None:
            where.append("pipeline_name = %s")
            params.append(pipeline)
        if since is not None:
            where.append("updated_at >= %s")
            params.append(since)
        query = self._sql.list
        if where:
            query += " WHERE " + " AND ".join(where)
        query += " ORDER BY updated_at DESC, run_id"
        if limit is not None:
            query += " LIMIT %s"
            params.append(int(limit))

        def fetch(connection: Connection) -> list[dict[str, Any]]:
            return connection.execute(query, params).fetchall()

        return [summary_from_row(row) for row in await self.database.run(fetch)]

    async def get_summary(self, run_id: str) -> RunSummary | None:
        def fetch(connection: Connection) -> dict[str, Any] | None:
            return connection.execute(self._sql.summary, [run_id]).fetchone()

        row = await self.database.run(fetch)
        return None if row is None else summary_from_row(row)

    async def delete_run(self, run_id: str) -> bool:
        def delete(connection: Connection) -> bool:
            # The journal goes with its run (ON DELETE CASCADE).
            return bool(connection.execute(self._sql.delete, [run_id]).rowcount)

        return await self.database.run(delete)
