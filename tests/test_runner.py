"""The runner: sequencing, results, contexts, cancellation and no leaked tasks."""

from __future__ import annotations

import attrs
import pytest
import trio

from flujo_trio import ConfigurationError, PipelineContext, Runner, RunStatus, Step
from flujo_trio.testing import StubAgent
from tests.helpers import stray_tasks


async def test_steps_run_in_order_each_fed_the_previous_output():
    async def add(data):
        return data + 1

    async def double(data):
        return data * 2

    result = await Runner(Step("add", add) >> Step("double", double)).run(3)
    assert result.output == 8
    assert [s.name for s in result.step_history] == ["add", "double"]
    assert result.final_context.step_outputs == {"add": 4, "double": 8}
    assert result.final_context.run_id == result.run_id


async def test_a_failed_step_stops_the_pipeline():
    third = StubAgent(["never"])
    pipeline = (
        Step("a", StubAgent(["x"]))
        >> Step("b", StubAgent([ValueError("nope")]), max_retries=0)
        >> Step("c", third)
    )
    result = await Runner(pipeline).run("in")
    assert result.status is RunStatus.FAILED and not result.success
    assert [s.name for s in result.step_history] == ["a", "b"]
    assert third.call_count == 0


async def test_a_single_step_is_a_pipeline_and_run_id_is_kept():
    result = await Runner(Step("only", StubAgent(["out"]))).run("in", run_id="run-1")
    assert result.run_id == "run-1" and result.output == "out"


async def test_custom_context_subclass_is_used_and_checked():
    @attrs.define
    class Ctx(PipelineContext):
        notes: list[str] = attrs.field(factory=list)

    async def note(data, context):
        context.notes.append(data)
        return data

    runner = Runner(Step("note", note), context_type=Ctx)
    result = await runner.run("hi")
    assert isinstance(result.final_context, Ctx) and result.final_context.notes == ["hi"]
    mine = Ctx(notes=["earlier"])
    result = await runner.run("again", context=mine)
    assert result.final_context is mine and mine.notes == ["earlier", "again"]
    with pytest.raises(ConfigurationError, match="instance of Ctx"):
        await runner.run("x", context=PipelineContext())
    with pytest.raises(ConfigurationError, match="context_type"):
        Runner(Step("a", note), context_type=dict)  # type: ignore[arg-type]


def test_run_sync_runs_without_an_event_loop():
    result = Runner(Step("a", StubAgent(["x"]))).run_sync("in")
    assert result.output == "x" and result.success


async def test_caller_cancel_interrupts_the_agent_and_raises_cancelled(autojump_clock):
    started = trio.Event()
    finished = []

    async def slow(data):
        started.set()
        await trio.sleep(100)
        finished.append(data)
        return data

    runner = Runner(Step("slow", slow))
    outcome = []
    async with trio.open_nursery() as nursery:

        async def call():
            try:
                outcome.append(await runner.run("x"))
            except trio.Cancelled:
                outcome.append("cancelled")
                raise

        nursery.start_soon(call)
        await started.wait()
        assert stray_tasks()
        nursery.cancel_scope.cancel(reason="test cancels the run")
    assert outcome == ["cancelled"] and finished == []
    assert stray_tasks() == []


async def test_deadline_of_the_caller_cancels_the_run(autojump_clock):
    async def slow(data):
        await trio.sleep(100)
        return data

    with trio.move_on_after(5) as scope:
        await Runner(Step("slow", slow)).run("x")
    assert scope.cancelled_caught
    assert trio.current_time() == pytest.approx(5)
    assert stray_tasks() == []


async def test_no_task_outlives_a_run():
    await Runner(Step("a", StubAgent(["x"])) >> Step("b", StubAgent(["y"]))).run("in")
    assert stray_tasks() == []
