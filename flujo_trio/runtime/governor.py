"""The governor: the run's only ledger, and the one that stops a run (or a scope) on budget.

Before every agent call a step asks :meth:`Governor.reserve`; after it, it settles
what the call really spent. A Trio run is single-threaded, so the ledger is changed
by plain method calls that never yield: a decision is never taken against stale
totals, and no message can be lost to a cancellation. Only waiting needs the
scheduler.

Admission: a reservation that fits beside the outstanding ones is granted at once.
One that does not fit *yet* waits, in arrival order (FIFO per scope), until
settlements free room; a cancelled waiter leaves the queue. A reservation is denied
only when it can never fit: what was already spent plus the reservation passes the
limit. A run-level denial closes admissions for the whole run, which then winds down
without cancelling calls already admitted (their cost fits), and raises
:class:`~flujo_trio.UsageLimitExceededError`. A breach of spend cancels the run's
scope at once, with a reason. Scopes of steps with ``limits=`` work the same way,
but stop only their own step.

With reservations a run never overshoots, and it uses the budget up to the bound no
overshoot allows: nothing is denied before spend passes ``limit - reservation``.
Without any limit anywhere nothing can be denied or wait, and calls are admitted
without queueing.
"""

from __future__ import annotations

import logging
from collections import deque
from decimal import Decimal

import trio

from ..agent_api import RequestDenied
from ..governance import GovernorStatistics
from ..usage import Usage, UsageLimits, dollars, money
from .ledger import ZERO, BudgetScope, Stop, Verdict

logger = logging.getLogger("flujo_trio")


class Grant:
    """Usage set aside for one admitted call until it is settled."""

    __slots__ = ("chain", "cost", "estimated", "settled", "tokens", "usage")

    def __init__(self, chain: tuple[BudgetScope, ...], usage: Usage, cost: Decimal) -> None:
        self.chain = chain
        self.usage = usage
        self.cost = cost
        self.tokens = usage.tokens
        self.settled = False
        self.estimated = False

    def exceeded_by(self, actual: Usage) -> bool:
        """Whether ``actual`` spent more than reserved on a dimension that was reserved
        or is limited somewhere in this grant's scopes."""
        limited_cost = any(s.limits.total_cost_usd_limit is not None for s in self.chain)
        limited_tokens = any(s.limits.total_tokens_limit is not None for s in self.chain)
        return ((limited_cost or self.cost > 0) and money(actual.cost_usd) > self.cost) or (
            (limited_tokens or self.tokens > 0) and actual.tokens > self.tokens
        )


class Denial:
    """Why a reservation was refused, and which scope refused it."""

    __slots__ = ("message", "scope")

    def __init__(self, scope: BudgetScope, message: str) -> None:
        self.scope, self.message = scope, message

    @property
    def run_level(self) -> bool:
        return self.scope.parent is None


class _Waiter:
    __slots__ = ("chain", "cost", "event", "outcome", "usage")

    def __init__(self, chain: tuple[BudgetScope, ...], usage: Usage, cost: Decimal) -> None:
        self.chain, self.usage, self.cost = chain, usage, cost
        self.event = trio.Event()
        self.outcome: Grant | Denial | None = None


class Governor:
    """One per run. ``run_scope`` is cancelled when the run's own budget is breached."""

    def __init__(
        self,
        limits: UsageLimits,
        run_scope: trio.CancelScope,
        *,
        spent_cost: Decimal = ZERO,
        spent_tokens: int = 0,
        spent_requests: int = 0,
    ) -> None:
        self.root = BudgetScope(None, limits, None, run_scope)
        self.root.spent_cost, self.root.spent_tokens = spent_cost, spent_tokens
        self.root.spent_requests = spent_requests
        self._queue: deque[_Waiter] = deque()
        self.admitted = self.denied = self.in_flight = 0
        self.first_denial: Usage | None = None
        self.peak_waiting = self.peak_in_flight = 0
        self._limited_anywhere = not limits.unlimited

    # -- scopes -------------------------------------------------------------------------

    def open_scope(
        self, label: str, limits: UsageLimits, parent: BudgetScope, cancel_scope: trio.CancelScope
    ) -> BudgetScope:
        """A budget for one step (``limits=``) or map item, inside ``parent``."""
        if not limits.unlimited:
            self._limited_anywhere = True
        return BudgetScope(label, limits, parent, cancel_scope)

    @property
    def run_stop(self) -> tuple[Stop, str] | None:
        root = self.root
        return (root.stop, root.stop_message or "") if root.stop is not None else None

    # -- admission -------------------------------------------------------------------------

    def admit_now(self, scope: BudgetScope, usage: Usage) -> Grant | None:
        """A grant without asking, when nothing anywhere is limited (nothing can be
        denied or wait); None otherwise: then :meth:`reserve`. The caller must already
        have been at a cancellation point (a run that stopped starts no call)."""
        if self._limited_anywhere:
            return None
        return self._admit(scope.scopes, usage, money(usage.cost_usd))

    async def reserve(self, scope: BudgetScope, usage: Usage) -> Grant | Denial:
        """Admission for one call: a grant, or why it can never fit. May wait for room."""
        await trio.lowlevel.checkpoint_if_cancelled()
        chain = scope.chain()
        cost = money(usage.cost_usd)
        if not self._limited_anywhere:
            return self._admit(chain, usage, cost)
        if not self._queue:
            verdict = self._decide(chain, usage, cost)
            if verdict is not None:
                return verdict
        waiter = _Waiter(chain, usage, cost)
        self._queue.append(waiter)
        self.peak_waiting = max(self.peak_waiting, len(self._queue))
        try:
            await waiter.event.wait()
        except trio.Cancelled:
            if waiter.outcome is None:
                self._queue.remove(waiter)  # a cancelled waiter leaves the queue
            elif isinstance(waiter.outcome, Grant):
                # Granted in the same scheduling batch as the cancel: the requester
                # never saw it, so it is handed back unused.
                self.settle(waiter.outcome, Usage())
            self._pump()
            raise
        assert waiter.outcome is not None
        return waiter.outcome

    def _decide(
        self, chain: tuple[BudgetScope, ...], usage: Usage, cost: Decimal
    ) -> Grant | Denial | None:
        """Grant, deny, or None (wait); the run's own scope is asked first."""
        waits = False
        for scope in chain:
            verdict, message = scope.verdict(cost, usage.tokens)
            if verdict is Verdict.DENY:
                return self._deny(scope, message or "Usage limit reached")
            waits = waits or verdict is Verdict.WAIT
        if waits:
            return None
        return self._admit(chain, usage, cost)

    def _admit(self, chain: tuple[BudgetScope, ...], usage: Usage, cost: Decimal) -> Grant:
        for scope in chain:
            scope.hold(cost, usage.tokens)
        self.admitted += 1
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        return Grant(chain, usage, cost)

    def _count_denial(self) -> None:
        if not self.denied:  # what the run had spent when the budget first said no
            self.first_denial = self.spent
        self.denied += 1

    def _deny(self, scope: BudgetScope, message: str) -> Denial:
        self._count_denial()
        if scope.close(Stop.DENIED, message):
            logger.info("flujo-trio governor: %s; admissions closed", message)
            if scope.parent is None:
                self._deny_all_waiting()
        return Denial(scope, message)

    def _deny_all_waiting(self) -> None:
        while self._queue:
            waiter = self._queue.popleft()
            self._count_denial()
            waiter.outcome = Denial(self.root, self.root.stop_message or "Usage limit reached")
            waiter.event.set()

    def _pump(self) -> None:
        """Serve waiters in arrival order; one that waits blocks later ones on its scopes."""
        blocked: set[int] = set()
        root_id = id(self.root)
        for waiter in list(self._queue):
            if root_id in blocked:
                return  # every waiter needs the run's scope
            if any(id(scope) in blocked for scope in waiter.chain):
                continue
            outcome = self._decide(waiter.chain, waiter.usage, waiter.cost)
            if outcome is None:
                for scope in waiter.chain:
                    if scope.verdict(waiter.cost, waiter.usage.tokens)[0] is Verdict.WAIT:
                        blocked.add(id(scope))
                continue
            if waiter in self._queue:
                self._queue.remove(waiter)
            waiter.outcome = outcome
            waiter.event.set()

    # -- settling --------------------------------------------------------------------------

    def settle(self, grant: Grant, actual: Usage, *, estimated: bool = False) -> None:
        """Replace ``grant``'s reservation by what the call spent; a breach stops its scope
        (the run's scope: the whole run) right here."""
        if grant.settled:
            return
        grant.settled = True
        grant.estimated = estimated
        self.in_flight -= 1
        cost, tokens = money(actual.cost_usd), actual.tokens
        for scope in grant.chain:
            scope.release(grant.cost, grant.tokens)
            scope.spend(cost, tokens)
        self._check(grant.chain)
        if self._queue:
            self._pump()

    def correct(self, chain: tuple[BudgetScope, ...], cost: Decimal, tokens: int) -> None:
        """Adjust spend already settled (either way) when a call reports its real usage
        after an estimate was settled for part of it."""
        if not cost and not tokens:
            return
        for scope in chain:
            scope.spend(cost, tokens)
        self._check(chain)
        if self._queue:
            self._pump()

    def charge(self, scope: BudgetScope, actual: Usage, *, include_run: bool = True) -> None:
        """Spend not tied to a grant (a journaled call replayed into the scopes of a
        resumed run: ``include_run=False``, as the run's total already holds it)."""
        cost, tokens = money(actual.cost_usd), actual.tokens
        for current in scope.chain():
            if current.parent is None and not include_run:
                continue
            current.spend(cost, tokens)
        self._check(scope.chain())

    def count_replayed_request(self, scope: BudgetScope) -> None:
        for current in scope.chain():
            if current.parent is not None:
                current.spent_requests += 1

    def _check(self, chain: tuple[BudgetScope, ...]) -> None:
        for scope in chain:
            message = scope.spent_over()
            if message is not None and scope.close(Stop.BREACH, message):
                logger.info("flujo-trio governor: %s; cancelling its scope", message)
                if scope.parent is None:
                    self._deny_all_waiting()
                cancel_scope = scope.cancel_scope
                if isinstance(cancel_scope, trio.CancelScope):
                    cancel_scope.cancel(reason=f"flujo-trio governor: {message}")

    # -- reading ---------------------------------------------------------------------------

    @property
    def spent(self) -> Usage:
        return Usage(dollars(self.root.spent_cost), self.root.spent_tokens)

    def statistics(self) -> GovernorStatistics:
        root = self.root
        return GovernorStatistics(
            admitted=self.admitted,
            denied=self.denied,
            waiting=len(self._queue),
            peak_waiting=self.peak_waiting,
            in_flight=self.in_flight,
            peak_in_flight=self.peak_in_flight,
            spent=self.spent,
            reserved=Usage(dollars(max(root.reserved_cost, ZERO)), max(root.reserved_tokens, 0)),
            requests=root.spent_requests,
            spent_at_first_denial=self.first_denial,
        )


class CallGate:
    """The governor as an agent's ``meter`` sees it: further requests of one call,
    admitted in the call's scope and charged to its step."""

    __slots__ = ("governor", "on_settle", "scope")

    def __init__(self, governor: Governor, scope: BudgetScope, on_settle: object) -> None:
        self.governor, self.scope, self.on_settle = governor, scope, on_settle

    async def admit(self, reserve: Usage) -> object:
        outcome = await self.governor.reserve(self.scope, reserve)
        if isinstance(outcome, Denial):
            raise RequestDenied(outcome.message)
        return outcome

    def settle(self, grant: object, actual: Usage, *, estimated: bool) -> None:
        assert isinstance(grant, Grant)
        self.governor.settle(grant, actual, estimated=estimated)
        if callable(self.on_settle):
            self.on_settle(grant, actual, estimated)
