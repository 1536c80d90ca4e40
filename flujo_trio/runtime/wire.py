"""What a remote job sends back to the process that owns its run, and how it is read.

A job that runs elsewhere (a Ray worker) sends only JSON text made by the project's
converter: step records, journal entries, its context and its ledger messages. The
owning process reads it with the same converter, under the allowances of the job's
own pipeline (:meth:`RunPlan.allowing`), so data from a worker never makes this
process import or call a class by name beyond what a stored run could name: the
rule of :mod:`flujo_trio.serialization`, the same as for a run loaded from SQLite.

Code travels the other way only: the coordinator sends the job's body (and its input
and context copy) to the worker, which trusts the coordinator as it trusts its own
cluster.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs

from ..context import PipelineContext
from ..errors import SerializationError
from ..serialization import dumps, loads, structure, unstructure
from ..state.codec import decode_entry, encode_entry
from ..state.journal import Address, Entry, StepStatus
from ..usage import Usage, finite
from .record import StepRecord


@attrs.define
class WireRecord:
    """A :class:`StepRecord` as it crosses the wire, unfinished ones included (the
    coordinator interrupts those with its own reason, as it does its local records)."""

    name: str
    kind: str
    address: Address
    position: tuple[int, ...]
    attempts: int = 0
    cost: Decimal = Decimal(0)
    tokens: int = 0
    output: Any = None
    status: StepStatus | None = None
    feedback: str | None = None
    metadata: dict[str, Any] = attrs.field(factory=dict)
    latency_s: float | None = None
    elapsed_s: float = 0.0
    """How long the step had been running on the worker (for unfinished records)."""
    pause_message: str | None = None
    denied: bool = False
    reused: bool = False
    branch_context: PipelineContext | None = None
    children: list[WireRecord] = attrs.field(factory=list)


def wire_record(record: StepRecord, now: float) -> WireRecord:
    context = record.branch_context
    return WireRecord(
        name=record.name,
        kind=record.kind,
        address=record.address,
        position=record.position,
        attempts=record.attempts,
        cost=record.cost,
        tokens=record.tokens,
        output=record.output,
        status=record.status,
        feedback=record.feedback,
        metadata=dict(record.metadata) if record.metadata else {},
        latency_s=record.latency_s,
        elapsed_s=now - record.started_at,
        pause_message=record.pause_message,
        denied=record.denied,
        reused=record.reused,
        branch_context=context if isinstance(context, PipelineContext) else None,
        children=[wire_record(child, now) for child in record.children],
    )


def step_record(wire: WireRecord, now: float) -> StepRecord:
    """The record again, in this process (its clock: ``now``)."""
    record = StepRecord(wire.name, wire.kind, wire.address, wire.position)
    record.attempts, record.cost, record.tokens = wire.attempts, wire.cost, wire.tokens
    record.output, record.status, record.feedback = wire.output, wire.status, wire.feedback
    if wire.metadata:
        record.metadata = dict(wire.metadata)
    record.latency_s = wire.latency_s
    record.started_at = now - wire.elapsed_s
    record.pause_message, record.denied, record.reused = (
        wire.pause_message,
        wire.denied,
        wire.reused,
    )
    record.branch_context = wire.branch_context
    if wire.children:
        record.children.extend(step_record(child, now) for child in wire.children)
    return record


@attrs.define
class Halted:
    """The job's body asked to stop the whole run (a merge conflict, ...)."""

    halt: str
    message: str


@attrs.define
class Outcome:
    """How a remote job ended: sent once, as its last message."""

    record: WireRecord | None
    """The job's own record with everything nested in it (None: it never started)."""
    context: PipelineContext | None
    halted: Halted | None = None
    error: str | None = None
    """Why the job could not be sent back or run at all (the run fails with it)."""
    serialization: bool = False
    """``error`` is a :class:`SerializationError` (the run fails as a local one would)."""


def encode(message: list[Any], *, what: str) -> str:
    """A message as JSON text: plain JSON values only (an outcome is unstructured
    with :func:`encode_outcome` first)."""
    return dumps(message, what=what)


def decode(text: Any, *, what: str) -> list[Any]:
    """A message from a worker: JSON text of a list that starts with its kind."""
    if not isinstance(text, str):
        raise SerializationError(f"Cannot load {what}: expected JSON text, got {type(text)}")
    message = loads(text, what=what)
    if not isinstance(message, list) or not message or not isinstance(message[0], str):
        raise SerializationError(f"Cannot load {what}: not a message ({text[:80]!r})")
    return message


def encode_outcome(outcome: Outcome, *, what: str) -> Any:
    return unstructure(outcome, Outcome, what=what)


def decode_outcome(data: Any, *, what: str) -> Outcome:
    return structure(data, Outcome, what=what)


def entry_fields(entry: Entry) -> list[str]:
    """A journal entry as the store codec writes it (kind and JSON text)."""
    encoded = encode_entry(entry)
    return [encoded.kind, encoded.data]


def entry_from(kind: Any, data: Any, *, run_id: str, seq: int) -> Entry:
    if not isinstance(kind, str) or not isinstance(data, str):
        raise SerializationError(f"Cannot load journal entry {seq} of run {run_id!r} from a worker")
    return decode_entry(kind, data, run_id=run_id, seq=seq)


def usage_fields(usage: Usage) -> list[Any]:
    return [usage.cost_usd, usage.tokens]


def usage_from(cost: Any, tokens: Any) -> Usage:
    """Usage sent by a worker (the :class:`Usage` validators refuse bad numbers)."""
    if isinstance(cost, bool) or not isinstance(cost, int | float) or not finite(cost):
        raise SerializationError(f"a worker sent a cost that is not a finite number: {cost!r:.60}")
    return Usage(float(cost), tokens)
