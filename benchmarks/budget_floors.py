"""The budget workloads' plans and the policies flujo-trio is compared with, as floors.

Every floor runs a plan of :mod:`benchmarks.budget_plans`, as flujo-trio does.

The floors are plain Trio tasks sharing one ledger object: no runtime, no records,
no events. They implement three admission policies faithfully and nothing else:

- ``naive``: fire-and-forget. A call starts without asking; its usage is added when
  it returns; once spend has passed the limit no new call starts, and calls already
  running finish (nothing cancels them). The overshoot is what was in flight.
- ``refuse``: the policy flujo-trio had before governance v2 (deny on first misfit).
  A call reserves first; a reservation that does not fit beside the outstanding
  ones is refused at once and closes admissions for the whole run. Calls already
  admitted finish.
- ``wait``: the policy flujo-trio has now, written by hand. A reservation that does
  not fit yet waits in arrival order (FIFO) until settlements free room; it is
  refused only when it can never fit (``spent + reservation > limit``), which closes
  admissions; calls already admitted finish. This is the time floor for flujo-trio.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import trio

from .budget_plans import RESERVE_TOKENS, Call, Plan


class Ledger:
    """One run's ledger for the floors, and what the run did (for the tables)."""

    def __init__(self, limit: int, reserve: int, trace: bool = False) -> None:
        self.limit, self.reserve = limit, reserve
        self.spent = 0
        self.reserved = 0
        self.calls = 0
        self.denied = 0
        self.closed = False
        self.spent_at_first_denial: int | None = None
        self.trace: list[tuple[float, int]] | None = [] if trace else None
        self._queue: deque[trio.Event] = deque()
        self._granted: dict[trio.Event, bool] = {}

    # -- what every policy shares --------------------------------------------------------

    def settle(self, tokens: int, reserved: int) -> None:
        self.reserved -= reserved
        self.spent += tokens
        if self.trace is not None:
            self.trace.append((trio.current_time(), self.spent))

    def close(self) -> None:
        """A reservation was refused: count it; the first one closes admissions."""
        if not self.closed:
            self.closed = True
            self.spent_at_first_denial = self.spent
        self.denied += 1

    # -- wait: FIFO admission, refused only when it can never fit ----------------------------

    async def admit_waiting(self) -> bool:
        if self.closed:
            self.denied += 1
            return False
        if not self._queue:
            if self.spent + self.reserve > self.limit:
                self.close()
                return False
            if self.spent + self.reserved + self.reserve <= self.limit:
                self.reserved += self.reserve
                return True
        event = trio.Event()
        self._queue.append(event)
        await event.wait()
        return self._granted.pop(event)

    def pump(self) -> None:
        while self._queue:
            if self.spent + self.reserve > self.limit:
                while self._queue:  # every waiter needs the same room: all refused
                    self.close()
                    self._answer(False)
                return
            if self.spent + self.reserved + self.reserve > self.limit:
                return
            self.reserved += self.reserve
            self._answer(True)

    def _answer(self, granted: bool) -> None:
        event = self._queue.popleft()
        self._granted[event] = granted
        event.set()


async def _branch(ledger: Ledger, calls: Sequence[Call], policy: str) -> None:
    for latency, tokens in calls:
        reserved = 0
        if policy == "naive":
            if ledger.closed:
                return
        elif policy == "refuse":
            if ledger.closed:
                ledger.denied += 1
                return
            if ledger.spent + ledger.reserved + ledger.reserve > ledger.limit:
                ledger.close()
                return
            ledger.reserved += ledger.reserve
            reserved = ledger.reserve
        else:
            if not await ledger.admit_waiting():
                return
            reserved = ledger.reserve
        ledger.calls += 1
        await trio.sleep(latency)
        ledger.settle(tokens, reserved)
        if policy == "naive" and ledger.spent > ledger.limit and not ledger.closed:
            ledger.closed = True  # no new call starts; the ones running are not stopped
        elif policy == "wait":
            ledger.pump()


async def run_floor(
    plan: Plan,
    policy: str,
    limit: int,
    *,
    reserve: int = RESERVE_TOKENS,
    concurrency: int | None = None,
    trace: bool = False,
) -> tuple[Ledger, float]:
    """Run ``plan`` under ``policy`` (naive, refuse or wait); the ledger and wall seconds."""
    assert policy in ("naive", "refuse", "wait"), policy
    ledger = Ledger(limit, reserve, trace)
    limiter = trio.CapacityLimiter(concurrency) if concurrency else None
    start = time.perf_counter()

    async def branch(calls: Sequence[Call], slot: object) -> None:
        try:
            await _branch(ledger, calls, policy)
        finally:
            if limiter is not None:
                limiter.release_on_behalf_of(slot)

    async with trio.open_nursery() as nursery:
        for calls in plan:
            slot = object()
            if limiter is not None:
                # Slots are taken in declared order, as flujo-trio's fan-out takes them.
                await limiter.acquire_on_behalf_of(slot)
            nursery.start_soon(branch, calls, slot)
    return ledger, time.perf_counter() - start


def floor_figures(ledger: Ledger, seconds: float) -> dict[str, Any]:
    limit = ledger.limit
    at_denial = ledger.spent_at_first_denial
    return {
        "calls": ledger.calls,
        "spent": ledger.spent,
        "reported": ledger.spent,
        "denied": ledger.denied,
        "util_first_denial_pct": None if at_denial is None else at_denial / limit * 100,
        "util_end_pct": ledger.spent / limit * 100,
        "over_pct": max(0.0, (ledger.spent - limit) / limit * 100),
        "seconds": seconds,
    }
