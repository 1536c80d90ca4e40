"""Event streams and hooks: order, backpressure, early exit, aborts and failing hooks."""

from __future__ import annotations

import logging

import pytest
import trio

from flujo_trio import (
    AbortRun,
    AgentResult,
    HumanStep,
    ParallelStep,
    RunFinished,
    Runner,
    RunPaused,
    RunStarted,
    RunStatus,
    Step,
    StepFinished,
    StepStarted,
    Usage,
    UsageLimitExceededError,
    UsageLimits,
    UsageUpdated,
)
from flujo_trio.testing import StubAgent
from tests.helpers import stray_tasks


def costly(output, cost=0.1, tokens=5, delay=0.0):
    async def run(data):
        await trio.sleep(delay)
        return AgentResult(output, Usage(cost, tokens))

    return run


def describe(event):
    if isinstance(event, StepStarted | StepFinished):
        return (type(event).__name__, event.path)
    if isinstance(event, UsageUpdated):
        return ("UsageUpdated", event.total.tokens)
    return (type(event).__name__,)


async def test_stream_yields_typed_events_in_order():
    runner = Runner(Step("a", costly("x")) >> Step("b", costly("y")), limits=UsageLimits(10))
    async with runner.stream("in") as events:
        seen = [event async for event in events]
    assert [describe(e) for e in seen] == [
        ("RunStarted",),
        ("StepStarted", ("a",)),
        ("UsageUpdated", 5),
        ("StepFinished", ("a",)),
        ("StepStarted", ("b",)),
        ("UsageUpdated", 10),
        ("StepFinished", ("b",)),
        ("RunFinished",),
    ]
    assert isinstance(seen[0], RunStarted) and seen[0].run_id == seen[-1].result.run_id
    assert seen[2].limits == UsageLimits(10)
    assert seen[3].result.output == "x" and seen[-1].result.output == "y"


async def test_nested_paths_name_branches():
    step = ParallelStep("fanout", {"branch_a": Step("summarize", costly("s"))})
    async with Runner(step).stream("in") as events:
        paths = [e.path for e in [e async for e in events] if isinstance(e, StepStarted)]
    assert paths == [("fanout",), ("fanout", "branch_a"), ("fanout", "branch_a", "summarize")]


async def test_slow_consumer_holds_the_run_back(autojump_clock):
    calls = []

    async def agent(data):
        calls.append(trio.current_time())
        return data

    pipeline = Step("a", agent) >> Step("b", agent) >> Step("c", agent)
    async with Runner(pipeline).stream("x") as events:
        async for event in events:
            if isinstance(event, StepStarted):
                await trio.sleep(10)  # a consumer that takes its time
    # The run is never more than one event ahead of its consumer: each step starts
    # only after the consumer finished with the previous step's StepStarted.
    assert calls == [0, 10, 20]


async def test_leaving_early_cancels_the_run_cleanly(autojump_clock):
    late = StubAgent(["never"])

    async def slow(data):
        await trio.sleep(100)
        return data

    runner = Runner(Step("slow", slow) >> Step("late", late))
    async with runner.stream("x", run_id="r1") as events:
        async for event in events:
            if isinstance(event, StepStarted):
                break
    assert late.call_count == 0 and stray_tasks() == []
    assert (await runner.store.load_run("r1")).status is RunStatus.CANCELLED
    assert trio.current_time() < 100


async def test_budget_error_is_raised_after_the_stream_ends():
    runner = Runner(Step("a", costly("x", cost=2)), limits=UsageLimits(total_cost_usd_limit=1))
    seen = []

    async def consume():
        async with runner.stream("in") as events:
            async for event in events:
                seen.append(event)

    with pytest.raises(UsageLimitExceededError, match=r"Cost limit of \$1 exceeded"):
        await consume()
    assert isinstance(seen[-1], RunFinished)
    assert seen[-1].result.status is RunStatus.BUDGET_EXCEEDED


async def test_paused_run_streams_run_paused_then_finished():
    runner = Runner(HumanStep("ask", message="ok?"))
    async with runner.stream("in") as events:
        kinds = [e async for e in events]
    assert isinstance(kinds[-2], RunPaused) and kinds[-2].message == "ok?"
    assert kinds[-1].result.status is RunStatus.PAUSED
    async with runner.stream_resume(kinds[-1].result.run_id, "yes") as events:
        resumed = [e async for e in events]
    assert resumed[0].resumed is True and resumed[-1].result.output == "yes"


async def test_hooks_receive_the_same_events():
    received = []

    async def async_hook(event):
        received.append(("async", describe(event)))

    def sync_hook(event):
        received.append(("sync", describe(event)))

    await Runner(Step("a", costly("x")), hooks=[sync_hook, async_hook]).run("in")
    sync_events = [e for who, e in received if who == "sync"]
    assert sync_events == [e for who, e in received if who == "async"]
    assert sync_events[0] == ("RunStarted",) and sync_events[-1] == ("RunFinished",)


async def test_abort_run_stops_the_run_with_status_failed():
    late = StubAgent(["never"])

    def guard(event):
        if isinstance(event, StepFinished) and event.path == ("a",):
            raise AbortRun("spend looks wrong")

    result = await Runner(Step("a", costly("x")) >> Step("b", late), hooks=[guard]).run("in")
    assert result.status is RunStatus.FAILED and late.call_count == 0
    stopped = result.step_history[-1]
    assert "Aborted by hook" in stopped.feedback and "spend looks wrong" in stopped.feedback


async def test_failing_hook_is_logged_and_does_not_break_the_run(caplog):
    def broken(event):
        raise RuntimeError("hook bug")

    caplog.set_level(logging.ERROR, logger="flujo_trio")
    result = await Runner(Step("a", costly("x")), hooks=[broken]).run("in")
    assert result.success
    assert any("broken" in r.getMessage() and "hook" in r.getMessage() for r in caplog.records)


async def test_failing_hook_does_not_hide_a_budget_error(caplog):
    def broken(event):
        raise RuntimeError("hook bug")

    caplog.set_level(logging.ERROR, logger="flujo_trio")
    runner = Runner(Step("a", costly("x", cost=2)), hooks=[broken], limits=UsageLimits(1))
    with pytest.raises(UsageLimitExceededError):
        await runner.run("in")


async def test_hooks_hear_about_a_caller_cancel(autojump_clock):
    finished = []

    def hook(event):
        if isinstance(event, RunFinished):
            finished.append(event.result.status)

    async def slow(data):
        await trio.sleep(100)

    with trio.move_on_after(1):
        await Runner(Step("slow", slow), hooks=[hook]).run("x")
    assert finished == [RunStatus.CANCELLED]


async def test_a_failing_branch_still_reports_itself_to_a_stream_consumer(autojump_clock):
    """The failure cancels the fan-out, the failing branch's own task included; its
    StepFinished is still delivered (shielded, bounded), so a consumer sees why."""

    async def bad(data):
        await trio.sleep(1)
        raise ValueError("broken")

    async def slow(data):
        await trio.sleep(10)
        return data

    step = ParallelStep("fan", {"bad": Step("b", bad, max_retries=0), "slow": Step("s", slow)})
    seen = []
    async with Runner(step).stream("x") as events:
        async for event in events:
            seen.append(event)
    finished = {e.path: e.result for e in seen if isinstance(e, StepFinished)}
    assert not finished[("fan", "bad")].success
    assert "broken" in finished[("fan", "bad")].feedback
    assert trio.current_time() == pytest.approx(1)  # the slow sibling was cancelled at once


async def test_the_breaching_call_reports_its_usage_to_a_stream_consumer(autojump_clock):
    async def spend(data):
        await trio.sleep(1)
        return AgentResult(data, Usage(tokens=80))

    step = Step("a", spend) >> Step("b", spend)
    totals: list[int] = []

    async def consume() -> None:
        async with Runner(step, limits=UsageLimits(total_tokens_limit=100)).stream("x") as events:
            async for event in events:
                if isinstance(event, UsageUpdated):
                    totals.append(event.total.tokens)

    with pytest.raises(UsageLimitExceededError):
        await consume()
    assert totals == [80, 160]  # the breaching call's event arrived too
