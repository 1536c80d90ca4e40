"""The governor actor: budgets that hold under fan-out."""

from __future__ import annotations

from decimal import Decimal

import pytest
import trio

from flujo_trio import (
    AgentResult,
    LoopStep,
    ParallelStep,
    Runner,
    RunStatus,
    Step,
    Usage,
    UsageLimitExceededError,
    UsageLimits,
)
from flujo_trio.runtime.governor import Governor, GovernorClient, Ledger
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
    limits = UsageLimits(total_tokens_limit=demand // 2)
    step = fan(meter, branches, steps, reserve=Usage(tokens=10))
    with pytest.raises(
        UsageLimitExceededError, match=f"Token limit of {demand // 2} exceeded"
    ) as info:
        await Runner(step, limits=limits).run("x")
    result = info.value.result
    assert result.total_tokens <= demand // 2
    assert result.total_tokens == meter.finished * 10
    # Admitted calls were allowed to finish: nothing paid for was thrown away.
    assert meter.started == meter.finished
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
    assert result.total_tokens == 100
    branches = result.step_history[0].step_history
    assert all(b.step_history[0].metadata.get("cancelled") for b in branches[1:])


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
    assert result.total_cost_usd == pytest.approx(1.3)


async def test_no_new_call_starts_after_a_breach(autojump_clock):
    meter = Meter(cost=1.0, delay=1)
    loop = LoopStep("loop", Step("spend", meter), exit_condition=lambda o, c: False, max_loops=50)
    step = ParallelStep("fan", {"a": loop, "b": Step("b", Meter(delay=0.5))})
    with pytest.raises(UsageLimitExceededError):
        await Runner(step, limits=UsageLimits(total_cost_usd_limit=2.5)).run("x")
    assert meter.started == 3 and meter.finished == 3


async def test_governor_settles_queued_spend_before_admitting():
    ledger = Ledger(UsageLimits(total_cost_usd_limit=1.0))
    governed = trio.CancelScope()
    governor = Governor.open(ledger, governed)
    client = GovernorClient(governor.send_channel)
    answers = {}
    async with trio.open_nursery() as nursery:
        first = ledger.admit(Usage(0.6))
        assert first is not None

        async def settle():
            await client.settle(first, Usage(0.2))

        async def reserve():
            answers["reserve"] = await client.reserve(Usage(0.7))

        # Both requests are queued before the governor runs: it must apply the
        # settlement (0.2 spent, 0.6 released) before deciding the reservation.
        nursery.start_soon(settle)
        nursery.start_soon(reserve)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(governor.serve)
        await trio.testing.wait_all_tasks_blocked()
        governor.close()
    assert not isinstance(answers["reserve"], str)
    assert ledger.spent == Usage(0.2) and ledger.reserved_cost == Decimal("0.7")
    assert not governed.cancel_called


async def test_exact_limit_under_fan_out_is_allowed():
    step = ParallelStep(
        "fan",
        {"a": Step("a", Meter(cost=0.1, delay=0)), "b": Step("b", Meter(cost=0.2, delay=0))},
    )
    result = await Runner(step, limits=UsageLimits(total_cost_usd_limit=0.3)).run("x")
    assert result.success and result.total_cost_usd == 0.3


async def test_reported_usage_counts_and_can_breach():
    ledger = Ledger(UsageLimits(total_tokens_limit=100))
    governed = trio.CancelScope()
    governor = Governor.open(ledger, governed)
    client = GovernorClient(governor.send_channel)
    async with trio.open_nursery() as nursery:
        await nursery.start(governor.serve)
        await client.report(Usage(tokens=60))
        assert ledger.spent == Usage(tokens=60) and not governed.cancel_called
        await client.report(Usage(tokens=60))
        assert governed.cancel_called and ledger.stop_message == "Token limit of 100 exceeded"
        governor.close()
