"""Usage limits: honest totals, exact money, reservations checked before the call."""

from __future__ import annotations

import pytest

from flujo_trio import (
    AgentResult,
    Runner,
    RunStatus,
    Step,
    Usage,
    UsageLimitExceededError,
    UsageLimits,
)
from flujo_trio.testing import StubAgent
from flujo_trio.usage import format_money
from tests.helpers import CostAgent


def chain(*agents, **options):
    pipeline = Step("s0", agents[0], **options)
    for index, agent in enumerate(agents[1:], start=1):
        pipeline = pipeline >> Step(f"s{index}", agent, **options)
    return pipeline


async def test_breach_raises_after_the_breaching_step_with_honest_totals():
    agents = [CostAgent(0.5) for _ in range(4)]
    runner = Runner(chain(*agents), limits=UsageLimits(total_cost_usd_limit=1.2))
    with pytest.raises(UsageLimitExceededError, match=r"^Cost limit of \$1\.2 exceeded$") as info:
        await runner.run("x")
    result = info.value.result
    assert [s.name for s in result.step_history] == ["s0", "s1", "s2"]
    assert [s.cost_usd for s in result.step_history] == [0.5, 0.5, 0.5]
    assert result.total_cost_usd == 1.5
    assert result.status is RunStatus.BUDGET_EXCEEDED and not result.success
    assert result.final_context.status is RunStatus.BUDGET_EXCEEDED
    assert agents[3].calls == []


async def test_token_limit_message_and_exact_limit_is_allowed():
    agents = [CostAgent(tokens=100) for _ in range(3)]
    result = await Runner(chain(*agents), limits=UsageLimits(total_tokens_limit=300)).run("x")
    assert result.success and result.total_tokens == 300
    runner = Runner(chain(*agents), limits=UsageLimits(total_tokens_limit=250))
    with pytest.raises(UsageLimitExceededError, match=r"^Token limit of 250 exceeded$") as info:
        await runner.run("x")
    assert info.value.result.total_tokens == 300


async def test_money_is_summed_exactly():
    agents = [CostAgent(0.1), CostAgent(0.2)]
    result = await Runner(chain(*agents), limits=UsageLimits(total_cost_usd_limit=0.3)).run("x")
    assert result.success and result.total_cost_usd == 0.3


@pytest.mark.parametrize(
    ("limit", "text"),
    [(1, "1"), (1.2, "1.2"), (0.005, "0.005"), (2.50, "2.5"), (0.1234567, "0.123457")],
)
def test_limits_are_printed_without_trailing_zeros(limit, text):
    assert (
        UsageLimits(total_cost_usd_limit=limit).cost_message() == f"Cost limit of ${text} exceeded"
    )
    assert format_money(limit) == text


async def test_reservation_that_does_not_fit_stops_before_the_call():
    first, second = CostAgent(0.6), CostAgent(0.1)
    pipeline = Step("a", first, reserve=Usage(0.6)) >> Step("b", second, reserve=Usage(0.5))
    runner = Runner(pipeline, limits=UsageLimits(total_cost_usd_limit=1.0))
    with pytest.raises(UsageLimitExceededError) as info:
        await runner.run("x")
    assert str(info.value) == (
        "Cost limit of $1 reached: a reservation of $0.5 does not fit (spent $0.6, limit $1)"
    )
    assert second.calls == []
    denied = info.value.result.step_history[1]
    assert denied.name == "b" and denied.attempts == 0 and denied.cost_usd == 0
    assert not denied.success
    assert info.value.result.total_cost_usd == 0.6


async def test_reservation_that_fits_exactly_is_admitted():
    agent = CostAgent(0.5)
    pipeline = Step("a", agent, reserve=Usage(0.5)) >> Step("b", agent, reserve=Usage(0.5))
    result = await Runner(pipeline, limits=UsageLimits(total_cost_usd_limit=1.0)).run("x")
    assert result.success and result.total_cost_usd == 1.0


async def test_usage_above_the_reservation_is_recorded():
    agent = StubAgent([AgentResult("x", Usage(0.4))])
    runner = Runner(Step("a", agent, reserve=Usage(0.1)), limits=UsageLimits(10))
    result = await runner.run("x")
    assert result.step_history[0].metadata["reservation_exceeded"] is True
    assert result.success and result.total_cost_usd == 0.4


async def test_limits_must_be_usage_limits():
    from flujo_trio import ConfigurationError

    with pytest.raises(ConfigurationError, match="limits"):
        Runner(Step("a", CostAgent()), limits={"cost": 1})  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="total_cost_usd_limit"):
        UsageLimits(total_cost_usd_limit=-1)
