"""What the governance benchmark claims about flujo-trio, as tests (virtual time).

The benchmark (benchmarks/governance.py) puts these numbers beside pydantic-ai and
Flujo: the pydantic-ai-harness#696 case (8 concurrent delegations against a request
limit of 9), how much of a token limit a run uses before it is refused when real
usage varies per call, and per-item budgets that stop runaway items only.
"""

from __future__ import annotations

import random

import pytest
import trio

from flujo_trio import (
    AgentResult,
    BranchFailure,
    LoopStep,
    MapStep,
    ParallelStep,
    Pipeline,
    Runner,
    RunStatus,
    Step,
    Usage,
    UsageLimitExceededError,
    UsageLimits,
    UsageUpdated,
)


class Calls:
    """Model requests as a provider sees them: made, finished, cancelled in flight."""

    def __init__(self) -> None:
        self.made = 0
        self.finished = 0
        self.cancelled = 0

    async def request(self, latency: float, tokens: int = 10) -> Usage:
        self.made += 1
        try:
            await trio.sleep(latency)
        except trio.Cancelled:
            self.cancelled += 1
            raise
        self.finished += 1
        return Usage(tokens=tokens)


# Latencies of each delegation's 3 requests. "staggered": delegation 1 is fast, so it
# asks for its second request while the other 7 are still in their first; that is
# where pydantic-ai's check-then-increment lets more requests through than its limit.
LATENCIES = {
    "lockstep": [[1.0, 1.0, 1.0]] * 8,
    "staggered": [[0.1, 0.1, 0.1], *[[2.0 + i / 10, 1.0, 1.0] for i in range(7)]],
}


def delegations(calls: Calls, latencies: list[list[float]]) -> Pipeline:
    """A planner request, then 8 concurrent delegations; a delegation's later requests
    go through ``meter.request``, as ``ChatAgent``'s tool rounds do."""

    async def planner(task: str) -> AgentResult[list[int]]:
        return AgentResult(list(range(8)), await calls.request(0.5))

    async def delegate(index: int, meter) -> AgentResult[int]:
        first, *later = latencies[index]
        total = await calls.request(first)
        meter.add(total)
        for latency in later:
            async with meter.request(Usage(tokens=20)) as pending:
                used = await calls.request(latency)
                pending.settle(used)
            total = total + used
        return AgentResult(index, total)

    return Step("plan", planner) >> MapStep("delegate", Step("delegation", delegate))


@pytest.mark.parametrize("timing", sorted(LATENCIES))
async def test_eight_concurrent_delegations_against_a_request_limit_of_nine(autojump_clock, timing):
    calls = Calls()
    runner = Runner(
        delegations(calls, LATENCIES[timing]), limits=UsageLimits(total_requests_limit=9)
    )
    with pytest.raises(UsageLimitExceededError) as info:
        await runner.run("task")
    assert str(info.value) == "Request limit of 9 exceeded"
    assert calls.made == 9  # the planner and each delegation's first request, no more
    result = info.value.result
    assert result.status is RunStatus.BUDGET_EXCEEDED
    assert result.governor.requests == 9 and result.governor.admitted == 9


async def test_delegations_as_steps_let_admitted_requests_finish(autojump_clock):
    """The same tree with every request a step: the denied step is refused before it
    starts, and the requests already admitted finish (they are paid for)."""
    calls = Calls()

    async def planner(task: str) -> AgentResult[list[int]]:
        return AgentResult(list(range(8)), await calls.request(0.5))

    async def call(index: int) -> AgentResult[int]:
        return AgentResult(index, await calls.request(0.1 if index == 0 else 2.0))

    body = Pipeline([Step(f"request{i}", call) for i in range(3)])
    pipeline = Step("plan", planner) >> MapStep("delegate", body)
    with pytest.raises(UsageLimitExceededError, match=r"^Request limit of 9 exceeded$"):
        await Runner(pipeline, limits=UsageLimits(total_requests_limit=9)).run("task")
    assert calls.made == 9 and calls.finished == 9 and calls.cancelled == 0


async def test_a_denied_further_request_lets_admitted_sibling_calls_finish(autojump_clock):
    calls = Calls()
    with pytest.raises(UsageLimitExceededError, match="Request limit of 9 exceeded"):
        await Runner(
            delegations(calls, LATENCIES["staggered"]), limits=UsageLimits(total_requests_limit=9)
        ).run("task")
    assert calls.cancelled == 0 and calls.finished == 9


async def test_varying_usage_spends_ninety_percent_before_the_first_denial(autojump_clock):
    """Real usage varies per call (5 to 15 tokens, mean 10), latency varies, every call
    reserves twice the mean: the run never overshoots and is refused only once less
    than a reservation is left."""
    rng = random.Random(7)
    plan = [[(rng.uniform(0.5, 1.5), rng.randint(5, 15)) for _ in range(8)] for _ in range(20)]
    limit = sum(tokens for calls in plan for _, tokens in calls) // 2  # 2.5% per reservation
    real = 0

    async def call(data):
        nonlocal real
        branch, position = data
        latency, tokens = plan[branch][position]
        await trio.sleep(latency)
        real += tokens
        return AgentResult((branch, position + 1), Usage(tokens=tokens))

    updates: list[UsageUpdated] = []
    body = Pipeline([Step(f"call{i}", call, reserve=Usage(tokens=20)) for i in range(8)])
    runner = Runner(
        MapStep("branches", body),
        limits=UsageLimits(total_tokens_limit=limit),
        hooks=[lambda e: updates.append(e) if isinstance(e, UsageUpdated) else None],
    )
    with pytest.raises(UsageLimitExceededError, match="reservation of 20 tokens does not fit"):
        await runner.run([(b, 0) for b in range(20)])
    first_denied = next(i for i, e in enumerate(updates) if e.governor.denied)
    # The spend reported just before the first denial is known (a lower bound of the
    # spend the denial was decided on).
    assert updates[first_denied - 1].total.tokens >= 0.9 * limit
    assert updates[first_denied - 1].total.tokens > limit - 20 - 15
    assert real == updates[-1].total.tokens <= limit


def item_plan() -> list[int]:
    """Calls each item's task needs: 3, except the runaways (items 0 and 5) at 40."""
    return [40 if i % 5 == 0 else 3 for i in range(10)]


async def test_per_item_budgets_stop_only_the_runaway_items(autojump_clock):
    made = [0] * 10

    async def work(data):
        item, left = data
        made[item] += 1
        await trio.sleep(1)
        return AgentResult((item, left - 1), Usage(tokens=15))

    branches = {
        f"i{item}": LoopStep(
            f"work{item}",
            Step("call", work, reserve=Usage(tokens=20)),
            exit_condition=lambda output, context: output[1] == 0,
            max_loops=50,
            limits=UsageLimits(total_tokens_limit=100),
            initial_input_mapper=lambda _data, _context, item=item, n=n: (item, n),
        )
        for item, n in enumerate(item_plan())
    }
    step = ParallelStep("items", branches, on_branch_failure=BranchFailure.IGNORE)
    result = await Runner(step).run(None)
    assert result.success
    runs = {b.name: b for b in result.step_history[0].step_history}
    for item, n in enumerate(item_plan()):
        (loop,) = runs[f"i{item}"].step_history
        if n == 40:  # stopped by its own budget, at no more than it
            assert made[item] == 6 and loop.token_counts == 90 <= 100
            assert not loop.success and loop.metadata["limit_scope"] == f"work{item}"
        else:
            assert made[item] == 3 and loop.success and "limit_scope" not in loop.metadata


async def test_an_item_stopped_by_item_limits_fails_the_map_and_cancels_the_rest(
    autojump_clock,
):
    """``MapStep(item_limits=)`` keeps the map's rule: a failed item fails the step and
    cancels the items still running (what the benchmark reports as items lost)."""
    calls = Calls()

    async def work(data):
        item, left = data
        return AgentResult((item, left - 1), await calls.request(1.0 + item / 10, 15))

    body = LoopStep(
        "work",
        Step("call", work, reserve=Usage(tokens=20)),
        exit_condition=lambda output, context: output[1] == 0,
        max_loops=50,
    )
    step = MapStep(
        "items", body, item_limits=UsageLimits(total_tokens_limit=100), max_concurrency=4
    )
    result = await Runner(step).run([(i, n) for i, n in enumerate(item_plan())])
    assert not result.success
    items = result.step_history[0].step_history
    assert items[0].metadata["limit_scope"] == "items[0]" and items[0].token_counts == 90
    # Items 1-3 (3.3 to 3.9 s) finished; 4-6 were running when item 0 was refused its
    # 7th call at 6 s, and were cancelled; 7-9 never started.
    assert [item.success for item in items[1:4]] == [True] * 3
    assert all(item.metadata.get("cancelled") for item in items[4:])
    assert calls.cancelled == 3 and len(items) == 7
