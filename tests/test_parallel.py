"""ParallelStep and MapStep: isolation, merging, failure handling, cancellation."""

from __future__ import annotations

import attrs
import pytest
import trio
import trio.lowlevel

from flujo_trio import (
    BranchFailure,
    MapStep,
    MergeConflictError,
    MergeStrategy,
    ParallelStep,
    PipelineContext,
    Runner,
    RunStatus,
    Step,
)
from flujo_trio.testing import StubAgent
from tests.helpers import CostAgent, stray_tasks


@attrs.define
class Ctx(PipelineContext):
    a: int = 0
    b: int = 0
    shared: str = "start"
    log: list[str] = attrs.field(factory=list)
    scores: dict[str, int] = attrs.field(factory=dict)


def writer(**changes):
    async def write(data, context):
        for name, value in changes.items():
            if name == "log":
                context.log.extend(value)
            elif name == "scores":
                context.scores.update(value)
            else:
                setattr(context, name, value)
        await trio.lowlevel.checkpoint()
        return data

    return write


def parallel(branches, **options):
    return ParallelStep("fan", {k: Step(k, v) for k, v in branches.items()}, **options)


async def run(step, data="x", context=None):
    return await Runner(step, context_type=Ctx).run(data, context=context)


async def test_output_is_by_branch_in_declared_order_and_results_named_by_key(autojump_clock):
    async def slow(data):
        await trio.sleep(0.01)
        return "slow"

    step = ParallelStep("fan", {"z": Step("s1", slow), "a": Step("s2", StubAgent(["fast"]))})
    result = await Runner(step).run("in")
    fan = result.step_history[0]
    assert list(fan.output.items()) == [("z", "slow"), ("a", "fast")]
    assert [r.name for r in fan.step_history] == ["z", "a"]
    assert [r.step_history[0].name for r in fan.step_history] == ["s1", "s2"]


async def test_branches_are_isolated_and_disjoint_writes_both_survive():
    seen = {}

    async def a(data, context):
        context.a = 1
        await trio.lowlevel.checkpoint()
        seen["a_sees_b"] = context.b
        return data

    async def b(data, context):
        context.b = 2
        await trio.lowlevel.checkpoint()
        seen["b_sees_a"] = context.a
        return data

    result = await run(parallel({"a": a, "b": b}))
    assert seen == {"a_sees_b": 0, "b_sees_a": 0}
    assert (result.final_context.a, result.final_context.b) == (1, 2)
    branch = result.step_history[0].step_history[0]
    assert isinstance(branch.branch_context, Ctx) and branch.branch_context.a == 1


async def test_lists_concatenate_in_branch_order_and_dicts_merge_by_key():
    ctx = Ctx(log=["before"], scores={"old": 0})
    step = parallel(
        {
            "second": writer(log=["s1", "s2"], scores={"x": 1}),
            "first": writer(log=["f1"], scores={"y": 2, "old": 0}),
        }
    )
    result = await run(step, context=ctx)
    assert result.final_context.log == ["before", "s1", "s2", "f1"]
    assert result.final_context.scores == {"old": 0, "x": 1, "y": 2}


async def test_same_value_from_two_branches_is_not_a_conflict():
    result = await run(parallel({"a": writer(shared="same"), "b": writer(shared="same")}))
    assert result.success and result.final_context.shared == "same"


async def test_context_update_conflict_fails_the_step_and_leaves_parent_untouched():
    step = parallel({"a": writer(shared="A", a=1), "b": writer(shared="B")})
    result = await run(step)
    fan = result.step_history[0]
    assert not fan.success and fan.feedback == "Merge conflict for key 'shared'"
    assert result.final_context.shared == "start" and result.final_context.a == 0
    assert result.status is RunStatus.FAILED


async def test_dict_key_conflict_names_the_key():
    step = parallel({"a": writer(scores={"k": 1}), "b": writer(scores={"k": 2})})
    fan = (await run(step)).step_history[0]
    assert fan.feedback == "Merge conflict for key 'k'"


async def test_error_on_conflict_raises_with_the_partial_result():
    after = StubAgent(["never"])
    step = parallel(
        {"a": writer(shared="A"), "b": writer(shared="B")},
        merge_strategy=MergeStrategy.ERROR_ON_CONFLICT,
    )
    with pytest.raises(MergeConflictError, match="Merge conflict for key 'shared'") as info:
        await Runner(step >> Step("after", after), context_type=Ctx).run("x")
    assert [s.name for s in info.value.result.step_history] == ["fan"]
    assert after.call_count == 0


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        (MergeStrategy.OVERWRITE, "B"),
        (MergeStrategy.KEEP_FIRST, "A"),
        (MergeStrategy.NO_MERGE, "start"),
    ],
)
async def test_overwrite_keep_first_and_no_merge(strategy, expected):
    step = parallel({"a": writer(shared="A"), "b": writer(shared="B")}, merge_strategy=strategy)
    result = await run(step)
    assert result.success and result.final_context.shared == expected


async def test_callable_merge_strategy_gets_parent_and_branch_contexts():
    def merge(parent, branches):
        parent.shared = "+".join(f"{name}={ctx.shared}" for name, ctx in branches.items())

    step = parallel({"a": writer(shared="A"), "b": writer(shared="B")}, merge_strategy=merge)
    assert (await run(step)).final_context.shared == "a=A+b=B"


async def test_propagate_cancels_siblings_at_once_and_counts_their_usage(autojump_clock):
    finished = []

    class SlowSpender:
        async def run(self, data):
            await trio.sleep(100)
            finished.append(data)
            return data

    async def fail(data):
        await trio.sleep(1)
        raise RuntimeError("broken branch")

    step = ParallelStep(
        "fan",
        {
            "slow": Step("slow", SlowSpender(), reserve=__import__("flujo_trio").Usage(0.5)),
            "bad": Step("bad", fail, max_retries=0),
        },
    )
    result = await Runner(step).run("x")
    fan = result.step_history[0]
    assert not fan.success and "broken branch" in fan.feedback
    assert finished == [] and trio.current_time() == pytest.approx(1)
    slow = fan.step_history[0]
    assert slow.metadata["cancelled"] is True and slow.step_history[0].cost_usd == 0.5
    assert result.total_cost_usd == 0.5 and fan.cost_usd == 0.5


async def test_ignore_succeeds_if_any_branch_succeeds():
    step = ParallelStep(
        "fan",
        {
            "ok": Step("ok", StubAgent(["fine"])),
            "bad": Step("bad", StubAgent([ValueError()]), max_retries=0),
        },
        on_branch_failure=BranchFailure.IGNORE,
    )
    fan = (await Runner(step).run("x")).step_history[0]
    assert fan.success and fan.output["ok"] == "fine"
    assert fan.metadata["failed_branches"] == ["bad"]


async def test_max_concurrency_limits_branches_in_flight(autojump_clock):
    running = peak = 0

    async def work(data):
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await trio.sleep(1)
        running -= 1
        return data

    step = ParallelStep("fan", {f"b{i}": Step(f"s{i}", work) for i in range(6)}, max_concurrency=2)
    result = await Runner(step).run("x")
    assert result.success and peak == 2 and trio.current_time() == pytest.approx(3)


async def test_caller_cancel_cancels_every_branch(autojump_clock):
    started = []

    async def hang(data):
        started.append(data)
        await trio.sleep(1000)

    step = ParallelStep("fan", {f"b{i}": Step(f"s{i}", hang) for i in range(20)})
    with trio.move_on_after(5) as scope:
        await Runner(step).run("x")
    assert scope.cancelled_caught and len(started) == 20
    assert stray_tasks() == []


async def test_map_runs_items_concurrently_in_input_order(autojump_clock):
    async def square(n, context):
        await trio.sleep(0.001 * (5 - n))
        context.log.append(f"item{n}")
        return n * n

    step = MapStep("squares", Step("square", square), max_concurrency=3)
    result = await Runner(step, context_type=Ctx).run([1, 2, 3, 4])
    fan = result.step_history[0]
    assert fan.success and fan.output == [1, 4, 9, 16]
    assert result.final_context.log == ["item1", "item2", "item3", "item4"]
    assert [r.name for r in fan.step_history] == [f"squares[{i}]" for i in range(4)]


async def test_map_items_from_context_and_failed_item_cancels_the_rest(autojump_clock):
    done = []

    async def maybe_fail(n):
        if n == 2:
            raise ValueError("item 2 is bad")
        await trio.sleep(10)
        done.append(n)
        return n

    step = MapStep("m", Step("f", maybe_fail, max_retries=0), items=lambda ctx: ctx.scores.values())
    result = await Runner(step, context_type=Ctx).run(None, context=Ctx(scores={"a": 1, "b": 2}))
    fan = result.step_history[0]
    assert not fan.success and "item 2 is bad" in fan.feedback and done == []


async def test_map_over_a_non_iterable_fails_clearly():
    fan = (await Runner(MapStep("m", Step("f", CostAgent()))).run(5)).step_history[0]
    assert not fan.success and "iterable" in fan.feedback


async def test_nested_usage_rolls_up():
    inner = ParallelStep(
        "inner", {"x": Step("x", CostAgent(0.1, 1)), "y": Step("y", CostAgent(0.2, 2))}
    )
    outer = MapStep("outer", inner)
    result = await Runner(outer).run([1, 2])
    fan = result.step_history[0]
    assert fan.cost_usd == pytest.approx(0.6) and fan.token_counts == 6
    assert fan.step_history[0].cost_usd == pytest.approx(0.3)
    assert result.total_cost_usd == pytest.approx(0.6)


async def test_lists_inside_dicts_concatenate_and_nested_dicts_merge():
    @attrs.define
    class Scratch(PipelineContext):
        scratchpad: dict = attrs.field(factory=lambda: {"log": ["start"], "meta": {"n": 0}})

    def note(entry, key):
        async def write(data, context):
            context.scratchpad["log"].append(entry)
            context.scratchpad["meta"][key] = entry
            context.scratchpad.setdefault("results", []).append(entry)
            return data

        return write

    step = ParallelStep("fan", {"a": Step("a", note("A", "x")), "b": Step("b", note("B", "y"))})
    result = await Runner(step, context_type=Scratch).run("go")
    assert result.success, result.step_history[0].feedback
    pad = result.final_context.scratchpad
    assert pad["log"] == ["start", "A", "B"]
    assert pad["meta"] == {"n": 0, "x": "A", "y": "B"}
    assert pad["results"] == ["A", "B"]


async def test_map_items_may_be_a_collection():
    result = await Runner(MapStep("m", Step("double", lambda n: n * 2), items=[1, 2, 3])).run(None)
    assert result.output == [2, 4, 6]
