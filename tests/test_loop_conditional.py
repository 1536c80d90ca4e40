"""LoopStep and ConditionalStep semantics."""

from __future__ import annotations

import attrs
import pytest

from flujo_trio import (
    ConditionalStep,
    ConfigurationError,
    LoopStep,
    PipelineContext,
    Runner,
    Step,
    UsageLimitExceededError,
    UsageLimits,
)
from flujo_trio.testing import StubAgent
from tests.helpers import CostAgent


@attrs.define
class Counter(PipelineContext):
    count: int = 0
    seen: list[int] = attrs.field(factory=list)


async def bump(data, context):
    context.count += 1
    context.seen.append(context.count)
    return data + 1


async def test_loop_iterations_see_earlier_context_updates():
    loop = LoopStep("loop", Step("bump", bump), exit_condition=lambda out, ctx: ctx.count >= 3)
    result = await Runner(loop, context_type=Counter).run(0)
    step = result.step_history[0]
    assert step.success and step.output == 3 and step.attempts == 3
    assert step.metadata["exit_reason"] == "condition"
    assert result.final_context.seen == [1, 2, 3]
    assert [s.name for s in step.step_history] == ["bump"] * 3


async def test_loop_mappers_and_exit_condition_sees_raw_output():
    seen = []

    def exit_condition(output, ctx):
        seen.append(output)
        return output >= 20

    loop = LoopStep(
        "loop",
        Step("bump", bump),
        exit_condition=exit_condition,
        initial_input_mapper=lambda data, ctx: data * 10,
        iteration_input_mapper=lambda out, ctx, iteration: out + iteration * 100,
        output_mapper=lambda out, ctx: f"final:{out}",
    )
    result = await Runner(loop, context_type=Counter).run(1)
    assert seen == [11, 112]
    assert result.output == "final:112"


async def test_iteration_number_is_one_based():
    numbers = []

    def mapper(out, ctx, iteration):
        numbers.append(iteration)
        return out

    loop = LoopStep(
        "loop",
        Step("bump", bump),
        exit_condition=lambda o, c: False,
        max_loops=3,
        iteration_input_mapper=mapper,
    )
    await Runner(loop, context_type=Counter).run(0)
    assert numbers == [1, 2]


async def test_max_loops_fails_with_feedback():
    loop = LoopStep("loop", Step("bump", bump), exit_condition=lambda o, c: False, max_loops=2)
    result = await Runner(loop, context_type=Counter).run(0)
    step = result.step_history[0]
    assert not step.success and step.attempts == 2
    assert "max_loops" in step.feedback and step.metadata["exit_reason"] == "max_loops"
    assert not result.success


async def test_failing_body_fails_the_loop():
    body = Step("s", StubAgent(["ok", ValueError("nope")]), max_retries=0)
    loop = LoopStep("loop", body, exit_condition=lambda o, c: False)
    step = (await Runner(loop).run("x")).step_history[0]
    assert not step.success and step.attempts == 2 and "nope" in step.feedback


async def test_breach_in_iteration_n_reports_all_n_iterations():
    loop = LoopStep(
        "loop", Step("spend", CostAgent(0.4)), exit_condition=lambda o, c: False, max_loops=10
    )
    with pytest.raises(UsageLimitExceededError) as info:
        await Runner(loop, limits=UsageLimits(total_cost_usd_limit=1.0)).run("x")
    step = info.value.result.step_history[0]
    assert step.attempts == 3 and len(step.step_history) == 3
    assert step.cost_usd == pytest.approx(1.2)
    assert info.value.result.total_cost_usd == pytest.approx(1.2)


async def test_conditional_runs_the_chosen_branch_with_mappers():
    a, b = StubAgent(["from a"]), StubAgent(["from b"])
    cond = ConditionalStep(
        "route",
        condition=lambda data, ctx: data["kind"],
        branches={"a": Step("a", a), "b": Step("b", b) >> Step("b2", StubAgent(["b2"]))},
        input_mapper=lambda data, ctx: data["text"],
        output_mapper=lambda out, ctx: out.upper(),
    )
    result = await Runner(cond).run({"kind": "b", "text": "hello"})
    step = result.step_history[0]
    assert step.success and step.output == "B2"
    assert step.metadata["executed_branch_key"] == "b"
    assert b.inputs == ["hello"] and a.call_count == 0
    assert [s.name for s in step.step_history] == ["b", "b2"]


async def test_conditional_default_and_missing_branch():
    cond = ConditionalStep("route", condition=lambda d, c: "x", branches={"a": Step("a", bump)})
    step = (await Runner(cond).run(1)).step_history[0]
    assert not step.success
    assert step.feedback == "No branch found for key 'x' and no default branch provided"
    with_default = ConditionalStep(
        "route",
        condition=lambda d, c: "x",
        branches={"a": Step("a", bump)},
        default=Step("d", StubAgent(["default"])),
    )
    step = (await Runner(with_default).run(1)).step_history[0]
    assert step.success and step.output == "default"


async def test_condition_errors_fail_the_step_clearly():
    def broken(data, ctx):
        raise KeyError("kind")

    cond = ConditionalStep("route", condition=broken, branches={"a": Step("a", bump)})
    step = (await Runner(cond).run(1)).step_history[0]
    assert not step.success and "condition raised" in step.feedback


def test_control_flow_declarations_are_checked():
    with pytest.raises(ConfigurationError, match="max_loops"):
        LoopStep("l", Step("a", bump), exit_condition=lambda o, c: True, max_loops=0)
    with pytest.raises(ConfigurationError, match="exit_condition"):
        LoopStep("l", Step("a", bump), exit_condition=None)
    with pytest.raises(ConfigurationError, match="branches"):
        ConditionalStep("c", condition=lambda d, c: 1, branches={})
    with pytest.raises(ConfigurationError, match="Step or Pipeline"):
        ConditionalStep("c", condition=lambda d, c: 1, branches={"a": bump})
