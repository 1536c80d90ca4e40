"""Crashes inside composites, racing resumes, changed pipelines, hostile answers, odd values.

SIGKILL tests run the pipelines of tests/crash_composites.py in a child process. Each
agent call logs ``start`` and ``done``; after a resume in this process the log shows
that no call that finished before the kill ran again, and the stored spend equals
what the calls spent (calls lost in flight are charged their reservation).
"""

from __future__ import annotations

import math
import os
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path

import attrs
import pytest
import trio

from flujo_trio import (
    ConditionalStep,
    ConfigurationError,
    HumanStep,
    LoopStep,
    MemoryStore,
    ParallelStep,
    Pipeline,
    PipelineContext,
    ResumeError,
    Runner,
    RunStatus,
    SqliteStore,
    Step,
    Usage,
    UsageLimits,
)
from flujo_trio.dsl.shape import fingerprint
from flujo_trio.state.journal import CallRecord, CallStatus, SavedStep, StepStatus
from flujo_trio.testing import StubAgent
from tests import crash_composites
from tests.crash_composites import COST, RESERVE
from tests.helpers import ROOT, child_until


async def run_until_ready(*args: str) -> None:
    """Start ``python -m tests.crash_composites ARGS``; SIGKILL it once it says READY."""
    await child_until("tests.crash_composites", *args)


def lines(log: Path) -> list[tuple[str, str]]:
    return [tuple(line.split()[:2]) for line in log.read_text().splitlines()]  # type: ignore[misc]


def done_calls(entries: list[tuple[str, str]]) -> Counter[str]:
    return Counter(name for kind, name in entries if kind == "done")


def label_of(address: tuple) -> str:
    """The log label of the call at a journal address (see tests/crash_composites.py)."""
    name = str(address[-1])
    item = next((str(a) for a in address if isinstance(a, str) and a.startswith("items[")), None)
    iteration = next((a for a in address if isinstance(a, int)), None)
    if iteration is not None:
        return f"{name}#{iteration}"
    return f"{name}:{item[6:-1]}" if item else name


def durable_before_resume(journal) -> tuple[Counter[str], int]:
    """Calls whose finished step the store held at the kill, and how many calls with a
    reservation were stored as started but not finished (lost in flight)."""
    steps = [e for e in journal if isinstance(e, SavedStep) and e.kind == "step"]
    finished = Counter(label_of(e.address) for e in steps if e.status is StepStatus.OK)
    latest: dict[tuple, CallRecord] = {}
    for entry in journal:
        if isinstance(entry, CallRecord):
            latest[(entry.address, entry.call, entry.request)] = entry
    lost = sum(
        1
        for record in latest.values()
        if record.status is CallStatus.STARTED and record.reserved and record.reserved.cost_usd
    )
    return finished, lost


@pytest.mark.parametrize(
    ("kind", "hang", "lost"),
    [
        ("parallel", "c2", "c2"),  # inside a branch, after its siblings finished
        ("parallel", "a2", "a2"),  # early: other branches still running at the kill
        ("map", "second:2", "second:2"),  # inside the third item
        ("map", "first:1", "first:1"),
        ("loop", "draft#3", "draft#3"),  # inside the third iteration
        ("loop", "check#2", "check#2"),
    ],
)
async def test_sigkill_inside_a_composite_then_resume(tmp_path, kind, hang, lost):
    db, log = tmp_path / "runs.db", tmp_path / "calls.log"
    await run_until_ready(kind, str(db), str(log), "r", hang)
    crashed = lines(log)
    async with SqliteStore(db) as store:
        stored = await store.load_run("r")
    assert stored.status is RunStatus.RUNNING
    durable, lost_in_flight = durable_before_resume(stored.journal)
    resumed = await crash_composites.runner(kind, db, log, hang=None).resume("r")
    assert resumed.success, resumed.step_history
    rerun = done_calls(lines(log)[len(crashed) :])
    # Nothing the store held as finished ran again; the hanging call did.
    assert not (set(rerun) & set(durable)), (durable, rerun)
    assert lost in rerun and lost_in_flight >= (1 if lost in RESERVED else 0)
    # Every finished call's context change is there exactly once: none lost, none doubled.
    assert resumed.final_context.counts == dict(durable + rerun)
    # Stored spend: each finished call once, each call lost in flight its reservation.
    expected = Decimal(str(COST)) * (sum(durable.values()) + sum(rerun.values()))
    expected += Decimal(str(RESERVE.cost_usd)) * lost_in_flight
    async with SqliteStore(db) as store:
        final = await store.load_run("r")
    assert final.status is RunStatus.COMPLETED
    assert final.spent.cost_usd == expected == Decimal(repr(resumed.total_cost_usd))
    # A call the killed process finished but had not stored yet runs again (at least once).
    assert set(done_calls(crashed)) - set(durable) <= set(rerun)


RESERVED = {"c2", "a2", "b2", "second:2", "draft#3"}


async def test_two_processes_racing_to_resume_one_crashed_run(tmp_path):
    db, log = tmp_path / "runs.db", tmp_path / "calls.log"
    await run_until_ready("parallel", str(db), str(log), "r", "c2")
    crashed = len(lines(log))
    code = (
        "import sys, trio\n"
        "from pathlib import Path\n"
        "from flujo_trio import ResumeError\n"
        "from tests import crash_composites\n"
        "db, log = Path(sys.argv[1]), Path(sys.argv[2])\n"
        "runner = crash_composites.runner('parallel', db, log, hang=None)\n"
        "try:\n"
        "    result = trio.run(runner.resume, 'r')\n"
        "    print('resumed', result.status.value)\n"
        "except ResumeError as error:\n"
        "    print('refused', error)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    outputs: list[str] = []

    async def resume() -> None:
        done = await trio.run_process(
            [sys.executable, "-c", code, str(db), str(log)],
            cwd=ROOT,
            env=env,
            capture_stdout=True,
            capture_stderr=True,
        )
        outputs.append(done.stdout.decode().strip())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(resume)
        nursery.start_soon(resume)
    assert sorted(o.split()[0] for o in outputs) == ["refused", "resumed"], outputs
    refused = next(o for o in outputs if o.startswith("refused"))
    assert "is being executed by" in refused or "nothing to resume" in refused
    # The lost call ran once more, everything else not at all.
    assert done_calls(lines(log)[crashed:]) == Counter({"c2": 1, "after": 1})


# -- one owner per run ------------------------------------------------------------------------


async def test_a_run_being_executed_cannot_be_resumed_or_started_again(autojump_clock):
    started = trio.Event()

    async def slow(data):
        started.set()
        await trio.sleep(100)
        return data

    runner = Runner(Step("slow", slow))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: runner.run("x", run_id="busy"))
        await started.wait()
        with pytest.raises(ResumeError, match=r"Run 'busy' is being executed by process \d+"):
            await runner.resume("busy")
        with pytest.raises(ConfigurationError, match="already exists"):
            await runner.run("x", run_id="busy")
    assert (await runner.store.load_run("busy")).status is RunStatus.COMPLETED


# -- the pipeline's shape ---------------------------------------------------------------------


def shaped(*names: str, human: str = "h") -> Pipeline:
    return Pipeline([*(Step(name, StubAgent([name] * 3)) for name in names), HumanStep(human)])


@pytest.mark.parametrize(
    ("changed", "message"),
    [
        (shaped("s1"), "step 's2' was removed"),
        (shaped("s1", "s2", human="h_renamed"), "'h' is now 'h_renamed'"),
        (shaped("s1", "s1b", "s2"), "step 's1b' was inserted"),
        (
            Pipeline(
                [
                    Step("s1", StubAgent([1])),
                    LoopStep("s2", Step("x", StubAgent([1])), exit_condition=lambda o, c: True),
                    HumanStep("h"),
                ]
            ),
            "'s2' was a Step and is now a LoopStep",
        ),
    ],
)
async def test_a_changed_pipeline_is_refused_naming_the_first_difference(changed, message):
    store = MemoryStore()
    paused = await Runner(shaped("s1", "s2"), store=store, name="p").run("x")
    before = await store.load_run(paused.run_id)
    with pytest.raises(ResumeError, match=message):
        await Runner(changed, store=store, name="p").resume(paused, "ok")
    after = await store.load_run(paused.run_id)
    assert after.version == before.version and after.status is RunStatus.PAUSED


async def test_changed_agent_code_keeps_the_shape_and_resumes():
    store = MemoryStore()
    paused = await Runner(shaped("s1", "s2"), store=store, name="p").run("x")
    other_code = Pipeline(
        [Step("s1", StubAgent(["new"])), Step("s2", StubAgent(["new"])), HumanStep("h")]
    )
    result = await Runner(other_code, store=store, name="p").resume(paused, "ok")
    assert result.success and result.step_history[0].output == "s1"  # replayed, not re-run


# -- values ------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [math.nan, -math.nan])
def test_nan_limits_and_reservations_are_configuration_errors(bad):
    with pytest.raises(ConfigurationError, match="finite"):
        UsageLimits(total_cost_usd_limit=bad)
    with pytest.raises(ConfigurationError, match="finite"):
        Usage(cost_usd=bad)
    with pytest.raises(ConfigurationError, match="timeout_s"):
        Step("s", StubAgent([1]), timeout_s=bad)


def test_infinite_limits_mean_no_limit():
    assert UsageLimits(total_cost_usd_limit=math.inf).total_cost_usd_limit is None
    assert UsageLimits(total_tokens_limit=math.inf).unlimited  # type: ignore[arg-type]


async def test_nan_reported_usage_fails_the_step_clearly():
    class Output:
        cost_usd = math.nan
        token_counts = 3

    runner = Runner(Step("s", StubAgent([Output()]), max_retries=3))
    result = await runner.run("x", run_id="nan")
    step = result.step_history[0]
    assert not step.success and step.attempts == 1  # not retried: it would report NaN again
    assert "unusable usage" in step.feedback and "nan" in step.feedback
    assert result.total_cost_usd == 0.0


@pytest.mark.parametrize("bad", [math.nan, math.inf])
async def test_non_finite_outputs_fail_the_run_naming_the_path(tmp_path, bad):
    runner = Runner(
        Step("s", StubAgent([{"score": [1.0, bad]}])), store=SqliteStore(tmp_path / "d")
    )
    with pytest.raises(Exception, match=r"\$\.output\['score'\]\[1\] \((nan|inf)\)"):
        await runner.run("x", run_id="odd")


@attrs.define
class Keyed(PipelineContext):
    by_id: dict[int, str] = attrs.field(factory=dict)
    by_status: dict[RunStatus, int] = attrs.field(factory=dict)


@pytest.mark.parametrize("store_kind", ["memory", "sqlite"])
async def test_int_and_enum_keyed_context_dicts_round_trip(tmp_path, store_kind):
    store = MemoryStore() if store_kind == "memory" else SqliteStore(tmp_path / "k.db")

    async def write(data, context: Keyed):
        context.by_id[7] = "seven"
        context.by_status[RunStatus.PAUSED] = 2
        return data

    runner = Runner(Step("w", write) >> HumanStep("h"), store=store, context_type=Keyed)
    paused = await runner.run("x")
    loaded = await store.load_run(paused.run_id)
    assert loaded.context.by_id == {7: "seven"} and loaded.context.by_status == {
        RunStatus.PAUSED: 2
    }
    done = await runner.resume(paused, "ok")
    assert done.final_context.by_id == {7: "seven"}


@pytest.mark.parametrize("store_kind", ["memory", "sqlite"])
@pytest.mark.parametrize("container", ["loop", "conditional", "parallel"])
async def test_pipelines_nested_300_deep_pause_store_and_resume(tmp_path, store_kind, container):
    """300 containers hold the person's step at the bottom: more levels than json, the
    result tree or the journal's step tree may recurse through (a parallel step is four
    JSON levels of the stored shape and two levels of records)."""
    store = MemoryStore() if store_kind == "memory" else SqliteStore(tmp_path / "deep.db")
    body: Pipeline | LoopStep | ConditionalStep | ParallelStep
    body = Pipeline([Step("leaf", StubAgent(["x"] * 2)), HumanStep("h")])
    for depth in range(300):
        name = f"n{depth}"
        if container == "loop":
            body = LoopStep(name, body, exit_condition=lambda o, c: True, max_loops=1)
        elif container == "conditional":
            body = ConditionalStep(name, condition=lambda d, c: "go", branches={"go": body})
        else:
            body = ParallelStep(name, {"only": body})
    runner = Runner(Pipeline([body, Step("after", StubAgent(["done"]))]), store=store)
    paused = await runner.run("x")
    assert paused.status is RunStatus.PAUSED
    if store_kind == "sqlite":  # a new process would open the file afresh
        store = SqliteStore(tmp_path / "deep.db")
        runner = attrs.evolve(runner, store=store)
    stored = await store.load_run(paused.run_id)
    # (compared by the iterative fingerprint: == on the nested lists would recurse)
    assert fingerprint(stored.shape) == fingerprint(runner.plan.shape)
    assert len(stored.steps) == 1 and stored.steps[0].metadata.get("paused")
    done = await runner.resume(paused.run_id, "ok")
    assert done.success and done.output == "done"
