"""The owner's end of a remote job: its ledger messages applied to the run's governor,
its journal entries recorded by the run's journal, its outcome attached to its record.

Transport-free: an executor hands each message of one job, in order, to
:meth:`JobBridge.handle`, and sends back what ``reply`` is given. Every reservation
of a remote call is decided by the run's own governor in the job's scope chain
(``frame.scope``), so a cluster of workers spends under one ledger exactly as local
branches do. The bridge also knows which grants are still open, so a worker that
dies or never answers has its calls settled at their reservations (marked as
estimates), as a crashed run's calls are on resume.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

import trio

from ..context import PipelineContext
from ..errors import FlujoTrioError, SerializationError
from ..state.journal import Entry
from ..usage import NO_USAGE, Usage
from .control import Halt
from .frame import Frame
from .governor import Denial, Grant
from .opening import lost_in_flight
from .record import StepRecord
from .wire import Outcome, decode, decode_outcome, entry_from, step_record, usage_from

Reply = Callable[[int, list[Any]], None]
Spawn = Callable[..., None]


class RemoteJobError(FlujoTrioError):
    """A remote job could not run or send back its result for a reason its body did
    not cause (a bug, an unreadable message). The message says what happened."""


class JobBridge:
    """Applies one attempt of one remote job to the run that owns it."""

    def __init__(
        self,
        frame: Frame,
        record: StepRecord,
        *,
        allowing: Callable[[], contextlib.AbstractContextManager[None]],
        spawn: Spawn,
        reply: Reply,
    ) -> None:
        self.frame, self.record = frame, record
        run = frame.run
        self.governor, self.journal, self.scope = run.governor, run.journal, frame.scope
        self._allowing, self._spawn, self._reply = allowing, spawn, reply
        self.grants: dict[int, Grant | None] = {}
        """Open grants by the worker's number; None while the governor decides."""
        self._early: dict[int, tuple[Usage, bool]] = {}
        self._deciding: dict[int, trio.CancelScope] = {}
        self.entries: list[Entry] = []
        """Every journal entry this attempt sent (a retry replays them)."""
        self.outcome: Outcome | None = None
        self._expected: tuple[int, list[Any], Any] | None = None
        self.handled = 0
        """Messages handled so far (the outcome comes after a known number of them)."""
        self.failure: FlujoTrioError | None = None
        self.done = trio.Event()
        self.closed = False

    # -- messages ------------------------------------------------------------------------

    def handle(self, text: Any) -> None:
        """Apply one message from the worker (never raises: a bad message fails the job)."""
        if self.closed:
            return
        self.handled += 1
        self._guarded(self._dispatch, text)
        expected = self._expected
        if expected is not None and self.handled >= expected[0]:
            self._expected = None
            self._done(expected[1], expected[2])

    def finish(self, text: Any) -> None:
        """The worker's outcome (``["done", messages sent before, messages sent with it,
        outcome]``): applied once every message sent before it has been."""
        try:
            message = decode(text, what=f"the result of {self.record.name!r}")
            sent, trailing, outcome = int(message[1]), list(message[2]), message[3]
        except FlujoTrioError as error:
            self._fail(error)
            return
        except (TypeError, ValueError, IndexError) as error:
            self._fail(RemoteJobError(f"A worker of {self.record.name!r} sent {text!r}: {error}"))
            return
        if self.handled >= sent:
            self._done(trailing, outcome)
        else:
            self._expected = (sent, trailing, outcome)

    def _guarded(self, apply: Callable[[Any], None], value: Any) -> None:
        try:
            with self._allowing():
                apply(value)
        except FlujoTrioError as error:
            self._fail(error)
        except (TypeError, ValueError, IndexError, InvalidOperation) as error:
            self._fail(RemoteJobError(f"A worker of {self.record.name!r} sent {value!r}: {error}"))

    def _done(self, trailing: list[Any], outcome: Any) -> None:
        for text in trailing:
            self._guarded(self._dispatch, text)
        self._guarded(self._outcome, outcome)

    def _outcome(self, data: Any) -> None:
        self.outcome = decode_outcome(data, what=f"the result of {self.record.name!r}")
        self.done.set()

    def _dispatch(self, text: Any) -> None:
        message = decode(text, what=f"a message from {self.record.name!r}")
        kind = message[0]
        governor, scope = self.governor, self.scope
        if kind == "settle":
            self._settle(int(message[1]), usage_from(message[2], message[3]), bool(message[4]))
        elif kind == "admitted":
            self._admitted(int(message[1]), usage_from(message[2], message[3]))
        elif kind == "ask":
            self._ask(int(message[1]), message[2:])
        elif kind == "entry":
            self._entry(message[1], message[2])
        elif kind == "abandon":
            self._abandon(int(message[1]))
        elif kind == "correct":
            governor.correct(scope.chain(), Decimal(str(message[1])), int(message[2]))
        elif kind == "charge":
            usage = usage_from(message[1], message[2])
            governor.charge(scope, usage, include_run=bool(message[3]))
        elif kind == "replayed":
            governor.count_replayed_request(scope)
        elif kind != "noop":
            raise RemoteJobError(f"A worker of {self.record.name!r} sent an unknown {kind!r}")

    def _fail(self, error: FlujoTrioError) -> None:
        if self.failure is None:
            self.failure = error
        self.done.set()

    def _entry(self, kind: Any, data: Any) -> None:
        entry = entry_from(kind, data, run_id=self.frame.run.run_id, seq=len(self.entries))
        self.journal.record(entry)
        self.entries.append(entry)

    # -- the ledger ----------------------------------------------------------------------

    def _admitted(self, number: int, usage: Usage) -> None:
        """The worker admitted a call itself (nothing around the job is limited)."""
        grant = self.governor.admit_now(self.scope, usage)
        if grant is not None:
            self.grants[number] = grant
        else:  # a limit appeared elsewhere in the run: the ledger still takes it in order
            self._decide(number, usage, None)

    def _ask(self, request: int, question: list[Any]) -> None:
        if question[0] == "admit":
            self._decide(int(question[1]), usage_from(question[2], question[3]), request)
        elif question[0] == "sync":
            self._spawn(self._sync, request, name=f"flujo-remote-sync:{self.record.name}")
        else:
            raise RemoteJobError(f"A worker of {self.record.name!r} asked {question[0]!r}")

    def _decide(self, number: int, usage: Usage, request: int | None) -> None:
        self.grants[number] = None
        self._spawn(self._reserve, number, usage, request, name=f"flujo-remote:{self.record.name}")

    async def _reserve(self, number: int, usage: Usage, request: int | None) -> None:
        with trio.CancelScope() as deciding:
            self._deciding[number] = deciding
            try:
                outcome = await self.governor.reserve(self.scope, usage)
            finally:
                del self._deciding[number]
        if deciding.cancelled_caught:
            return  # the job ended or gave the request up; the governor took it back
        if isinstance(outcome, Denial):
            self.grants.pop(number, None)
            if outcome.run_level:
                self.frame.run.control.deny(outcome.message)
            if request is not None:
                self._answer(request, "denied", outcome.message, outcome.run_level)
            return
        if self.closed or number not in self.grants:
            self.governor.settle(outcome, NO_USAGE)  # nobody will use it
            return
        self.grants[number] = outcome
        early = self._early.pop(number, None)
        if early is not None:
            self._settle(number, *early)
        if request is not None:
            self._answer(request, "granted")

    def _settle(self, number: int, usage: Usage, estimated: bool) -> None:
        grant = self.grants.get(number)
        if grant is None:
            if number in self.grants:
                self._early[number] = (usage, estimated)  # settled before it was granted
            return
        del self.grants[number]
        self.governor.settle(grant, usage, estimated=estimated)
        if self.frame.run.bus.active:  # as a local call does: the ledger changed
            self._spawn(self._usage_event, name=f"flujo-remote-usage:{self.record.name}")

    async def _usage_event(self) -> None:
        governor = self.governor
        await self.frame.run.bus.usage(governor.spent, governor.statistics())

    def _abandon(self, number: int) -> None:
        deciding = self._deciding.get(number)
        if deciding is not None:
            deciding.cancel(reason="flujo-trio: the remote call was given up")
        grant = self.grants.pop(number, None)
        if grant is not None:
            self.governor.settle(grant, NO_USAGE)

    async def _sync(self, request: int) -> None:
        try:
            await self.journal.sync()
        except FlujoTrioError:
            return  # the journal failed: the run is stopping, and this job with it
        self._answer(request, "synced")

    def _answer(self, request: int, *answer: Any) -> None:
        if not self.closed:
            self._reply(request, ["reply", request, *answer])

    # -- the end -------------------------------------------------------------------------

    def close(self) -> Usage:
        """This attempt is over: nothing more is decided for it, and calls it left open
        (a worker that died, or was killed after not answering) are settled at their
        reservations as estimates. Returns what was charged so."""
        self.closed = True
        for deciding in self._deciding.values():
            deciding.cancel(reason="flujo-trio: the remote job ended")
        charged = NO_USAGE
        for grant in self.grants.values():
            if grant is not None and not grant.settled:
                self.governor.settle(grant, grant.usage, estimated=True)
                charged = charged + grant.usage
        self.grants.clear()
        lost, _ = lost_in_flight(tuple(self.entries))  # as a crashed run's, on resume
        for entry in lost:
            self.journal.record(entry)
        self.entries.extend(lost)
        return charged

    def attach(self, now: float) -> PipelineContext | None:
        """Put what the job did under its record; returns the context it ended with.

        Raises what the job could not survive: an unstorable value
        (:class:`SerializationError`, as with a SQLite store) or a broken message.
        """
        if self.failure is not None:
            raise self.failure
        outcome = self.outcome
        if outcome is None:
            return None
        record = self.record
        if outcome.record is not None:
            job = step_record(outcome.record, now)
            record.children.extend(job.children)
            record.attempts += job.attempts
            record.cost += job.cost
            record.tokens += job.tokens
            if job.status is not None and record.children:
                last = record.children[-1]
                record.end_like(last, last.output)
        if outcome.halted is not None:
            self.frame.run.control.stop(Halt(outcome.halted.halt), outcome.halted.message)
        if outcome.error is not None:
            if outcome.serialization:
                raise SerializationError(outcome.error)
            raise RemoteJobError(outcome.error)
        return outcome.context
