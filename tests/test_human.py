"""HumanStep pause and resume: top level, in a loop, in a conditional, in parallel branches."""

from __future__ import annotations

import attrs
import pytest

from flujo_trio import (
    AgentResult,
    ConditionalStep,
    HumanStep,
    LoopStep,
    ParallelStep,
    PipelineContext,
    ResumeError,
    Runner,
    RunStatus,
    SqliteStore,
    Step,
    Usage,
    UsageLimitExceededError,
    UsageLimits,
)
from flujo_trio.testing import StubAgent


@attrs.define
class Approval:
    approved: bool
    note: str | None = None


class Counting:
    """An agent that counts its calls and charges for each."""

    def __init__(self, output, cost=0.1):
        self.output, self.cost, self.calls = output, cost, 0

    async def run(self, data):
        self.calls += 1
        return AgentResult(self.output, Usage(self.cost, 10))


async def test_pause_returns_a_paused_result_and_resume_continues():
    draft, publish = Counting("draft text"), Counting("published")
    runner = Runner(
        Step("draft", draft) >> HumanStep("review", input_type=Approval) >> Step("publish", publish)
    )
    paused = await runner.run("topic")
    assert paused.status is RunStatus.PAUSED and not paused.success and paused.output is None
    assert paused.final_context.pause_message == "draft text"
    assert [s.name for s in paused.step_history] == ["draft", "review"]
    assert paused.step_history[1].metadata["paused"] is True
    assert publish.calls == 0

    done = await runner.resume(paused, {"approved": True})
    assert done.status is RunStatus.COMPLETED and done.output == "published"
    assert draft.calls == 1 and publish.calls == 1
    review = done.step_history[1]
    assert review.success and review.output == Approval(True)
    history = done.final_context.hitl_history
    assert len(history) == 1 and history[0].message_to_human == "draft text"
    assert history[0].human_response == Approval(True)
    assert done.final_context.pause_message is None
    assert done.total_cost_usd == pytest.approx(0.2)


async def test_explicit_message_and_resume_by_id():
    runner = Runner(HumanStep("ask", message="Ship it?") >> Step("after", StubAgent(["ok"])))
    paused = await runner.run("ignored")
    assert paused.final_context.pause_message == "Ship it?"
    result = await runner.resume(paused.run_id, "yes")
    assert result.output == "ok" and result.step_history[0].output == "yes"


@pytest.mark.parametrize(
    "bad",
    [
        {"approved": "yes"},  # a string for a bool
        {"note": "missing approved"},
        {"approved": True, "extra": 1},  # unknown key
        "not even a mapping",
    ],
)
async def test_bad_human_input_raises_and_leaves_the_stored_run_unchanged(bad):
    runner = Runner(HumanStep("review", input_type=Approval) >> Step("after", Counting("x")))
    paused = await runner.run("in")
    before = await runner.store.load_run(paused.run_id)
    with pytest.raises(ResumeError, match="human input for 'review'"):
        await runner.resume(paused.run_id, bad)
    after = await runner.store.load_run(paused.run_id)
    assert after.status is RunStatus.PAUSED and after.updated_at == before.updated_at
    assert after.context == before.context
    assert (await runner.resume(paused.run_id, {"approved": False})).success


async def test_resume_refuses_finished_runs_and_misplaced_input():
    runner = Runner(Step("a", StubAgent(["x", "y"])))
    done = await runner.run("in")
    with pytest.raises(ResumeError, match="completed"):
        await runner.resume(done.run_id)
    failing = Runner(Step("a", StubAgent([ValueError("no")]), max_retries=0))
    failed = await failing.run("in")
    with pytest.raises(ResumeError, match="failed"):
        await failing.resume(failed)
    with pytest.raises(ResumeError, match="No run 'nope'"):
        await runner.resume("nope")
    paused_runner = Runner(HumanStep("h"))
    paused = await paused_runner.run("q")
    with pytest.raises(ResumeError, match="pass human_input"):
        await paused_runner.resume(paused)


async def test_human_input_to_a_run_that_is_not_paused_is_refused(tmp_path):
    store = SqliteStore(tmp_path / "runs.db")
    state_runner = Runner(Step("a", StubAgent(["x"])), store=store)
    result = await state_runner.run("in")
    state = await store.load_run(result.run_id)
    await store.save_run(attrs.evolve(state, status=RunStatus.CANCELLED))
    with pytest.raises(ResumeError, match="not paused"):
        await state_runner.resume(result.run_id, "an answer")


async def test_human_step_in_a_loop_continues_at_the_same_iteration():
    @attrs.define
    class Ctx(PipelineContext):
        rounds: int = 0

    async def work(data, context):
        context.rounds += 1
        return f"round {context.rounds}"

    body = Step("work", work) >> HumanStep("check")
    loop = LoopStep("loop", body, exit_condition=lambda out, ctx: out == "stop", max_loops=5)
    runner = Runner(loop, context_type=Ctx)
    result = await runner.run("start")
    assert result.status is RunStatus.PAUSED and result.final_context.pause_message == "round 1"
    result = await runner.resume(result, "again")
    assert result.status is RunStatus.PAUSED and result.final_context.pause_message == "round 2"
    result = await runner.resume(result, "stop")
    assert result.success and result.output == "stop"
    loop_result = result.step_history[0]
    assert loop_result.attempts == 2 and loop_result.metadata["exit_reason"] == "condition"
    assert result.final_context.rounds == 2
    assert [i.human_response for i in result.final_context.hitl_history] == ["again", "stop"]


async def test_human_step_in_a_conditional_branch():
    cond = ConditionalStep(
        "route",
        condition=lambda data, ctx: "ask" if data == "unsure" else "auto",
        branches={"ask": HumanStep("ask_human"), "auto": Step("auto", StubAgent(["auto"]))},
    )
    runner = Runner(cond >> Step("finish", Counting("done")))
    paused = await runner.run("unsure")
    assert paused.status is RunStatus.PAUSED
    result = await runner.resume(paused, "human says hi")
    assert result.success and result.step_history[0].output == "human says hi"
    assert result.step_history[0].metadata["executed_branch_key"] == "ask"


async def test_parallel_pause_does_not_rerun_or_recharge_finished_branches():
    @attrs.define
    class Ctx(PipelineContext):
        notes: list[str] = attrs.field(factory=list)

    fast = Counting("fast result", cost=0.5)

    async def note(data, context):
        context.notes.append("fast branch ran")
        return AgentResult(data, Usage(0.25))

    step = ParallelStep(
        "fan",
        {
            "fast": Step("fast", fast) >> Step("note", note),
            "human": Step("prep", Counting("question?", cost=0.1)) >> HumanStep("approve"),
        },
    )
    runner = Runner(step, context_type=Ctx, limits=UsageLimits(total_cost_usd_limit=10))
    paused = await runner.run("x")
    assert paused.status is RunStatus.PAUSED and paused.total_cost_usd == pytest.approx(0.85)
    assert paused.final_context.pause_message == "question?"
    result = await runner.resume(paused, "approved")
    assert result.success and fast.calls == 1
    assert result.output == {"fast": "fast result", "human": "approved"}
    assert result.total_cost_usd == pytest.approx(0.85)
    assert result.final_context.notes == ["fast branch ran"]
    assert len(result.final_context.hitl_history) == 1


async def test_several_paused_branches_are_answered_in_declared_order():
    step = ParallelStep(
        "fan",
        {
            "first": HumanStep("one", message="first?"),
            "second": HumanStep("two", message="second?"),
        },
    )
    runner = Runner(step)
    paused = await runner.run("x")
    assert paused.final_context.pause_message == "first?"
    again = await runner.resume(paused, "answer 1")
    assert again.status is RunStatus.PAUSED and again.final_context.pause_message == "second?"
    done = await runner.resume(again, "answer 2")
    assert done.output == {"first": "answer 1", "second": "answer 2"}


async def test_limits_apply_across_resumes():
    runner = Runner(
        Step("a", Counting("x", cost=0.6)) >> HumanStep("h") >> Step("b", Counting("y", cost=0.6)),
        limits=UsageLimits(total_cost_usd_limit=1.0),
    )
    paused = await runner.run("in")
    with pytest.raises(UsageLimitExceededError, match=r"Cost limit of \$1 exceeded") as info:
        await runner.resume(paused, "go")
    assert info.value.result.total_cost_usd == pytest.approx(1.2)


async def test_resume_accepts_an_instance_of_the_input_type_and_bad_input_is_both_errors():
    from flujo_trio import HumanInputError, SerializationError

    runner = Runner(HumanStep("review", input_type=Approval))
    paused = await runner.run("in")
    with pytest.raises(SerializationError):
        await runner.resume(paused, {"approved": "nope"})
    with pytest.raises(HumanInputError):
        await runner.resume(paused, {"approved": "nope"})
    done = await runner.resume(paused, Approval(True, "typed"))
    assert done.output == Approval(True, "typed")
