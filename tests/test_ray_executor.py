"""RayExecutor on a real local Ray cluster (two CPUs, one per test session).

The same pipelines run locally and on Ray and must end the same; the budget holds
across workers; breaches, failing siblings and the caller stop every remote task;
a dead worker fails or retries its item.
"""

from __future__ import annotations

import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
import trio

from flujo_trio import (
    ConfigurationError,
    MapStep,
    MergeConflictError,
    RayExecutor,
    Runner,
    Step,
    StepFinished,
    Usage,
    UsageLimitExceededError,
    UsageLimits,
    UsageUpdated,
)
from flujo_trio.dsl.parallel import MergeStrategy
from tests import ray_pipelines as rp

pytestmark = pytest.mark.usefixtures("ray_cluster")
ROOT = Path(__file__).resolve().parent.parent


def shape(result):
    """Everything a run's result says, but timings and the run id."""

    def step(s):
        return (
            s.name,
            s.output,
            s.success,
            s.attempts,
            round(s.cost_usd, 9),
            s.token_counts,
            s.feedback,
            {k: v for k, v in s.metadata.items()},
            None if s.branch_context is None else (s.branch_context.seen, s.branch_context.tally),
            [step(c) for c in s.step_history],
        )

    context = result.final_context
    return (
        result.status,
        result.output,
        round(result.total_cost_usd, 9),
        result.total_tokens,
        result.total_requests,
        (context.seen, context.tally, context.last, context.step_outputs),
        [step(s) for s in result.step_history],
    )


async def run_both(make_step, data, **runner_options):
    outcomes = []
    for executor in (None, RayExecutor()):
        events = []
        runner = Runner(
            make_step(executor), context_type=rp.Notes, hooks=[events.append], **runner_options
        )
        try:
            outcomes.append((await runner.run(data), events, None))
        except MergeConflictError as error:
            outcomes.append((error.result, events, error))
    return outcomes


@pytest.mark.parametrize("strategy", rp.MERGES, ids=lambda s: getattr(s, "name", "callable"))
async def test_parallel_ends_as_a_local_run_with_every_merge(strategy):
    (local, local_events, local_error), (remote, remote_events, remote_error) = await run_both(
        lambda executor: rp.parallel_step(strategy, executor), "hi"
    )
    assert shape(remote) == shape(local)
    assert type(remote.output["a"]) is str and remote.step_history[0].step_history[0].step_history[
        0
    ].output == rp.Scored("hi", 2)
    assert (remote_error is None) == (local_error is None)
    if strategy is MergeStrategy.ERROR_ON_CONFLICT:
        assert str(remote_error) == str(local_error)
    finished = [e.path for e in remote_events if isinstance(e, StepFinished)]
    assert {("fan", "a"), ("fan", "bb"), ("fan", "ccc"), ("fan",)} <= set(finished)
    usage = [e for e in remote_events if isinstance(e, UsageUpdated)]
    assert len(usage) == sum(isinstance(e, UsageUpdated) for e in local_events) == 6
    assert max(e.total.cost_usd for e in usage) == pytest.approx(remote.total_cost_usd)


async def test_map_ends_as_a_local_run_with_item_budgets_and_nested_scopes():
    limits = UsageLimits(total_cost_usd_limit=0.01, total_tokens_limit=10)
    (local, _, _), (remote, _, _) = await run_both(
        lambda executor: rp.map_step(executor, item_limits=limits, max_concurrency=3),
        ["a", "bb", "ccc", "dddd", "e"],
    )
    assert shape(remote) == shape(local)
    assert remote.output == ["A", "BB", "CCC", "DDDD", "E"]


async def test_a_remote_item_breaching_its_own_budget_fails_only_by_that_budget():
    step = rp.map_step(RayExecutor(), item_limits=UsageLimits(total_tokens_limit=5))
    result = await Runner(step, context_type=rp.Notes).run(["dddddd"])
    item = result.step_history[0].step_history[0]
    assert not item.success and item.metadata["limit_scope"] == "m[0]"
    assert item.feedback == "Token limit of 5 exceeded in step 'm[0]'"
    assert result.total_tokens == item.token_counts == 6


async def test_200_remote_items_never_overshoot_a_tight_limit(tmp_path):
    log = tmp_path / "spend.log"
    step = MapStep(
        "m",
        Step("spend", rp.Spender(log), reserve=Usage(0.003, 1)),
        executor=RayExecutor(),
    )
    runner = Runner(step, limits=UsageLimits(total_cost_usd_limit=0.1))
    with pytest.raises(UsageLimitExceededError) as raised:
        await runner.run(list(range(200)))
    result = raised.value.result
    spent = [Decimal(line.split()[1]) for line in rp.read_log(log)]
    assert sum(spent) == Decimal(repr(result.total_cost_usd))  # every remote call, exactly
    assert sum(spent) <= Decimal("0.1")  # zero overshoot
    assert sum(spent) > Decimal("0.1") - Decimal("0.003") * 4  # the budget was used
    assert result.total_requests == len(spent)
    items = result.step_history[0].step_history
    assert sum(Decimal(repr(i.cost_usd)) for i in items) == sum(spent)
    assert result.governor.reserved == Usage()  # every reservation settled


@pytest.mark.parametrize("in_flight", [2, 4])  # 4: two tasks wait in Ray's queue
async def test_a_breach_cancels_every_remote_task_and_starts_nothing(tmp_path, in_flight):
    log, marker = tmp_path / "calls.log", tmp_path / "breacher"
    step = MapStep(
        "m",
        Step("work", rp.Blocker(log, marker, breach=True)),
        executor=RayExecutor(max_in_flight=in_flight, cancel_grace_s=60),
    )
    runner = Runner(step, limits=UsageLimits(total_cost_usd_limit=1.0))
    with pytest.raises(UsageLimitExceededError, match=r"Cost limit of \$1 exceeded"):
        await runner.run(list(range(10)))
    # Every task, queued ones included, ended at once: nobody waited out the grace.
    assert time.time() - float(marker.read_text()) < 30
    lines = rp.read_log(log)
    started = [line for line in lines if line.startswith("start")]
    cancelled = [line for line in lines if line.startswith("cancelled")]
    assert len(started) == 2  # the two in flight; nothing started after the breach
    assert len(cancelled) == 1  # the other one was cancelled, and said so before run() ended


async def test_cancelling_the_caller_cancels_every_remote_task(tmp_path):
    log, marker = tmp_path / "calls.log", tmp_path / "unused"
    step = MapStep(
        "m",
        Step("work", rp.Blocker(log, marker, breach=False)),
        executor=RayExecutor(max_in_flight=2),
    )
    runner = Runner(step)
    outcome = []

    async def run_it():
        try:
            await runner.run(list(range(10)))
        except trio.Cancelled:
            outcome.append("cancelled")
            raise

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_it)
        await rp.poll_until(lambda: len(rp.read_log(log)) == 2)  # both items are running
        nursery.cancel_scope.cancel(reason="the test cancels its caller")
    assert outcome == ["cancelled"]
    lines = rp.read_log(log)
    assert sorted(line.split()[0] for line in lines) == ["cancelled", "cancelled", "start", "start"]


async def test_a_failing_sibling_cancels_the_other_remote_branches(tmp_path):
    log, marker = tmp_path / "calls.log", tmp_path / "unused"

    async def fail(_):
        raise ValueError("no")

    from flujo_trio import ParallelStep

    step = ParallelStep(
        "p",
        {
            "slow": Step("work", rp.Blocker(log, marker, breach=False)),
            "bad": Step("bad", fail, max_retries=0),
        },
        executor=RayExecutor(),
    )
    result = await Runner(step).run(1)
    assert not result.success
    assert rp.read_log(log) in (["start 1", "cancelled 1"], [])
    slow = result.step_history[0].step_history[0]
    assert slow.name == "slow" and slow.metadata.get("cancelled") is True


@pytest.mark.parametrize("retries", [1, 0])
async def test_a_worker_that_dies_mid_item_is_retried_or_fails_the_item(tmp_path, retries):
    log, marker = tmp_path / "calls.log", tmp_path / "killed"
    step = MapStep("m", Step("work", rp.Killer(log, marker)), executor=RayExecutor(retries=retries))
    result = await Runner(step).run([1, 2, 3])
    calls = rp.read_log(log)
    assert len(calls) == 3 + retries
    if retries:
        assert result.success and result.output == [10, 20, 30]
        assert [i.metadata.get("ray_retries") for i in result.step_history[0].step_history].count(
            1
        ) == 1
        assert result.total_cost_usd == pytest.approx(0.03)
    else:
        assert not result.success
        died = [i for i in result.step_history[0].step_history if not i.success]
        assert len(died) == 1 and "died before it finished" in died[0].feedback
        assert "retries=" in died[0].feedback


def test_executor_options_are_checked():
    with pytest.raises(ConfigurationError, match="num_cpus"):
        RayExecutor(num_cpus=0)
    assert RayExecutor(num_cpus=None).cpus_per_job == 1
    assert RayExecutor(num_cpus=0.5).cpus_per_job == 0.5
    with pytest.raises(ConfigurationError, match="max_in_flight"):
        RayExecutor(max_in_flight=0)
    with pytest.raises(ConfigurationError, match="retries"):
        RayExecutor(retries=-1)


def test_importing_flujo_trio_does_not_import_ray():
    code = "import sys, flujo_trio; flujo_trio.RayExecutor; assert 'ray' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


async def test_resume_after_a_coordinator_crash_reruns_no_finished_remote_item(
    tmp_path, ray_cluster
):
    import os

    from flujo_trio import RunStatus, SqliteStore
    from flujo_trio.state.journal import SavedStep, StepStatus
    from tests.ray_crash import runner

    root = ROOT
    db, log = tmp_path / "runs.db", tmp_path / "calls.log"
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "tests.ray_crash", str(db), str(log), "run-1", ray_cluster],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )

    async def finished_items():
        if "call 3" not in rp.read_log(log):  # item 3 hangs in its second step
            return False
        state = await SqliteStore(db).load_run("run-1")
        done = [e for e in state.journal if isinstance(e, SavedStep) and e.kind == "item"]
        return sum(e.status is StepStatus.OK for e in done) == 3

    try:
        await rp.poll_until(finished_items, timeout_s=120)  # three stored, the fourth hangs
        process.kill()  # SIGKILL: the coordinator gets no chance to clean up
        assert await process.wait() == -9
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    state = await SqliteStore(db).load_run("run-1")
    assert state.status is RunStatus.RUNNING
    result = await runner(db, log, hang=False).resume("run-1")
    assert result.success and result.output == [0, 100, 200, 300]
    calls = rp.read_log(log)
    # Finished items ran once; item 3's first step (done before the crash) was replayed
    # on its new worker, its second step ran again.
    assert sorted(c for c in calls if c.startswith("call")) == [
        f"call {i}" for i in (0, 1, 2, 3, 3)
    ]
    assert sorted(c for c in calls if c.startswith("first")) == [f"first {i}" for i in range(4)]
    assert result.total_cost_usd == pytest.approx(0.044)
    item3 = result.step_history[0].step_history[3]
    assert [s.name for s in item3.step_history] == ["first", "work"]


async def test_a_step_budget_inside_a_remote_body_fails_that_step_as_it_does_locally():
    from flujo_trio import BranchFailure, ParallelStep

    def make(executor):
        tight = UsageLimits(total_cost_usd_limit=0.0001)
        body = Step("note", rp.note) >> Step("shout", rp.shout, limits=tight)
        return ParallelStep(
            "fan",
            {"a": body, "b": Step("note", rp.note)},
            on_branch_failure=BranchFailure.IGNORE,
            executor=executor,
        )

    (local, _, _), (remote, _, _) = await run_both(make, "x")
    assert shape(remote) == shape(local)
    shout = remote.step_history[0].step_history[0].step_history[1]
    assert not shout.success and shout.metadata["limit_scope"] == "shout"


async def test_a_person_answers_a_remote_branch_paused_on_a_human_step(tmp_path):
    from flujo_trio import HumanStep, ParallelStep, RunStatus

    log = tmp_path / "spend.log"
    step = ParallelStep(
        "fan",
        {"ask": HumanStep("approve", message="ok?"), "work": Step("spend", rp.Spender(log))},
        executor=RayExecutor(),
    )
    runner = Runner(step)
    paused = await runner.run(1)
    assert paused.status is RunStatus.PAUSED and paused.final_context.pause_message == "ok?"
    done = await runner.resume(paused, human_input="yes")
    assert done.success and done.output == {"ask": "yes", "work": 1}
    assert rp.read_log(log) == ["1 0.002"]  # the finished branch was not run again
