"""The governor actor: the run's only usage ledger, and the one that stops a run on budget.

Step actors never touch the ledger. Before every agent call they send ``Reserve``
and wait for the answer; after it they send ``Settle`` (or ``Report`` for usage not
tied to a reservation) and wait for the acknowledgement. Waiting is the
backpressure: no sender can run ahead of the ledger, and a breach caused by step N
is decided before step N+1 asks to start.

Each turn the governor drains everything queued, applies all spend first, and only
then decides admissions, so a reservation is never granted against stale totals.

Requests are put on the channel with ``send_nowait`` and then awaited, so a request
is never lost to a cancellation: usage settled by a step that is being cancelled
still reaches the ledger. The channel is unbounded for that reason, but it cannot
grow without bound: every sender waits for its answer, so each task has at most one
request queued. That wait is the backpressure (unlike fire-and-forget usage events,
which let branches run far past a limit before the ledger catches up).
Reservations are admitted atomically (spent + reserved + new <= limit). A breach of
spend cancels the governed scope at once. A denied reservation is not a breach: it
closes admissions, and the run winds down on its own. Calls already admitted finish
with their checks (their cost fits the limit, so cancelling them would waste it),
every later admission is denied, and the runner raises once the run has ended.
Without any limit nothing can be denied, so clients admit calls locally and only
their settlements travel to the governor.
"""

from __future__ import annotations

import logging
import math
from decimal import Decimal

import attrs
import trio

from ..usage import Usage, UsageLimits, money

logger = logging.getLogger("flujo_trio")


@attrs.define(eq=False)
class Reservation:
    """Usage set aside for one admitted agent call until it is settled."""

    usage: Usage
    watch_cost: bool = True
    watch_tokens: bool = True
    settled: bool = False
    held: bool = True
    """Counted in the ledger's reserved totals (admitted by the governor). A run with
    no limits admits every call without asking, and nothing is held for it."""

    def exceeded_by(self, actual: Usage) -> bool:
        """Whether ``actual`` spends more than reserved on a dimension that is limited."""
        return (self.watch_cost and money(actual.cost_usd) > money(self.usage.cost_usd)) or (
            self.watch_tokens and actual.tokens > self.usage.tokens
        )


@attrs.define(eq=False)
class Reserve:
    usage: Usage
    done: trio.Event = attrs.field(factory=trio.Event)
    granted: Reservation | None = None
    denial: str | None = None
    abandoned: bool = False
    """Set when the requester was cancelled before the answer: never grant it then."""


@attrs.define(eq=False)
class Settle:
    reservation: Reservation
    actual: Usage
    done: trio.Event = attrs.field(factory=trio.Event)
    total: Usage | None = None
    """The ledger's total once this was applied (for usage events)."""


@attrs.define(eq=False)
class Report:
    delta: Usage
    done: trio.Event = attrs.field(factory=trio.Event)


Message = Reserve | Settle | Report


class StopKind:
    BREACH = "breach"
    DENIED = "denied"


@attrs.define(eq=False)
class Ledger:
    """Totals of one run; plain data so it can be read (and saved) after any exit."""

    limits: UsageLimits = attrs.field(factory=UsageLimits)
    spent_cost: Decimal = Decimal(0)
    spent_tokens: int = 0
    reserved_cost: Decimal = Decimal(0)
    reserved_tokens: int = 0
    outstanding: set[Reservation] = attrs.field(factory=set)
    stop_kind: str | None = None
    stop_message: str | None = None

    @property
    def spent(self) -> Usage:
        return Usage(float(self.spent_cost), self.spent_tokens)

    def _over(self, cost: Decimal, tokens: int) -> str | None:
        limits = self.limits
        if limits.total_cost_usd_limit is not None and cost > money(limits.total_cost_usd_limit):
            return limits.cost_message()
        if limits.total_tokens_limit is not None and tokens > limits.total_tokens_limit:
            return limits.tokens_message()
        return None

    def spend(self, usage: Usage) -> None:
        self.spent_cost += money(usage.cost_usd)
        self.spent_tokens += usage.tokens

    def release(self, reservation: Reservation) -> None:
        if reservation.settled:
            return
        reservation.settled = True
        if reservation.held:
            self.outstanding.discard(reservation)
            self.reserved_cost -= money(reservation.usage.cost_usd)
            self.reserved_tokens -= reservation.usage.tokens

    def settle(self, reservation: Reservation, actual: Usage) -> None:
        """Replace the reservation by what the call spent."""
        self.release(reservation)
        self.spend(actual)

    def check_breach(self) -> None:
        if self.stop_kind == StopKind.BREACH:
            return
        message = self._over(self.spent_cost, self.spent_tokens)
        if message is not None:
            self.stop_kind, self.stop_message = StopKind.BREACH, message

    def admit(self, usage: Usage) -> Reservation | None:
        if self.stop_kind is not None:
            return None
        cost = self.spent_cost + self.reserved_cost + money(usage.cost_usd)
        tokens = self.spent_tokens + self.reserved_tokens + usage.tokens
        message = self._over(cost, tokens)
        if message is not None:
            self.stop_kind, self.stop_message = StopKind.DENIED, message
            return None
        limits = self.limits
        reservation = Reservation(
            usage,
            watch_cost=limits.total_cost_usd_limit is not None or usage.cost_usd > 0,
            watch_tokens=limits.total_tokens_limit is not None or usage.tokens > 0,
        )
        self.outstanding.add(reservation)
        self.reserved_cost += money(usage.cost_usd)
        self.reserved_tokens += usage.tokens
        return reservation

    def charge_abandoned(self) -> None:
        """Charge calls that were cancelled mid-flight their reservation (usage unknown)."""
        for reservation in list(self.outstanding):
            self.settle(reservation, reservation.usage)


@attrs.define(eq=False)
class Governor:
    """One per run: serves the ledger and cancels ``governed`` when the budget is gone."""

    ledger: Ledger
    governed: trio.CancelScope
    send_channel: trio.MemorySendChannel[Message]
    receive_channel: trio.MemoryReceiveChannel[Message]

    @classmethod
    def open(cls, ledger: Ledger, governed: trio.CancelScope) -> Governor:
        send, receive = trio.open_memory_channel[Message](math.inf)
        return cls(ledger, governed, send, receive)

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until the runner closes the send side; :meth:`finish` handles leftovers."""
        task_status.started()
        async for first in self.receive_channel:
            self._handle([first, *self._drain()])

    def _drain(self) -> list[Message]:
        batch: list[Message] = []
        while True:
            try:
                batch.append(self.receive_channel.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                return batch

    def _handle(self, batch: list[Message]) -> None:
        ledger = self.ledger
        for message in batch:
            if isinstance(message, Settle):
                ledger.settle(message.reservation, message.actual)
                message.total = ledger.spent
            elif isinstance(message, Report):
                ledger.spend(message.delta)
        ledger.check_breach()
        for message in batch:
            if isinstance(message, Reserve) and not message.abandoned:
                message.granted = ledger.admit(message.usage)
                message.denial = None if message.granted else ledger.stop_message
            # Every request is answered before any cancel below: a denied step learns
            # it was denied (attempts == 0), and the step whose spend breached gets
            # its totals and records its completed call. The cancel then lands at
            # each task's next checkpoint, so no new step or agent call starts.
            message.done.set()
        if ledger.stop_kind == StopKind.BREACH and not self.governed.cancel_called:
            logger.info("flujo-trio governor: %s; cancelling the run", ledger.stop_message)
            self.governed.cancel(reason=f"flujo-trio governor: {ledger.stop_message}")

    def close(self) -> None:
        self.send_channel.close()

    def finish(self) -> None:
        """After the run: apply spend still queued (the governor may have been cancelled
        first), then charge calls cancelled mid-flight their reservation."""
        for message in self._drain():
            if isinstance(message, Settle):
                self.ledger.settle(message.reservation, message.actual)
            elif isinstance(message, Report):
                self.ledger.spend(message.delta)
        self.receive_channel.close()
        self.ledger.charge_abandoned()


@attrs.frozen
class GovernorClient:
    """What a step actor holds: ask before a call, settle after it."""

    send_channel: trio.MemorySendChannel[Message]
    unlimited: bool = False
    """No limits: admissions cannot be denied, so calls skip the round trip."""

    async def reserve(self, usage: Usage) -> Reservation | str:
        """Admission for one agent call: the reservation, or why it was denied."""
        if self.unlimited:
            await trio.lowlevel.checkpoint()  # still a cancellation point, as asking is
            return Reservation(usage, watch_cost=False, watch_tokens=False, held=False)
        request = Reserve(usage)
        self.send_channel.send_nowait(request)
        try:
            await request.done.wait()
        except trio.Cancelled:
            # The governor may already have granted it (the grant and this cancel can
            # land in the same scheduling batch): hand it back unused. Otherwise mark it
            # so the governor never grants it.
            request.abandoned = True
            if request.granted is not None:
                self.send_channel.send_nowait(Settle(request.granted, Usage()))
            raise
        if request.granted is not None:
            return request.granted
        return request.denial or "Usage limit reached"

    async def settle(self, reservation: Reservation, actual: Usage) -> Usage:
        """Hand the actual usage to the ledger; a breach cancels the run right here.

        Returns the run's total spend once this usage was applied.
        """
        request = Settle(reservation, actual)
        self.send_channel.send_nowait(request)
        await request.done.wait()
        assert request.total is not None
        return request.total

    def abandon(self, reservation: Reservation) -> None:
        """The call was cancelled mid-flight: its usage is unknown, so it is charged its
        reservation (sent without waiting: the caller is being cancelled)."""
        self.send_channel.send_nowait(Settle(reservation, reservation.usage))

    async def report(self, delta: Usage) -> None:
        """Usage not tied to a reservation (e.g. spent by a tool outside an agent call)."""
        request = Report(delta)
        self.send_channel.send_nowait(request)
        await request.done.wait()
