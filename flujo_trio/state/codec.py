"""Journal entries and run headers as JSON text, for the SQL stores (SQLite, PostgreSQL).

Entries are encoded the moment they are recorded (``encode_entry``), so what is
stored is the value as it was then, and a value that cannot be stored fails right
there with its path. Decoding goes through the safe converter: a stored row can
never make this process import or call a class it does not allow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import attrs

from ..context import PipelineContext, RunStatus
from ..errors import SerializationError
from ..serialization import dumps, loads, structure, unstructure
from ..usage import UsageLimits, dollars
from .flat_json import flatten, unflatten
from .journal import CallRecord, Decision, Entry, SavedStep
from .owner import Holding
from .records import RunState, RunSummary, Spent

_KINDS: dict[str, type[Any]] = {"step": SavedStep, "call": CallRecord, "decision": Decision}
_KIND_OF = {cls: kind for kind, cls in _KINDS.items()}


@attrs.frozen
class EncodedEntry:
    """A journal entry as a SQL store keeps it."""

    kind: str
    address: str
    data: str


def encode_entry(entry: Entry, run_id: str = "") -> EncodedEntry:
    kind = _KIND_OF[type(entry)]
    what = f"the journal entry for {'/'.join(map(str, entry.address))!r}"
    if run_id:
        what += f" of run {run_id!r}"
    data = unstructure(entry, type(entry), what=what)
    return EncodedEntry(kind, dumps(list(entry.address), what=what), dumps(data, what=what))


def decode_entry(kind: str, data: str | Any, *, run_id: str, seq: int) -> Entry:
    what = f"journal entry {seq} of run {run_id!r}"
    cls = _KINDS.get(kind)
    if cls is None:
        raise SerializationError(f"Cannot load {what}: unknown entry kind {kind!r}")
    raw = loads(data, what=what) if isinstance(data, str | bytes) else data
    return structure(raw, cls, what=what)


def check_sequence(run_id: str, next_seq: Any, seqs: Sequence[int]) -> None:
    """A journal is numbered 0, 1, ... up to the header's ``next_seq``: an entry deleted
    from it, or one added by hand, would make a resume redo (and pay again) a finished
    step or replay one that never ran. Raises :class:`SerializationError` then."""
    if seqs == list(range(len(seqs))) and next_seq == len(seqs):
        return
    missing = next((n for n, seq in enumerate(seqs) if seq != n), None)
    if missing is not None and missing < next_seq:
        problem = f"entry {missing} is missing"
    else:
        problem = f"it holds {len(seqs)} entries where its header counts {next_seq}"
    raise SerializationError(
        f"Cannot load run {run_id!r}: its journal was changed outside flujo-trio ({problem})"
    )


def decode_run(row: Mapping[str, Any], entries: Sequence[tuple[int, str, Any]]) -> RunState:
    """A stored run from its header row and its journal rows ``(seq, kind, entry)`` in
    ``seq`` order, the numbering checked first (every SQL store loads a run this way)."""
    run_id = row["run_id"]
    check_sequence(run_id, row["next_seq"], [seq for seq, _, _ in entries])
    journal = [decode_entry(kind, data, run_id=run_id, seq=seq) for seq, kind, data in entries]
    return decode_state(row, journal)


#: The key of a shape stored as flat JSON tokens.
FLAT = "flat"

#: Header columns: each one JSON text, readable with the database's own shell.
HEADER_FIELDS = ("input", "context", "initial_context", "limits", "shape")
_HEADER_TYPES: dict[str, Any] = {
    "input": Any,
    "context": PipelineContext,
    "initial_context": PipelineContext | None,
    "limits": UsageLimits,
    "shape": Any,
}


def encode_header(state: RunState, fields: Sequence[str] = HEADER_FIELDS) -> dict[str, str]:
    what = f"run {state.run_id!r}"
    return {
        name: dumps(
            # The shape is plain JSON already, nested as deep as the pipeline: it skips
            # the converter, and is stored flat (json would recurse through every level).
            {FLAT: flatten(state.shape)}
            if name == "shape"
            else unstructure(
                getattr(state, name), _HEADER_TYPES[name], what=f"the {name} of {what}"
            ),
            what=f"the {name} of {what}",
        )
        for name in fields
    }


def encode_limits(limits: UsageLimits) -> str:
    return dumps(unstructure(limits, UsageLimits, what="limits"), what="limits")


def holding_from_row(row: Mapping[str, Any]) -> Holding:
    """The ownership columns of a header row (to decide a claim without the JSON)."""
    what = f"run {row['run_id']!r}"
    try:
        return Holding(
            run_id=str(row["run_id"]),
            status=RunStatus(row["status"]),
            owner=row["owner"],
            owner_since=_time(row["owner_since"]) if row["owner_since"] else None,
            lease_expires_at=_time(row["lease_expires_at"]) if row["lease_expires_at"] else None,
            version=int(row["version"]),
        )
    except (ValueError, TypeError) as error:
        raise SerializationError(
            f"Cannot load {what}: a summary column is damaged ({error})"
        ) from error


def encode_context(context: PipelineContext, run_id: str) -> str:
    what = f"the context of run {run_id!r}"
    return dumps(unstructure(context, PipelineContext, what=what), what=what)


def decode_state(row: Mapping[str, Any], journal: Sequence[Entry]) -> RunState:
    """A run from its header row (summary columns plus JSON header columns)."""
    run_id = str(row["run_id"])
    what = f"run {run_id!r}"
    header = {
        name: structure(
            _json(row[name], what=f"the {name} of {what}"),
            _HEADER_TYPES[name],
            what=f"the {name} of {what}",
        )
        for name in HEADER_FIELDS
        if name != "shape"
    }
    header["shape"] = _plain_shape(_json(row["shape"], what=f"the shape of {what}"), what)
    try:
        return RunState(
            run_id=run_id,
            pipeline_name=str(row["pipeline_name"]),
            status=RunStatus(row["status"]),
            input=header["input"],
            context=header["context"],
            initial_context=header["initial_context"],
            journal=tuple(journal),
            spent=_spent(row),
            created_at=_time(row["created_at"]),
            updated_at=_time(row["updated_at"]),
            limits=header["limits"],
            origin=row["origin"],
            shape=header["shape"],
            fingerprint=row["fingerprint"],
            owner=row["owner"],
            owner_since=_time(row["owner_since"]) if row["owner_since"] else None,
            lease_expires_at=_time(row["lease_expires_at"]) if row["lease_expires_at"] else None,
            version=int(row["version"]),
        )
    except (ValueError, TypeError, ArithmeticError) as error:
        raise SerializationError(
            f"Cannot load {what}: a summary column is damaged ({error})"
        ) from error


def _spent(row: Mapping[str, Any]) -> Spent:
    """The stored totals; a total that is not a finite number >= 0 (NaN, Infinity, a
    negative or fractional count, written by hand into the row) is damage, refused
    here, before a resume could claim the run and trip over it."""
    cost = Decimal(str(row["total_cost_usd"]))
    if not cost.is_finite() or cost < 0:
        raise ValueError(f"total_cost_usd is {cost}, not a finite number >= 0")
    counts = []
    for name in ("total_tokens", "total_requests"):
        value = row[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} is {value!r}, not an integer >= 0")
        counts.append(value)
    return Spent(cost, counts[0], counts[1])


def _plain_shape(value: Any, what: str) -> list[Any] | None:
    """A stored shape is only compared and shown, never turned into objects. Stored
    flat since 0.2 (see :mod:`.flat_json`); a JSON list is the nested form stored
    before; anything else reads as no shape."""
    if isinstance(value, dict) and FLAT in value:
        try:
            value = unflatten(value[FLAT])
        except ValueError as error:
            raise SerializationError(
                f"Cannot load {what}: its stored shape is damaged ({error})"
            ) from error
    return value if isinstance(value, list) else None


def _json(value: Any, *, what: str) -> Any:
    return loads(value, what=what) if isinstance(value, str | bytes) else value


def _time(value: Any) -> datetime:
    found = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if found.tzinfo is None:
        # Stores write UTC times; a naive one cannot be compared with them (a lease).
        raise ValueError(f"the time {value!r} has no timezone")
    return found


_NEVER = datetime.min.replace(tzinfo=UTC)


def summary_from_row(row: Mapping[str, Any]) -> RunSummary:
    """A listing row; a damaged row still lists (with ``error`` saying what is wrong)."""
    run_id = str(row["run_id"])
    try:
        spent = _spent(row)
        return RunSummary(
            run_id=run_id,
            status=RunStatus(row["status"]),
            pipeline_name=str(row["pipeline_name"]),
            created_at=_time(row["created_at"]),
            updated_at=_time(row["updated_at"]),
            total_cost_usd=dollars(spent.cost_usd),
            total_tokens=spent.tokens,
            origin=row["origin"],
            owner=row["owner"],
            total_requests=spent.requests,
        )
    except (ValueError, TypeError, ArithmeticError, KeyError) as error:
        return RunSummary(
            run_id=run_id,
            status=RunStatus.FAILED,
            pipeline_name=str(row.get("pipeline_name") or "?"),
            created_at=_NEVER,
            updated_at=_NEVER,
            total_cost_usd=0.0,
            total_tokens=0,
            error=f"this run's stored summary is damaged ({type(error).__name__}: {error})",
        )
