"""The governor: budgets that hold under fan-out, admission that waits, and its race paths."""

from __future__ import annotations

from decimal import Decimal

import pytest
import trio
import trio.testing

from flujo_trio import (
    AgentResult,
    LoopStep,
    MapStep,
    ParallelStep,
    Runner,
    RunStatus,
    Step,
    Usage,
    UsageLimitExceededError,
    UsageLimits,
    UsageUpdated,
)
from flujo_trio.runtime.governor import Denial, Governor, Grant
from tests.helpers import stray_tasks


class Meter:
    """Agents that record every call they start and finish, with a fixed usage."""

    def __init__(self, cost: float = 0.0, tokens: int = 0, delay: float = 1.0) -> None:
        self.usage = Usage(cost, tokens)
        self.delay = delay
        self.started = 0
        self.finished = 0

    async def run(self, data):
        self.started += 1
        await trio.sleep(self.delay)
        self.finished += 1
        return AgentResult(data, self.usage)


def fan(meter: Meter, branches: int, steps: int, reserve: Usage | None = None) -> ParallelStep:
    def chain(b: int):
        pipeline = Step(f"b{b}s0", meter, reserve=reserve)
        for s in range(1, steps):
            pipeline = pipeline >> Step(f"b{b}s{s}", meter, reserve=reserve)
        return pipeline

    return ParallelStep("fan", {f"b{b}": chain(b) for b in range(branches)})


@pytest.mark.parametrize(("branches", "steps"), [(10, 1), (10, 10), (50, 3)])
async def test_with_reservations_spend_never_exceeds_the_limit(autojump_clock, branches, steps):
    meter = Meter(tokens=10)
    demand = branches * steps * 10
    limit = demand // 2
    step = fan(meter, branches, steps, reserve=Usage(tokens=10))
    with pytest.raises(UsageLimitExceededError) as info:
        await Runner(step, limits=UsageLimits(total_tokens_limit=limit)).run("x")
    assert str(info.value) == (
        f"Token limit of {limit} reached: a reservation of 10 tokens does not fit "
        f"(spent {limit}, limit {limit})"
    )
    result = info.value.result
    # Waiting admission uses the whole budget: it spends exactly the limit, no more.
    assert result.total_tokens == limit == meter.finished * 10
    assert meter.started == meter.finished  # admitted calls were allowed to finish
    assert result.status is RunStatus.BUDGET_EXCEEDED
    fan_result = result.step_history[0]
    assert fan_result.token_counts == result.total_tokens
    denied = [
        s
        for b in fan_result.step_history
        for s in b.step_history
        if s.metadata.get("reservation_denied")
    ]
    assert denied and all(s.attempts == 0 and s.token_counts == 0 for s in denied)
    assert stray_tasks() == []


async def test_without_reservations_breach_cancels_in_flight_calls_at_once(autojump_clock):
    meters = [Meter(tokens=100, delay=d) for d in (1, 5, 5, 5)]
    step = ParallelStep("fan", {f"b{i}": Step(f"s{i}", m) for i, m in enumerate(meters)})
    with pytest.raises(UsageLimitExceededError, match="Token limit of 50 exceeded") as info:
        await Runner(step, limits=UsageLimits(total_tokens_limit=50)).run("x")
    assert trio.current_time() == pytest.approx(1)
    assert [m.finished for m in meters] == [1, 0, 0, 0]
    result = info.value.result
    branches = result.step_history[0].step_history
    assert all(b.step_history[0].metadata.get("cancelled") for b in branches[1:])
    # The cancelled calls reported nothing and had no reservation: charged nothing.
    assert result.total_tokens == 100
    assert all(b.step_history[0].metadata.get("usage_estimated") for b in branches[1:])


async def test_cancelled_call_is_charged_its_reservation(autojump_clock):
    fast = Meter(cost=1.0, delay=1)
    slow = Meter(cost=0.2, delay=10)
    step = ParallelStep(
        "fan",
        {
            "fast": Step("fast", fast, reserve=Usage(0.1)),
            "slow": Step("slow", slow, reserve=Usage(0.3)),
        },
    )
    with pytest.raises(UsageLimitExceededError) as info:
        await Runner(step, limits=UsageLimits(total_cost_usd_limit=0.5)).run("x")
    result = info.value.result
    fast_result, slow_result = (b.step_history[0] for b in result.step_history[0].step_history)
    assert fast_result.metadata["reservation_exceeded"] is True
    assert slow_result.metadata["cancelled"] is True and slow_result.cost_usd == pytest.approx(0.3)
    assert slow_result.metadata["usage_estimated"] is True
    assert result.total_cost_usd == pytest.approx(1.3)


async def test_a_cancelled_call_that_reports_its_usage_is_charged_that(autojump_clock):
    async def streaming(data, meter):
        meter.add(Usage(0.01, 40))  # the prompt, known at once
        await trio.sleep(10)
        return AgentResult(data, Usage(0.5, 400))

    step = Step("chat", streaming, reserve=Usage(0.5, 400))
    runner = Runner(step)
    with trio.move_on_after(1):
        await runner.run("x", run_id="r")
    state = await runner.store.load_run("r")
    assert state.status is RunStatus.CANCELLED
    assert state.spent.tokens == 40 and state.total_cost_usd == pytest.approx(0.01)
    (chat,) = state.steps
    assert "usage_estimated" not in chat.metadata and chat.token_counts == 40


async def test_a_failed_call_that_reported_its_usage_is_charged_that():
    """An agent that raises a plain exception after ``meter.add`` spent that all the same:
    each attempt is charged it, none is estimated (it was charged nothing)."""

    async def failing(data, meter):
        meter.add(Usage(0.01, 40))
        raise RuntimeError("the provider hung up")

    result = await Runner(Step("chat", failing, max_retries=1, reserve=Usage(0.5, 400))).run("x")
    (chat,) = result.step_history
    assert not chat.success and chat.attempts == 2
    assert chat.token_counts == 80 and result.total_cost_usd == pytest.approx(0.02)
    assert result.governor.spent.tokens == 80 and "usage_estimated" not in chat.metadata


async def test_no_new_call_starts_after_a_breach(autojump_clock):
    meter = Meter(cost=1.0, delay=1)
    loop = LoopStep("loop", Step("spend", meter), exit_condition=lambda o, c: False, max_loops=50)
    step = ParallelStep("fan", {"a": loop, "b": Step("b", Meter(delay=0.5))})
    with pytest.raises(UsageLimitExceededError):
        await Runner(step, limits=UsageLimits(total_cost_usd_limit=2.5)).run("x")
    assert meter.started == 3 and meter.finished == 3


async def test_exact_limit_under_fan_out_is_allowed():
    step = ParallelStep(
        "fan",
        {"a": Step("a", Meter(cost=0.1, delay=0)), "b": Step("b", Meter(cost=0.2, delay=0))},
    )
    result = await Runner(step, limits=UsageLimits(total_cost_usd_limit=0.3)).run("x")
    assert result.success and result.total_cost_usd == 0.3


async def test_usage_events_carry_governor_statistics(autojump_clock):
    events = []
    step = fan(Meter(tokens=10), 4, 1, reserve=Usage(tokens=20))
    runner = Runner(step, limits=UsageLimits(total_tokens_limit=50), hooks=[events.append])
    result = await runner.run("x")
    statistics = [e.governor for e in events if isinstance(e, UsageUpdated)]
    assert len(statistics) == 4 and statistics[-1].spent == Usage(tokens=40)
    assert result.governor.admitted == 4 and result.governor.peak_in_flight == 2
    assert result.governor.peak_waiting == 2 and result.governor.waiting == 0
    assert result.governor.denied == 0 and result.governor.reserved == Usage()


# -- the governor's own paths, one at a time ---------------------------------------------


def governor(limit: int) -> Governor:
    return Governor(UsageLimits(total_tokens_limit=limit), trio.CancelScope())


async def test_waiting_reservations_are_served_in_arrival_order():
    gov = governor(100)
    first = await gov.reserve(gov.root, Usage(tokens=80))
    assert isinstance(first, Grant)
    order = []

    grants: dict[str, Grant] = {}

    async def ask(name: str, tokens: int) -> None:
        outcome = await gov.reserve(gov.root, Usage(tokens=tokens))
        assert isinstance(outcome, Grant)
        grants[name] = outcome
        order.append(name)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ask, "big", 60)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(ask, "small", 20)  # 80 + 20 fits now, but it waits behind "big"
        await trio.testing.wait_all_tasks_blocked()
        assert order == [] and gov.statistics().waiting == 2
        gov.settle(first, Usage(tokens=30))  # room for "big" (90); "small" alone would fit too
        await trio.testing.wait_all_tasks_blocked()
        assert order == ["big"] and gov.statistics().waiting == 1
        gov.settle(grants["big"], Usage(tokens=10))
    assert order == ["big", "small"]


async def test_a_cancelled_waiter_leaves_the_queue_and_the_next_is_served():
    gov = governor(100)
    first = await gov.reserve(gov.root, Usage(tokens=90))
    assert isinstance(first, Grant)
    served = []
    waiting = trio.CancelScope()
    async with trio.open_nursery() as nursery:

        async def abandoned() -> None:
            with waiting:
                await gov.reserve(gov.root, Usage(tokens=50))
                served.append("abandoned")

        nursery.start_soon(abandoned)
        await trio.testing.wait_all_tasks_blocked()

        async def next_in_line() -> None:
            outcome = await gov.reserve(gov.root, Usage(tokens=50))
            served.append(outcome)

        nursery.start_soon(next_in_line)
        await trio.testing.wait_all_tasks_blocked()
        waiting.cancel(reason="the requester gave up")
        await trio.testing.wait_all_tasks_blocked()
        assert gov.statistics().waiting == 1  # the abandoned one left, never granted
        gov.settle(first, Usage(tokens=10))
    assert len(served) == 1 and isinstance(served[0], Grant)
    assert gov.root.reserved_tokens == 50 and gov.statistics().admitted == 2


async def test_a_grant_that_lands_with_a_cancel_is_handed_back():
    gov = governor(100)
    first = await gov.reserve(gov.root, Usage(tokens=100))
    assert isinstance(first, Grant)
    outcomes = []
    async with trio.open_nursery() as nursery:
        scope = trio.CancelScope()

        async def waiter() -> None:
            with scope:
                outcomes.append(await gov.reserve(gov.root, Usage(tokens=60)))

        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        # The cancel reaches the waiter first, then (same scheduling batch) room frees up
        # and the still-queued waiter is granted: it never sees the grant, so it hands
        # the reservation back.
        scope.cancel(reason="the requester was cancelled")
        gov.settle(first, Usage(tokens=10))
    assert outcomes == []
    assert gov.root.reserved_tokens == 0 and gov.root.spent_tokens == 10
    assert gov.statistics().in_flight == 0 and gov.statistics().admitted == 2


async def test_a_settlement_after_the_breach_still_counts():
    gov = governor(100)
    grants = [await gov.reserve(gov.root, Usage(tokens=0)) for _ in range(2)]
    assert all(isinstance(g, Grant) for g in grants)
    gov.settle(grants[0], Usage(tokens=150))
    assert gov.run_stop is not None and gov.root.cancel_scope.cancel_called
    gov.settle(grants[1], Usage(tokens=30))  # the other call's spend is still real
    assert gov.root.spent_tokens == 180
    denied = await gov.reserve(gov.root, Usage())
    assert isinstance(denied, Denial) and denied.message == "Token limit of 100 exceeded"


async def test_denial_only_when_the_reservation_can_never_fit():
    gov = governor(600)
    in_flight = [await gov.reserve(gov.root, Usage(tokens=181)) for _ in range(3)]
    assert all(isinstance(g, Grant) for g in in_flight)
    async with trio.open_nursery() as nursery:
        outcomes = []

        async def fourth() -> None:
            outcomes.append(await gov.reserve(gov.root, Usage(tokens=181)))

        nursery.start_soon(fourth)
        await trio.testing.wait_all_tasks_blocked()
        assert outcomes == []  # 543 + 181 > 600, but room will come: it waits
        gov.settle(in_flight[0], Usage(tokens=39))
    assert isinstance(outcomes[0], Grant)
    for grant in in_flight[1:]:
        gov.settle(grant, Usage(tokens=200))  # over their reservations: 439 spent
    gov.settle(outcomes[0], Usage(tokens=0))
    denied = await gov.reserve(gov.root, Usage(tokens=181))
    assert isinstance(denied, Denial)
    assert denied.message == (
        "Token limit of 600 reached: a reservation of 181 tokens does not fit "
        "(spent 439, limit 600)"
    )


async def test_the_map_scenario_uses_the_budget_it_protects(autojump_clock):
    spent_at_denial = []

    async def classify(item, meter):
        await trio.sleep(1)
        return AgentResult(item, Usage(tokens=39))

    def hook(event):
        if isinstance(event, UsageUpdated) and event.governor.denied and not spent_at_denial:
            spent_at_denial.append(event.total.tokens)

    step = MapStep("m", Step("classify", classify, reserve=Usage(tokens=181)), max_concurrency=5)
    runner = Runner(step, limits=UsageLimits(total_tokens_limit=600), hooks=[hook])
    with pytest.raises(UsageLimitExceededError, match="reservation of 181 tokens") as info:
        await runner.run(list(range(20)))
    result = info.value.result
    assert result.total_tokens <= 600
    assert result.total_tokens > 600 - 181  # no denial before spend passed limit - reservation
    assert result.governor.denied >= 1


async def test_small_reservations_use_at_least_ninety_percent_of_the_budget(autojump_clock):
    meter = Meter(tokens=10, delay=1)
    step = fan(meter, 200, 1, reserve=Usage(tokens=20))  # 2x real usage, 2% of the limit
    with pytest.raises(UsageLimitExceededError) as info:
        await Runner(step, limits=UsageLimits(total_tokens_limit=1000)).run("x")
    assert info.value.result.total_tokens >= 900


def test_ledger_decimal_arithmetic_allows_exactly_the_limit():
    gov = Governor(UsageLimits(total_cost_usd_limit=0.3), trio.CancelScope())
    assert gov.root.spent_cost == Decimal(0)
    gov.charge(gov.root, Usage(0.1))
    gov.charge(gov.root, Usage(0.2))
    assert gov.run_stop is None and gov.root.spent_cost == Decimal("0.3")
