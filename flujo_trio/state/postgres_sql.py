"""The PostgreSQL store's statements, with its schema's tables filled in once per store.

Statements use psycopg's parameters (``%s``, ``%(name)s``); JSON goes in as the
codec's text and is cast to ``json`` in SQL, so PostgreSQL checks it is JSON and keeps
it as written.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
from psycopg import sql

from .codec import EncodedEntry

_SUMMARY_COLUMNS = (
    "run_id, status, pipeline_name, created_at, updated_at, total_cost_usd, total_tokens, "
    "total_requests, origin, owner"
)
_STATE_COLUMNS = (
    _SUMMARY_COLUMNS + ", fingerprint, owner_since, lease_expires_at, version, next_seq, "
    "input, context, initial_context, limits, shape"
)

_INSERT_RUN = """
    INSERT INTO {runs} AS r (run_id, pipeline_name, status, created_at, updated_at,
        total_cost_usd, total_tokens, total_requests, origin, fingerprint, owner,
        owner_since, lease_expires_at, version, next_seq, input, context, initial_context,
        limits, shape)
    VALUES (%(run_id)s, %(pipeline_name)s, %(status)s, %(created_at)s, %(updated_at)s,
        %(cost)s, %(tokens)s, %(requests)s, %(origin)s, %(fingerprint)s, %(owner)s,
        %(owner_since)s, %(lease)s, 1, %(count)s, %(input)s::json, %(context)s::json,
        %(initial_context)s::json, %(limits)s::json, %(shape)s::json)
"""

_UPSERT = """ ON CONFLICT (run_id) DO UPDATE SET
    pipeline_name = excluded.pipeline_name, status = excluded.status,
    updated_at = excluded.updated_at, total_cost_usd = excluded.total_cost_usd,
    total_tokens = excluded.total_tokens, total_requests = excluded.total_requests,
    origin = excluded.origin, fingerprint = excluded.fingerprint,
    owner = excluded.owner, owner_since = excluded.owner_since,
    lease_expires_at = excluded.lease_expires_at, version = r.version + 1,
    next_seq = excluded.next_seq, input = excluded.input,
    context = excluded.context, initial_context = excluded.initial_context,
    limits = excluded.limits, shape = excluded.shape
"""

_CLAIM = """
    UPDATE {runs} SET status = %(status)s, owner = %(owner)s, owner_since = %(now)s,
        lease_expires_at = %(lease)s, limits = %(limits)s::json, updated_at = %(now)s,
        version = version + 1
    WHERE run_id = %(run_id)s
"""

_INSERT_ENTRY = """
    INSERT INTO {journal} (run_id, seq, kind, address, entry)
    VALUES (%s, %s, %s, %s::json, %s::json)
"""

# One statement, so one round trip: the owner check, the entries (``{added}``, see
# ``Statements.append_with``) and the header.
_APPEND = """
    WITH owned AS (
        SELECT run_id, next_seq FROM {runs}
        WHERE run_id = %(run_id)s AND owner = %(owner)s
        FOR UPDATE
    ){added}
    UPDATE {runs} AS r SET
        total_cost_usd = %(cost)s, total_tokens = %(tokens)s, total_requests = %(requests)s,
        updated_at = %(now)s, next_seq = owned.next_seq + %(count)s, version = r.version + 1,
        status = coalesce(%(status)s, r.status),
        context = coalesce(%(context)s::json, r.context),
        owner = CASE WHEN %(release)s THEN NULL ELSE r.owner END,
        owner_since = CASE WHEN %(release)s THEN NULL ELSE r.owner_since END,
        lease_expires_at = CASE WHEN %(release)s THEN NULL ELSE %(lease)s END
    FROM owned WHERE r.run_id = owned.run_id
"""

_ADD_ENTRIES = """, added AS (
        INSERT INTO {journal} (run_id, seq, kind, address, entry)
        SELECT owned.run_id, owned.next_seq + e.n, e.kind, e.address::json, e.entry::json
        FROM owned, (VALUES {rows}) AS e (n, kind, address, entry)
    )"""


def entry_rows(run_id: str, entries: Sequence[EncodedEntry]) -> list[tuple[Any, ...]]:
    return [
        (run_id, seq, entry.kind, entry.address, entry.data) for seq, entry in enumerate(entries)
    ]


@attrs.frozen
class Statements:
    """Every statement of the store, for one schema."""

    insert_run: str
    upsert_run: str
    insert_entry: str
    append: str
    """With ``{added}`` for the entries' common table expression (``add_entries``)."""
    add_entries: str
    """With ``{rows}`` for the entries' VALUES rows (see :meth:`append_with`)."""
    state: str
    lock_state: str
    journal: str
    claim: str
    renew: str
    owner: str
    summary: str
    list: str
    delete_entries: str
    delete: str

    def append_with(self, entries: Sequence[EncodedEntry]) -> tuple[str, dict[str, Any]]:
        """The append statement for ``entries``, and their parameters.

        The entries go in as a VALUES list of scalar parameters, one statement text per
        batch size (each prepared once per connection): psycopg sends that far faster
        than text arrays.
        """
        if not entries:
            return self.append.replace("{added}", ""), {}
        rows = ", ".join(f"({n}, %(k{n})s::text, %(a{n})s, %(e{n})s)" for n in range(len(entries)))
        values: dict[str, Any] = {}
        for n, entry in enumerate(entries):
            values.update({f"k{n}": entry.kind, f"a{n}": entry.address, f"e{n}": entry.data})
        return self.append.replace("{added}", self.add_entries.replace("{rows}", rows)), values

    @classmethod
    def for_schema(cls, schema: str) -> Statements:
        tables = {
            "runs": sql.Identifier(schema, "runs"),
            "journal": sql.Identifier(schema, "journal"),
        }

        def compose(text: str) -> str:
            return sql.SQL(text).format(**tables).as_string(None)

        return cls(
            insert_run=compose(_INSERT_RUN + " ON CONFLICT (run_id) DO NOTHING"),
            upsert_run=compose(_INSERT_RUN + _UPSERT),
            insert_entry=compose(_INSERT_ENTRY),
            append=compose(_APPEND.replace("{added}", "{{added}}")),
            add_entries=compose(_ADD_ENTRIES.replace("{rows}", "{{rows}}")),
            state=compose(f"SELECT {_STATE_COLUMNS} FROM {{runs}} WHERE run_id = %s"),
            lock_state=compose(
                f"SELECT {_STATE_COLUMNS} FROM {{runs}} WHERE run_id = %s FOR UPDATE"
            ),
            journal=compose(
                "SELECT seq, kind, entry FROM {journal} WHERE run_id = %s ORDER BY seq"
            ),
            claim=compose(_CLAIM + f" RETURNING {_STATE_COLUMNS}"),
            renew=compose(
                "UPDATE {runs} SET lease_expires_at = %s WHERE run_id = %s AND owner = %s"
            ),
            owner=compose("SELECT owner FROM {runs} WHERE run_id = %s"),
            summary=compose(f"SELECT {_SUMMARY_COLUMNS} FROM {{runs}} WHERE run_id = %s"),
            list=compose(f"SELECT {_SUMMARY_COLUMNS} FROM {{runs}}"),
            delete_entries=compose("DELETE FROM {journal} WHERE run_id = %s"),
            delete=compose("DELETE FROM {runs} WHERE run_id = %s"),
        )
