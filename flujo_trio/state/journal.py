"""The journal: what a run finished, one frozen entry at a time, and the tree it reads as.

- :class:`CallRecord`: an agent call started (with the reservation it holds, written
  before the call, so a crash cannot hide its spend) or ended (its output or error,
  and its usage);
- :class:`SavedStep`: a step finished, paused or was stopped (its result, and for a
  leaf step the changes it made to its branch's context);
- :class:`Decision`: a conditional chose a branch (replayed, never asked again).

A resumed run replays the journal: the pipeline's control flow runs again, and every
step or call the journal holds is taken from it instead of being run and paid again.

Addresses name a step by where it sits: step names, with the 1-based iteration
number (an ``int``) before the steps of each loop iteration, e.g.
``("reviews", "facts", "review_facts")`` or ``("loop", 3, "draft")`` or
``("map", "map[7]", "classify")``. ``position`` gives each segment's declared
order (the index among its siblings), so a stored tree is shown in declared order
without importing the pipeline.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import Any, Protocol, TypeVar

import attrs

from ..context import RunStatus
from ..results import StepResult
from ..usage import Usage, dollars, money

Address = tuple[str | int, ...]


class StepStatus(enum.StrEnum):
    """How a saved step ended."""

    OK = "ok"
    FAILED = "failed"
    PAUSED = "paused"
    CANCELLED = "cancelled"


class CallStatus(enum.StrEnum):
    """Where a journaled agent call stands."""

    STARTED = "started"
    """Admitted and about to run; no result yet (in flight, or lost in a crash)."""
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    """Cancelled or lost in a crash; charged what it reported, else its reservation."""


#: The ways a step changes a context field (see :class:`FieldChange`).
CHANGE_OPS = ("set", "append", "update")


def _op(_: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if value not in CHANGE_OPS:
        raise ValueError(f"{attribute.name} must be one of {CHANGE_OPS}, got {value!r}")


def _amount(_: Any, attribute: attrs.Attribute[Any], value: Decimal) -> None:
    if not value.is_finite() or value < 0:
        raise ValueError(f"{attribute.name} must be a finite amount >= 0, got {value}")


def _count(_: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value}")


@attrs.frozen
class FieldChange:
    """One change a step made to one context field."""

    field: str
    op: str = attrs.field(validator=_op)
    """``"set"`` (``value`` is the new value), ``"append"`` (``value`` lists the
    appended items) or ``"update"`` (``value`` maps changed keys; ``removed``)."""
    value: Any = None
    removed: list[Any] = attrs.field(factory=list)


@attrs.frozen
class SavedStep:
    """A step as the journal keeps it once it finished, paused or was stopped."""

    address: Address
    position: tuple[int, ...]
    kind: str
    status: StepStatus
    output: Any = None
    attempts: int = attrs.field(default=0, validator=_count)
    cost_usd: Decimal = attrs.field(default=Decimal(0), validator=_amount)
    """This step's own spend (nested steps keep theirs)."""
    tokens: int = attrs.field(default=0, validator=_count)
    latency_s: float = 0.0
    feedback: str | None = None
    metadata: dict[str, Any] = attrs.field(factory=dict)
    pause_message: str | None = None
    denied: bool = False
    """Failed only because a reservation was denied: a resume with room runs it again."""
    changes: list[FieldChange] = attrs.field(factory=list)
    """What a leaf step changed in its branch's context (replayed on resume)."""

    @property
    def name(self) -> str:
        return str(self.address[-1])

    @property
    def finished(self) -> bool:
        return self.status in (StepStatus.OK, StepStatus.FAILED)


@attrs.frozen
class CallRecord:
    """One agent call (an attempt) of the leaf step at ``address``; ``call`` counts
    the step's calls from 1, fallbacks included, in the order they were made."""

    address: Address
    position: tuple[int, ...]
    call: int
    status: CallStatus
    reserved: Usage | None = None
    usage: Usage | None = None
    output: Any = None
    error: str | None = None
    retryable: bool = True
    estimated: bool = False
    """Charged its reservation because its real usage is unknown."""
    request: int = 0
    """0 for the call itself; 1, 2, ... for further model requests the call made
    (a tool loop), each journaled before it starts so a crash cannot hide its spend."""


@attrs.frozen
class Decision:
    """A choice the control flow made (a conditional's branch key) at ``address``."""

    address: Address
    value: Any


Entry = SavedStep | CallRecord | Decision


class StepSnapshot(Protocol):
    """A finished step's builder that no longer changes: a store that is not durable
    may keep it and make the :class:`SavedStep` only when the journal is read."""

    def saved(self) -> SavedStep: ...


def entry_of(item: Entry | StepSnapshot) -> Entry:
    return item if isinstance(item, SavedStep | CallRecord | Decision) else item.saved()


# -- the tree a journal reads as -----------------------------------------------------------


def parent_address(address: Address) -> Address:
    """The address of the step a step sits in (loop iteration numbers are not steps)."""
    parent = address[:-1]
    while parent and isinstance(parent[-1], int):
        parent = parent[:-1]
    return parent


@attrs.define
class _Node:
    address: Address
    position: tuple[int, ...]
    saved: SavedStep | None = None
    calls: dict[CallKey, CallRecord] = attrs.field(factory=dict)
    children: list[_Node] = attrs.field(factory=list)


CallKey = tuple[int, int]
"""A call's number in its step, and the request number within the call."""


def latest_entries(
    journal: Iterable[Entry],
) -> tuple[dict[Address, SavedStep], dict[Address, dict[CallKey, CallRecord]], dict[Address, Any]]:
    """The newest saved step, call records and decision per address (later entries win)."""
    steps: dict[Address, SavedStep] = {}
    calls: dict[Address, dict[CallKey, CallRecord]] = {}
    decisions: dict[Address, Any] = {}
    for entry in journal:
        if isinstance(entry, SavedStep):
            steps[entry.address] = entry
        elif isinstance(entry, CallRecord):
            calls.setdefault(entry.address, {})[(entry.call, entry.request)] = entry
        else:
            decisions[entry.address] = entry.value
    return steps, calls, decisions


def results_from_journal(journal: Iterable[Entry], run_status: RunStatus) -> list[StepResult]:
    """The step tree of a stored run, in declared order, with honest totals.

    Steps that hold only call records (they were running when the run stopped) and
    composites that never finished read as cancelled (paused when a step inside
    them waits for a person); a leaf's spend includes calls charged as estimates.
    """
    steps, calls, _ = latest_entries(journal)
    nodes: dict[Address, _Node] = {}
    root = _Node((), ())

    def node_for(address: Address, position: tuple[int, ...]) -> _Node:
        # Climb to the nearest ancestor seen so far, then create the missing ones on the
        # way down (a loop, not recursion: a pipeline may nest hundreds of levels deep).
        missing: list[tuple[Address, tuple[int, ...]]] = []
        while address and address not in nodes:
            missing.append((address, position))
            address = parent_address(address)
            position = position[: len(address)]
        node = nodes[address] if address else root
        for created_address, created_position in reversed(missing):
            created = nodes[created_address] = _Node(created_address, created_position)
            node.children.append(created)
            node = created
        return node

    for address, saved in steps.items():
        node_for(address, saved.position).saved = saved
    for address, by_number in calls.items():
        first = next(iter(by_number.values()))
        node_for(address, first.position).calls = by_number
    return _results(root, run_status)


N = TypeVar("N")
R = TypeVar("R")


def fold_tree(root: N, children: Callable[[N], Iterable[N]], build: Callable[[N, list[R]], R]) -> R:
    """``build(node, results of its children)`` for every node, children first, with an
    explicit stack: a pipeline may nest deeper than the interpreter's stack."""
    frames: list[tuple[N, Iterator[N], list[R]]] = [(root, iter(children(root)), [])]
    while True:
        node, pending, done = frames[-1]
        child = next(pending, None)
        if child is not None:
            frames.append((child, iter(children(child)), []))
            continue
        frames.pop()
        built = build(node, done)
        if not frames:
            return built
        frames[-1][2].append(built)


def _results(root: _Node, run_status: RunStatus) -> list[StepResult]:
    """The results of ``root``'s children, each built after its own children."""

    def build(node: _Node, children: list[StepResult]) -> StepResult:
        return _result(node, run_status, children)

    return [fold_tree(child, _ordered, build) for child in _ordered(root)]


def _ordered(node: _Node) -> list[_Node]:
    depth = len(node.address)
    return sorted(node.children, key=lambda child: child.position[depth:])


def _result(node: _Node, run_status: RunStatus, children: list[StepResult]) -> StepResult:
    saved = node.saved
    cost = sum((money(child.cost_usd) for child in children), Decimal(0))
    tokens = sum(child.token_counts for child in children)
    name = str(node.address[-1])
    if saved is not None:
        metadata = dict(saved.metadata)
        if saved.status is StepStatus.PAUSED:
            metadata["paused"] = True
        elif saved.status is StepStatus.CANCELLED:
            metadata["cancelled"] = True
        return StepResult(
            name=name,
            output=saved.output,
            success=saved.status is StepStatus.OK,
            attempts=saved.attempts,
            latency_s=saved.latency_s,
            cost_usd=dollars(cost + saved.cost_usd),
            token_counts=tokens + saved.tokens,
            feedback=saved.feedback,
            metadata=metadata,
            step_history=children,
        )
    attempts, estimated = 0, False
    for (_, request), record in node.calls.items():
        attempts += request == 0
        usage = record.usage if record.usage is not None else record.reserved
        if usage is not None:
            cost += money(usage.cost_usd)
            tokens += usage.tokens
        estimated = estimated or record.estimated or record.status is CallStatus.STARTED
    paused = any(child.metadata.get("paused") for child in children)
    flags: dict[str, Any] = {"paused": True} if paused else {"cancelled": True}
    if estimated:
        flags["usage_estimated"] = True
    why = "the run is still running" if run_status is RunStatus.RUNNING else "the run stopped"
    return StepResult(
        name=name,
        output=None,
        success=False,
        attempts=attempts,
        cost_usd=dollars(cost),
        token_counts=tokens,
        feedback=None if paused else f"Interrupted: {why} before this step finished",
        metadata=flags,
        step_history=children,
    )
