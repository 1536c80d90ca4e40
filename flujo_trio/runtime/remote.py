"""Running one fan-out job in another process, with the same kernel and actors.

A remote worker (a Ray task, say) builds a :class:`RunContext` of its own around
the job's body and runs it with the ordinary kernel. Only two things differ from a
local job, and both are wired back to the run's owner through a :class:`Link`:

- the governor (:class:`WorkerGovernor`) decides the scopes opened inside the job
  itself (a nested ``Step(limits=)``: nobody else spends in them) and asks the
  owner's governor, the run's only ledger, for everything that counts in the scopes
  around the job: every reservation (when any of them is limited), settlement,
  correction and replayed charge;
- the journal (:class:`RemoteJournal`) sends every entry to the owner's journal, in
  order, and a ``sync`` waits until the owner has stored them, so a durable run keeps
  its promise for remote calls too.

The job ends by sending an :class:`~flujo_trio.runtime.wire.Outcome`: its record
tree (unfinished records included, for the owner to interrupt with its own reason),
its context and any request to stop the run.
"""

from __future__ import annotations

import itertools
import traceback
from decimal import Decimal
from typing import Any, Protocol

import attrs
import trio

from ..context import PipelineContext
from ..dsl.pipeline import Pipeline
from ..errors import SerializationError
from ..state.journal import Address, Entry
from ..usage import NO_USAGE, Usage, UsageLimits, money
from .actors import ACTORS
from .bus import EventBus
from .control import RunControl
from .frame import Frame, RunContext
from .governor import Denial, Governor, Grant
from .journal import RunJournal
from .kernel import Kernel
from .ledger import BudgetScope
from .record import StepRecord
from .replay import Replay
from .wire import Halted, Outcome, encode_outcome, entry_fields, usage_fields, wire_record


class Link(Protocol):
    """The worker's end of the line to the run's owner; messages arrive in order."""

    def send(self, message: list[Any]) -> None:
        """Queue ``message`` for the owner (never blocks)."""
        ...

    async def ask(self, message: list[Any]) -> list[Any]:
        """Send ``message`` after everything sent before it, and wait for the answer."""
        ...


@attrs.frozen
class Chain:
    """What the worker needs to know of the owner's scopes around the job."""

    run_level: bool
    """The job's scope is the run's own (no scope with ``limits=`` around it)."""
    label: str | None
    limited: bool
    """Some scope around the job has a limit: every reservation asks the owner."""
    limited_cost: bool
    limited_tokens: bool


@attrs.frozen
class JobSpec:
    """Everything a worker needs to run one job (sent to it by the owner)."""

    run_id: str
    name: str
    kind: str
    data: Any
    context: PipelineContext
    path: tuple[str, ...]
    address: Address
    position: tuple[int, ...]
    chain: Chain
    durable: bool
    replay: tuple[Entry, ...] | None
    answer_for: Address | None = None
    answer: Any = None
    resources: Any = None


class RemoteGrant(Grant):
    """A grant of the worker's governor, numbered so the owner can match it."""

    __slots__ = ("chain_limits", "number")

    def __init__(self, grant: Grant, number: int, chain_limits: tuple[bool, bool]) -> None:
        super().__init__(grant.chain, grant.usage, grant.cost)
        self.number = number
        self.chain_limits = chain_limits

    def exceeded_by(self, actual: Usage) -> bool:
        limited_cost, limited_tokens = self.chain_limits
        return super().exceeded_by(actual) or (
            (limited_cost and money(actual.cost_usd) > self.cost)
            or (limited_tokens and actual.tokens > self.tokens)
        )


class WorkerGovernor(Governor):
    """Decides the job's own nested scopes here; relays the rest to the owner.

    ``root`` stands for the owner's run scope and ``job_scope`` for the owner's scope
    of the job: both are unlimited here (the owner holds their limits), so that a
    denial names the right level (``Denial.run_level``) and replayed charges skip
    the run's total exactly as they do locally.
    """

    def __init__(self, link: Link, chain: Chain, run_scope: trio.CancelScope) -> None:
        super().__init__(UsageLimits(), run_scope)
        self.link = link
        self.chain = chain
        self.job_scope = (
            self.root
            if chain.run_level
            else BudgetScope(chain.label, UsageLimits(), self.root, run_scope)
        )
        self._numbers = itertools.count(1)

    def _admit(self, chain: tuple[BudgetScope, ...], usage: Usage, cost: Decimal) -> Grant:
        grant = super()._admit(chain, usage, cost)
        limits = (self.chain.limited_cost, self.chain.limited_tokens)
        return RemoteGrant(grant, next(self._numbers), limits)

    def admit_now(self, scope: BudgetScope, usage: Usage) -> Grant | None:
        if self.chain.limited:
            return None
        grant = super().admit_now(scope, usage)
        if grant is not None:
            self._tell_admitted(grant)
        return grant

    async def reserve(self, scope: BudgetScope, usage: Usage) -> Grant | Denial:
        outcome = await super().reserve(scope, usage)  # the job's own scopes first
        if isinstance(outcome, Denial):
            return outcome
        if not self.chain.limited:
            self._tell_admitted(outcome)
            return outcome
        assert isinstance(outcome, RemoteGrant)
        try:
            reply = await self.link.ask(["admit", outcome.number, *usage_fields(usage)])
        except BaseException:
            # Cancelled while the owner decided: the request is handed back on both sides.
            self.link.send(["abandon", outcome.number])
            super().settle(outcome, NO_USAGE)
            raise
        if reply[0] == "granted":
            return outcome
        super().settle(outcome, NO_USAGE)
        message = str(reply[1]) if len(reply) > 1 else "Usage limit reached"
        run_level = bool(reply[2]) if len(reply) > 2 else False
        return Denial(self.root if run_level else self.job_scope, message)

    def _tell_admitted(self, grant: Grant) -> None:
        assert isinstance(grant, RemoteGrant)
        self.link.send(["admitted", grant.number, *usage_fields(grant.usage)])

    def settle(self, grant: Grant, actual: Usage, *, estimated: bool = False) -> None:
        if grant.settled:
            return
        super().settle(grant, actual, estimated=estimated)
        assert isinstance(grant, RemoteGrant)
        self.link.send(["settle", grant.number, *usage_fields(actual), estimated])

    def correct(self, chain: tuple[BudgetScope, ...], cost: Decimal, tokens: int) -> None:
        if not cost and not tokens:
            return
        super().correct(chain, cost, tokens)
        self.link.send(["correct", str(cost), tokens])

    def charge(self, scope: BudgetScope, actual: Usage, *, include_run: bool = True) -> None:
        super().charge(scope, actual, include_run=include_run)
        self.link.send(["charge", *usage_fields(actual), include_run])

    def count_replayed_request(self, scope: BudgetScope) -> None:
        super().count_replayed_request(scope)
        self.link.send(["replayed"])


class RemoteJournal(RunJournal):
    """The job's journal: every entry goes to the owner's journal, in order.

    Entries are encoded the moment they are recorded (the value as it was then; an
    unstorable value fails right there, naming its path, as with a SQL store).
    """

    def __init__(self, link: Link, run_id: str, durable: bool) -> None:
        # Nothing of the store-writing journal is used: no store lives here.
        self.link, self.run_id, self.durable = link, run_id, durable
        self.failure = None

    def record(self, entry: Entry) -> None:
        try:
            fields = entry_fields(entry)
        except SerializationError as error:
            raise SerializationError(
                f"In run {self.run_id!r}, on a Ray worker: {error} (values a remote job "
                "sends back go through the converter, as for a SQLite store)"
            ) from error
        self.link.send(["entry", *fields])

    def record_step(self, record: StepRecord, changes: Any = None) -> None:
        self.record(record.saved(changes))

    async def sync(self) -> None:
        if not self.durable:
            await trio.lowlevel.checkpoint()
            return
        await self.link.ask(["sync"])


def _replay(spec: JobSpec) -> Replay | None:
    if spec.replay is None:
        return None
    return Replay(spec.replay, spec.answer_for, spec.answer)


class WorkerJob:
    """One job's body run here, and how it ended (readable after a cancellation too)."""

    def __init__(self, spec: JobSpec, body: Pipeline, link: Link) -> None:
        self.spec, self.body, self.link = spec, body, link
        self.root = StepRecord(spec.name, spec.kind, spec.address, spec.position)
        self.control: RunControl | None = None
        self.error: str | None = None
        self.serialization = False

    async def run(self) -> None:
        """Run the body with the ordinary kernel; a cancellation from outside goes on
        (the caller then sends :meth:`outcome` from a shielded cleanup)."""
        spec = self.spec
        with trio.CancelScope() as governed:
            control = self.control = RunControl(governed)
            governor = WorkerGovernor(self.link, spec.chain, governed)
            run = RunContext(
                run_id=spec.run_id,
                kernel=Kernel(ACTORS),
                governor=governor,
                control=control,
                bus=EventBus((), None, control, UsageLimits(), spec.run_id),
                journal=RemoteJournal(self.link, spec.run_id, spec.durable),
                replay=_replay(spec),
                resources=spec.resources,
            )
            frame = Frame(
                run, spec.context, governor.job_scope, spec.path, spec.address, spec.position
            )
            try:
                last = await run.kernel.run_sequence(self.body.steps, spec.data, frame, self.root)
                self.root.end_like(last, last.output)
            except SerializationError as failure:
                self.error = str(failure)
                self.serialization = True
            except Exception as bug:  # raised again by the owner, with this text
                self.error = "".join(traceback.format_exception(bug)).strip()

    def outcome(self) -> Any:
        """How the job ended, unstructured for the wire (plain JSON values). A record
        or context that cannot be sent becomes an error outcome that says why."""
        control = self.control
        halted = None
        if control is not None and control.halt is not None:
            halted = Halted(control.halt.value, control.message or "")
        what = f"the result of {self.spec.name!r} on its Ray worker"
        try:
            outcome = Outcome(
                wire_record(self.root, trio.current_time()),
                self.spec.context,
                halted=halted,
                error=self.error,
                serialization=self.serialization,
            )
            return encode_outcome(outcome, what=what)
        except SerializationError as error:
            failed = Outcome(None, None, error=str(error), serialization=True)
            return encode_outcome(failed, what=what)
