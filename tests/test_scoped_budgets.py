"""Scoped budgets (``limits=`` on steps, ``item_limits=``), per-run limits, request limits."""

from __future__ import annotations

import pytest
import trio

from flujo_trio import (
    AgentResult,
    BranchFailure,
    LoopStep,
    MapStep,
    ParallelStep,
    Runner,
    RunStatus,
    Step,
    Usage,
    UsageLimitExceededError,
    UsageLimits,
)


class Spender:
    """Costs ``tokens`` per call after ``delay`` seconds; counts started and finished calls."""

    def __init__(self, tokens: int = 10, delay: float = 1.0) -> None:
        self.tokens, self.delay = tokens, delay
        self.started = self.finished = 0

    async def run(self, data):
        self.started += 1
        await trio.sleep(self.delay)
        self.finished += 1
        return AgentResult(data, Usage(tokens=self.tokens))


def item_cost(data):
    return AgentResult(data, Usage(tokens=data))


async def slow_item(data):
    await trio.sleep(1)
    return AgentResult(data, Usage(tokens=data))


def find(results, name):
    for result in results:
        if result.name == name:
            return result
        found = find(result.step_history, name)
        if found is not None:
            return found
    return None


async def test_three_levels_each_breach_fails_only_its_own_scope(autojump_clock):
    """A map item inside a parallel branch inside a loop: an item over its budget fails
    the item, a branch set over its budget fails the parallel step, iterations over the
    loop's budget fail the loop, and nothing outside the breached scope is stopped."""
    outside = Spender(tokens=1, delay=20)

    def nested(item_tokens: list[int], parallel_limit: int, loop_limit: int) -> ParallelStep:
        items = MapStep(
            "m", Step("classify", slow_item), item_limits=UsageLimits(total_tokens_limit=15)
        )
        inner = ParallelStep(
            "p",
            {"x": items, "y": Step("y", Spender(tokens=5, delay=3))},
            on_branch_failure=BranchFailure.IGNORE,
            limits=UsageLimits(total_tokens_limit=parallel_limit),
        )
        loop = LoopStep(
            "loop",
            inner,
            exit_condition=lambda out, ctx: False,
            max_loops=3,
            initial_input_mapper=lambda data, ctx: item_tokens,
            iteration_input_mapper=lambda out, ctx, n: item_tokens,
            limits=UsageLimits(total_tokens_limit=loop_limit),
        )
        return ParallelStep(
            "top",
            {"work": loop, "elsewhere": Step("elsewhere", outside)},
            on_branch_failure=BranchFailure.IGNORE,
        )

    # Level 1: item 1 (20 tokens) breaks its item budget of 15; its siblings are fine.
    result = await Runner(nested([5, 20, 5], 1000, 1000)).run(None)
    item = find(result.step_history, "m[1]")
    assert not item.success and item.metadata["limit_scope"] == "m[1]"
    assert item.feedback == "Token limit of 15 exceeded in step 'm[1]'"
    p = find(result.step_history, "p")
    assert p.success and "limit_scope" not in p.metadata  # the branch failure was ignored
    assert find(result.step_history, "y").success

    # Level 2: the parallel step's own budget (20) breaks while "y" is still running.
    result = await Runner(nested([5, 5, 5, 5, 5], 20, 1000)).run(None)
    p = find(result.step_history, "p")
    assert not p.success and p.metadata["limit_scope"] == "p"
    assert p.feedback == "Token limit of 20 exceeded in step 'p'"
    assert find(result.step_history, "y").metadata.get("cancelled") is True
    loop = find(result.step_history, "loop")
    assert not loop.success and "limit_scope" not in loop.metadata
    assert find(result.step_history, "elsewhere").success  # outside every breached scope

    # Level 3: each iteration costs 15 + 5 = 20; the loop's budget of 50 breaks in the third.
    result = await Runner(nested([5, 10], 1000, 50)).run(None)
    loop = find(result.step_history, "loop")
    assert not loop.success and loop.metadata["limit_scope"] == "loop"
    assert loop.feedback == "Token limit of 50 exceeded in step 'loop'"
    assert result.status is RunStatus.COMPLETED  # "top" ignores its failed branch
    assert find(result.step_history, "elsewhere").success
    assert outside.finished == outside.started == 3


async def test_a_scoped_denial_fails_the_step_and_its_fallback_runs_under_its_own_limits():
    fallback = Step("cheap", lambda data: AgentResult("fallback", Usage(tokens=5)))
    step = Step(
        "expensive",
        Spender(tokens=50, delay=0),
        reserve=Usage(tokens=100),
        limits=UsageLimits(total_tokens_limit=60),
        fallback=fallback,
    )
    result = await Runner(step, limits=UsageLimits(total_tokens_limit=1000)).run("x")
    expensive = result.step_history[0]
    assert expensive.success and expensive.output == "fallback"
    assert expensive.metadata["fallback_triggered"] is True
    assert "reached in step 'expensive'" in expensive.metadata["original_error"]
    assert result.total_tokens == 5


async def test_the_runs_own_limit_still_stops_the_whole_run(autojump_clock):
    scoped = ParallelStep(
        "p",
        {"a": Step("a", Spender(tokens=30)), "b": Step("b", Spender(tokens=30, delay=5))},
        limits=UsageLimits(total_tokens_limit=1000),
    )
    with pytest.raises(UsageLimitExceededError, match=r"^Token limit of 20 exceeded$"):
        await Runner(scoped, limits=UsageLimits(total_tokens_limit=20)).run("x")


async def test_per_run_limits_on_one_shared_runner(autojump_clock):
    runner = Runner(
        Step("a", Spender(tokens=10)) >> Step("b", Spender(tokens=10)),
        limits=UsageLimits(total_tokens_limit=1000),
    )
    outcomes: dict[str, object] = {}

    async def one(run_id: str, limit: int | None) -> None:
        limits = UsageLimits(total_tokens_limit=limit) if limit is not None else None
        try:
            outcomes[run_id] = (await runner.run("x", run_id=run_id, limits=limits)).status
        except UsageLimitExceededError as error:
            outcomes[run_id] = error.result.status

    async with trio.open_nursery() as nursery:
        nursery.start_soon(one, "tight", 15)
        nursery.start_soon(one, "roomy", 100)
        nursery.start_soon(one, "default", None)
    assert outcomes == {
        "tight": RunStatus.BUDGET_EXCEEDED,
        "roomy": RunStatus.COMPLETED,
        "default": RunStatus.COMPLETED,
    }
    stored = await runner.store.load_run("tight")
    assert stored.limits == UsageLimits(total_tokens_limit=15)
    # Resuming the budget stop with a higher limit continues it with its stored spend.
    resumed = await runner.resume("tight", limits=UsageLimits(total_tokens_limit=100))
    assert resumed.success and resumed.total_tokens == 20


async def test_eight_concurrent_delegations_against_a_request_limit_of_nine(autojump_clock):
    delegate = Spender(tokens=1, delay=1)
    branches = {
        f"d{i}": Step(f"plan{i}", delegate) >> Step(f"answer{i}", delegate) for i in range(8)
    }
    with pytest.raises(UsageLimitExceededError) as info:
        await Runner(
            ParallelStep("delegations", branches), limits=UsageLimits(total_requests_limit=9)
        ).run("go")
    assert str(info.value) == "Request limit of 9 exceeded"
    assert delegate.started == 9 == delegate.finished  # admitted calls finished, no more
    assert info.value.result.total_requests == 9
    assert info.value.result.governor.denied >= 1
