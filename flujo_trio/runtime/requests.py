"""Further model requests of one agent call (a tool loop), as ``meter.request`` makes them.

The step's own reservation covers the call's first request. When the agent opens a
second request, the first one is over: its grant is settled right then, with what
the agent reported through ``meter.add`` (or its reservation, as an estimate), so a
call never waits for room that only its own first reservation holds. Each further
request is admitted in the call's scope, journaled before it starts (durable
stores), and charged to the step when it settles. When the call ends, the usage it
reports for itself corrects the first request's settlement.
"""

from __future__ import annotations

from typing import Any

from ..agent_api import RequestDenied, UsageMeter
from ..state.journal import Address, CallRecord, CallStatus
from ..usage import NO_USAGE, Usage
from .governor import CallGate, Denial, Governor, Grant
from .ledger import BudgetScope
from .record import StepRecord


class RequestGate(CallGate):
    """The governor as one call's ``meter`` sees it."""

    __slots__ = (
        "address",
        "control",
        "first",
        "first_usage",
        "journal",
        "meter",
        "number",
        "position",
        "record",
        "requests",
    )

    def __init__(
        self,
        governor: Governor,
        scope: BudgetScope,
        address: Address,
        position: tuple[int, ...],
        record: StepRecord,
        number: int,
        journal: Any = None,
        first: Grant | None = None,
        control: Any = None,
    ) -> None:
        super().__init__(governor, scope, None)
        self.control = control
        self.address, self.position, self.record, self.number = address, position, record, number
        self.journal = journal
        self.first = first
        self.first_usage: Usage = NO_USAGE
        self.requests = 0
        self.meter = UsageMeter(self)

    def bind(self, journal: Any, first: Grant) -> None:
        """The journal and the grant of the call's first request (known once admitted)."""
        self.journal, self.first = journal, first

    def _release_first(self) -> None:
        first, meter = self.first, self.meter
        if first is None or first.settled:
            return
        usage = meter.used if meter.reported else first.usage
        estimated = not meter.reported
        self.governor.settle(first, usage, estimated=estimated)
        self.record.charge(usage)
        if estimated:
            self.record.metadata["usage_estimated"] = True
        self.first_usage = usage

    async def admit(self, reserve: Usage) -> object:
        self._release_first()
        outcome = await self.governor.reserve(self.scope, reserve)
        if isinstance(outcome, Denial):
            if outcome.run_level and self.control is not None:
                # As for a refused step: admitted calls elsewhere must finish, so the
                # failure this causes does not cancel siblings.
                self.control.deny(outcome.message)
                self.record.denied = True
            self.record.metadata["reservation_denied"] = True
            raise RequestDenied(outcome.message)
        grant = outcome
        self.requests += 1
        journal = self.journal
        if journal is not None and journal.durable:
            journal.record(self._record(CallStatus.STARTED, self.requests, reserved=reserve))
            try:
                await journal.sync()
            except BaseException:
                self.governor.settle(grant, NO_USAGE)
                raise
        return _Numbered(grant, self.requests)

    def settle(self, grant: object, actual: Usage, *, estimated: bool) -> None:
        assert isinstance(grant, _Numbered)
        self.governor.settle(grant.grant, actual, estimated=estimated)
        self.record.charge(actual)
        if estimated:
            self.record.metadata["usage_estimated"] = True
        if self.journal is not None:
            status = CallStatus.INTERRUPTED if estimated else CallStatus.SUCCEEDED
            self.journal.record(
                self._record(status, grant.request, usage=actual, estimated=estimated)
            )

    def _record(self, status: CallStatus, request: int, **fields: Any) -> CallRecord:
        return CallRecord(
            self.address, self.position, self.number, status, request=request, **fields
        )


class _Numbered:
    __slots__ = ("grant", "request")

    def __init__(self, grant: Grant, request: int) -> None:
        self.grant, self.request = grant, request
