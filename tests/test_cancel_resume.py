"""A caller cancel anywhere in a fan-out, then a resume: no context change is lost or doubled,
no finished call runs again, and the spend is exact."""

from __future__ import annotations

from collections import Counter

import attrs
import pytest
import trio

from flujo_trio import (
    AgentResult,
    MapStep,
    MemoryStore,
    ParallelStep,
    PipelineContext,
    Runner,
    RunStatus,
    SqliteStore,
    Step,
    Usage,
)
from flujo_trio.serialization import register


@register
@attrs.define
class Trail(PipelineContext):
    visits: list[str] = attrs.field(factory=list)
    tally: dict[str, int] = attrs.field(factory=dict)


def make_agent(name: str, calls: Counter[str], delay: float, seen=None):
    async def run(data, context: Trail):
        await trio.sleep(delay)
        key = f"{name}@{data}" if isinstance(data, int) else name
        calls[key] += 1
        if seen is not None:
            seen(key)
        context.visits.append(key)
        context.tally[key] = context.tally.get(key, 0) + 1
        return AgentResult(data, Usage(0.01, 1))

    return run


def parallel(calls: Counter[str], seen=None) -> ParallelStep:
    branches = {}
    for index, branch in enumerate("abc"):
        steps = [
            Step(f"{branch}{n}", make_agent(f"{branch}{n}", calls, 1 + index, seen))
            for n in range(3)
        ]
        branches[branch] = steps[0] >> steps[1] >> steps[2]
    return ParallelStep("fan", branches)


def mapped(calls: Counter[str], seen=None) -> MapStep:
    body = Step("one", make_agent("one", calls, 1, seen)) >> Step(
        "two", make_agent("two", calls, 2, seen)
    )
    return MapStep("each", body, max_concurrency=3)


POINTS = [0.5, 1.5, 2.5, 3.0, 3.5, 4.5, 5.5, 6.5, 8.5]


@pytest.mark.parametrize("cancel_at", POINTS)
@pytest.mark.parametrize("shape", ["parallel", "map"])
async def test_cancel_anywhere_then_resume_keeps_every_change_once(
    autojump_clock, tmp_path, shape, cancel_at
):
    store = MemoryStore()
    calls: Counter[str] = Counter()
    step = parallel(calls) if shape == "parallel" else mapped(calls)
    runner = Runner(step, store=store, context_type=Trail, name=shape)
    data = "go" if shape == "parallel" else list(range(7))  # 3 waves of 3 s: done at 9 s
    with trio.move_on_after(cancel_at):
        await runner.run(data, run_id="r")
    await check_resume(runner, store, calls, shape)


@pytest.mark.parametrize("after_calls", [1, 3, 5, 8])
@pytest.mark.parametrize("shape", ["parallel", "map"])
async def test_cancel_after_some_calls_on_sqlite_then_resume(
    autojump_clock, tmp_path, shape, after_calls
):
    # SQLite writes run in worker threads, and a mock clock jumps ahead while they do:
    # the cancel is triggered by the calls themselves instead of by time.
    store = SqliteStore(tmp_path / "runs.db")
    calls: Counter[str] = Counter()
    enough = trio.Event()

    def count(key: str) -> None:
        if sum(calls.values()) >= after_calls:
            enough.set()

    step = parallel(calls, count) if shape == "parallel" else mapped(calls, count)
    runner = Runner(step, store=store, context_type=Trail, name=shape)
    data = "go" if shape == "parallel" else list(range(7))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: runner.run(data, run_id="r"))
        await enough.wait()
        nursery.cancel_scope.cancel(reason="the caller gives up")
    await check_resume(runner, store, calls, shape)
    await store.aclose()


async def check_resume(runner: Runner, store, calls: Counter[str], shape: str) -> None:
    state = await store.load_run("r")
    assert state.status is RunStatus.CANCELLED  # every cancel point is before the end (9 s)
    before = Counter(calls)
    result = await runner.resume("r")
    assert result.success
    # Every step ran; each change appears exactly once, whatever ran before the cancel.
    expected = (
        {f"{b}{n}" for b in "abc" for n in range(3)}
        if shape == "parallel"
        else {f"{name}@{i}" for name in ("one", "two") for i in range(7)}
    )
    tally = result.final_context.tally
    assert set(tally) == expected and set(tally.values()) == {1}
    assert sorted(result.final_context.visits) == sorted(expected)
    # A call that finished before the cancel was not called again.
    again = calls - before
    finished_before = {key for key in before if before[key]}
    assert not set(again) & finished_before
    # Spend: every call that finished counts once; cancelled ones were charged nothing.
    assert result.total_tokens == sum(calls.values())
