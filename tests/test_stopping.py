"""How runs stop: a breach keeps the breaching step's result, an abort or denial starts nothing
new, leaving a stream cancels the run, and a raised limit resumes a denied run."""

from __future__ import annotations

import pytest
import trio

from flujo_trio import (
    AbortRun,
    AgentResult,
    MapStep,
    ParallelStep,
    Runner,
    RunStatus,
    Step,
    StepFinished,
    Usage,
    UsageLimitExceededError,
    UsageLimits,
    UsageUpdated,
)
from flujo_trio.testing import StubAgent
from tests.helpers import CostAgent


async def test_the_breaching_step_keeps_its_result_and_its_usage_event():
    seen = []
    pipeline = Step("a", CostAgent(0.5)) >> Step("b", CostAgent(0.5)) >> Step("c", CostAgent(0.1))
    runner = Runner(pipeline, limits=UsageLimits(total_cost_usd_limit=0.7), hooks=[seen.append])
    with pytest.raises(UsageLimitExceededError) as info:
        await runner.run("x")
    result = info.value.result
    assert [s.name for s in result.step_history] == ["a", "b"]  # c never started
    breaching = result.step_history[1]
    assert breaching.success and breaching.output == "x" and "cancelled" not in breaching.metadata
    usage_events = [e for e in seen if isinstance(e, UsageUpdated)]
    assert usage_events[-1].total.cost_usd == result.total_cost_usd == 1.0


async def test_max_concurrency_one_runs_items_in_declared_order():
    for _ in range(10):
        agent = StubAgent(["a", "b", "c", "d"])
        result = await Runner(MapStep("m", Step("s", agent), max_concurrency=1)).run([1, 2, 3, 4])
        assert result.output == ["a", "b", "c", "d"] and agent.inputs == [1, 2, 3, 4]
        agent = StubAgent(["a", "b", "c"])
        fan = ParallelStep("p", {k: Step(k, agent) for k in ("x", "y", "z")}, max_concurrency=1)
        assert (await Runner(fan).run("q")).output == {"x": "a", "y": "b", "z": "c"}


async def test_after_a_hook_abort_no_further_step_starts_or_is_listed():
    later = StubAgent(["never"])
    started = []

    def hook(event):
        if isinstance(event, StepFinished) and event.path == ("a",):
            raise AbortRun("stop here")
        started.append(event)

    result = await Runner(Step("a", CostAgent()) >> Step("b", later), hooks=[hook]).run("x")
    assert [s.name for s in result.step_history] == ["a"] and later.call_count == 0
    assert result.status is RunStatus.FAILED
    assert "stop here" in result.step_history[0].feedback
    assert not any(getattr(e, "path", None) == ("b",) for e in started)


async def test_an_abort_during_the_last_step_still_says_why():
    def hook(event):
        if isinstance(event, UsageUpdated):
            raise AbortRun("enough")

    result = await Runner(Step("a", CostAgent(0.1)), hooks=[hook]).run("x")
    assert result.status is RunStatus.FAILED
    assert "Aborted by hook" in result.step_history[0].feedback
    assert "enough" in result.step_history[0].feedback


async def test_a_denied_run_resumes_when_the_limit_is_raised():
    later = CostAgent(0.6)
    pipeline = Step("a", CostAgent(0.5), reserve=Usage(0.5)) >> Step("b", later, reserve=Usage(0.6))
    runner = Runner(pipeline, limits=UsageLimits(total_cost_usd_limit=1.0))
    with pytest.raises(UsageLimitExceededError):
        await runner.run("x", run_id="r")
    raised = Runner(pipeline, limits=UsageLimits(total_cost_usd_limit=5.0), store=runner.store)
    result = await raised.resume("r")
    assert result.success and len(later.calls) == 1
    assert result.total_cost_usd == pytest.approx(1.1)


async def test_leaving_the_stream_while_a_branch_fails_ends_the_run_cancelled(autojump_clock):
    async def broken(data):
        raise RuntimeError("down")

    async def slow(data):
        await trio.sleep(100)
        return AgentResult(data, Usage(0.1))

    step = ParallelStep("p", {"a": Step("a1", broken, max_retries=0), "b": Step("b1", slow)})
    runner = Runner(step)
    async with runner.stream("x", run_id="s1") as events:
        async for event in events:
            if isinstance(event, StepFinished) and event.path == ("p", "a", "a1"):
                break
    assert (await runner.store.load_run("s1")).status is RunStatus.CANCELLED
