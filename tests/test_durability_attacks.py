"""Attacks on the durability promises: tampered rows, crashes in odd places, stores misused.

Each test here once failed (or guards a promise no other test pinned down): a tampered
row must be refused with a clear error before a resume claims the run, leaving the
stored rows byte-identical; a crash anywhere must resume without redoing finished calls.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from flujo_trio import (
    AgentResult,
    HumanStep,
    MemoryStore,
    PipelineContext,
    ResumeError,
    Runner,
    RunStatus,
    SerializationError,
    SqliteStore,
    Step,
    StoreError,
    Usage,
)
from flujo_trio.state.journal import CallRecord, CallStatus, SavedStep, StepStatus
from tests import crash_nested
from tests import test_store_contract as contract
from tests.helpers import ROOT, child_until
from tests.test_store_contract import Stores, snapshot

# The store fixtures of the store contract (memory, SQLite, PostgreSQL; raw row access).
kind, stores, store = contract.kind, contract.stores, contract.store


def paying_pipeline(calls: list[str]) -> Any:
    def agent(name: str):
        async def run(data: Any) -> AgentResult[str]:
            calls.append(name)
            await trio.lowlevel.checkpoint()
            return AgentResult(f"{data}>{name}", Usage(0.1, 1))

        return run

    return Step("a", agent("a")) >> HumanStep("h") >> Step("b", agent("b"))


async def paused_run(stores: Stores) -> None:
    paused = await Runner(paying_pipeline([]), store=stores()).run("x", run_id="r1")
    assert paused.status is RunStatus.PAUSED


# -- tampered totals in the header row --------------------------------------------------------


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("total_cost_usd", "NaN"),
        ("total_cost_usd", "Infinity"),
        ("total_cost_usd", "-5"),
        ("total_tokens", -3),
        ("total_requests", -1),
    ],
)
async def test_tampered_totals_are_refused_before_the_run_is_claimed(stores, column, value):
    await paused_run(stores)
    stores.raw(f"UPDATE {{runs}} SET {column} = ? WHERE run_id = ?", (value, "r1"))
    before = await snapshot(stores)
    calls: list[str] = []
    with pytest.raises(SerializationError, match=rf"run 'r1'.*damaged.*{column}"):
        await Runner(paying_pipeline(calls), store=stores()).resume("r1", "ok")
    assert calls == []
    # not claimed: still paused, no owner (repr: a stored NaN is not equal to itself)
    assert repr(await snapshot(stores)) == repr(before)
    with pytest.raises(SerializationError, match=rf"run 'r1'.*damaged.*{column}"):
        await stores().load_run("r1")
    [summary] = await stores().list_runs()
    assert summary.error is not None and column in summary.error


# -- tampered journal entries -----------------------------------------------------------------


@attrs.define
class Tally(PipelineContext):
    seen: list[str] = attrs.field(factory=list)
    counts: dict[str, int] = attrs.field(factory=dict)


def tally_pipeline(calls: list[str]) -> Any:
    async def first(data: Any, context: Tally) -> AgentResult[str]:
        calls.append("a")
        context.seen.append("a")
        context.counts["a"] = 1
        return AgentResult(f"{data}>a", Usage(0.1, 1))

    async def last(data: Any) -> str:
        calls.append("b")
        return f"{data}>b"

    return Step("a", first) >> HumanStep("h") >> Step("b", last)


def tamper_saved_step(stores: Stores, edit: Any) -> None:
    """Rewrite the saved step 'a' of run r1 in the database with ``edit(entry)``."""
    rows = stores.raw(
        "SELECT seq, entry FROM {journal} WHERE run_id = ? AND kind = ?", ("r1", "step")
    )
    [(seq, text)] = [(seq, text) for seq, text in rows if json.loads(text)["address"] == ["a"]]
    data = json.loads(text)
    edit(data)
    stores.raw(
        "UPDATE {journal} SET entry = ? WHERE run_id = ? AND seq = ?", (json.dumps(data), "r1", seq)
    )


def set_change(index: int, **values: Any) -> Any:
    return lambda data: data["changes"][index].update(values)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(cost_usd="NaN"), "expected a finite number, got Decimal('NaN')"),
        (lambda d: d.update(cost_usd="-1"), "cost_usd must be a finite amount"),
        (lambda d: d.update(tokens=-5), "tokens must be >= 0"),
        (lambda d: d.update(attempts=-1), "attempts must be >= 0"),
        (set_change(0, op="explode"), "op must be one of"),
        (set_change(0, field="__class__"), "field '__class__', which Tally does not record"),
        (set_change(0, field="run_id"), "field 'run_id', which Tally does not record"),
        (set_change(0, field="nope"), "field 'nope', which Tally does not record"),
        (set_change(0, value="not a list"), "appends str to field 'seen'"),
        (set_change(0, op="update"), "update of field 'seen' is not a dict"),
        (set_change(1, op="append", value=[1]), "appends field 'counts', which holds dict"),
    ],
)
async def test_a_tampered_journal_entry_is_refused_before_the_run_is_claimed(stores, edit, message):
    paused = await Runner(tally_pipeline([]), store=stores(), context_type=Tally).run(
        "x", run_id="r1"
    )
    assert paused.status is RunStatus.PAUSED
    tamper_saved_step(stores, edit)
    before = await snapshot(stores)
    calls: list[str] = []
    runner = Runner(tally_pipeline(calls), store=stores(), context_type=Tally)
    with pytest.raises(SerializationError, match=r"'a'|entry \d+ of run 'r1'") as raised:
        await runner.resume("r1", "ok")
    assert message in str(raised.value) and "r1" in str(raised.value)
    assert calls == []
    assert await snapshot(stores) == before


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
@pytest.mark.parametrize(
    ("statement", "message"),
    [
        # The saved step 'a': without it a resume would run (and pay for) 'a' again.
        (
            "DELETE FROM {journal} WHERE run_id = 'r1' AND seq = "
            "(SELECT min(seq) FROM {journal} WHERE run_id = 'r1' AND kind = 'step')",
            r"entry \d is missing",
        ),
        ("DELETE FROM {journal} WHERE run_id = 'r1' AND seq = 0", "entry 0 is missing"),
        (
            "DELETE FROM {journal} WHERE run_id = 'r1' AND seq = "
            "(SELECT max(seq) FROM {journal} WHERE run_id = 'r1')",
            "holds 3 entries where its header counts 4",
        ),
        (
            "INSERT INTO {journal} (run_id, seq, kind, address, entry) SELECT run_id, 99, kind, "
            "address, entry FROM {journal} WHERE run_id = 'r1' AND seq = 2",
            "holds 5 entries where its header counts 4",
        ),
    ],
    ids=["step-removed", "first-removed", "last-removed", "duplicated"],
)
async def test_a_journal_entry_removed_or_added_is_refused(stores, statement, message):
    await paused_run(stores)
    assert len(stores.raw("SELECT seq FROM {journal} WHERE run_id = ?", ("r1",))) == 4
    stores.raw(statement, ())
    before = await snapshot(stores)
    calls: list[str] = []
    with pytest.raises(SerializationError, match=rf"run 'r1'.*journal was changed.*{message}"):
        await Runner(paying_pipeline(calls), store=stores()).resume("r1", "ok")
    assert calls == []
    assert await snapshot(stores) == before
    with pytest.raises(SerializationError, match=message):
        await stores().load_run("r1")


# -- stores misused ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_a_closed_store_refuses_to_be_used_instead_of_reopening(stores):
    await paused_run(stores)
    store = stores()
    async with store:
        assert await store.load_run("r1") is not None
    await store.aclose()  # closing twice is fine
    calls: list[str] = []
    for use in (
        lambda: store.load_run("r1"),
        lambda: store.list_runs(),
        lambda: Runner(paying_pipeline(calls), store=store).resume("r1", "ok"),
        lambda: Runner(paying_pipeline(calls), store=store).run("x", run_id="r2"),
    ):
        with pytest.raises(StoreError, match="is closed: open a new store"):
            await use()
    assert calls == []
    assert (await stores().load_run("r1")).status is RunStatus.PAUSED
    assert await stores().load_run("r2") is None


async def test_a_directory_as_the_sqlite_path_says_so(tmp_path):
    calls: list[str] = []
    with pytest.raises(StoreError, match=rf"{tmp_path}.*it is a directory"):
        await Runner(paying_pipeline(calls), store=SqliteStore(tmp_path)).run("x")
    assert calls == [] and list(tmp_path.iterdir()) == []


# -- SIGKILL deep inside nested composites, and around a human step ----------------------------


async def child(*args: str, expect: str) -> None:
    await child_until("tests.crash_nested", *args, expect=expect)


async def child_output(*args: str) -> str:
    """Run ``tests.crash_nested`` with ``args`` to its end (exit status 0): its output."""
    done = await trio.run_process(
        [sys.executable, "-m", "tests.crash_nested", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_stdout=True,
        capture_stderr=True,
    )
    return done.stdout.decode().strip()


def done_labels(log: Path, since: int) -> Counter[str]:
    entries = [line.split() for line in log.read_text().splitlines()[since:]]
    return Counter(label for kind, label in entries if kind == "done")


def open_store(db: Path | str) -> Any:
    return crash_nested.runner("nested", db, Path(os.devnull), None).store


async def stored_progress(db: Path | str, run_id: str) -> tuple[set[str], int]:
    """Labels of the agent steps the store holds as finished, and how many calls with a
    reservation it holds as started and never finished (lost in flight)."""
    async with open_store(db) as store:
        state = await store.load_run(run_id)
    assert state is not None
    finished = {
        str(entry.output)
        for entry in state.journal
        if isinstance(entry, SavedStep)
        and entry.status is StepStatus.OK
        and entry.address[-1] in crash_nested.AGENTS
    }
    latest: dict[Any, CallRecord] = {}
    for entry in state.journal:
        if isinstance(entry, CallRecord):
            latest[(entry.address, entry.call, entry.request)] = entry
    lost = sum(
        1
        for record in latest.values()
        if record.status is CallStatus.STARTED and record.reserved and record.reserved.cost_usd
    )
    return finished, lost


async def uninterrupted(kind: str, tmp_path: Path, *answer: str) -> tuple[Any, int]:
    """An uninterrupted run of the same pipeline, and how many calls it paid for."""
    log = tmp_path / "uninterrupted.log"
    log.unlink(missing_ok=True)
    runner = Runner(
        crash_nested.pipeline(kind, log, None),
        store=MemoryStore(),
        context_type=crash_nested.Seen,
        name=kind,
    )
    result = await runner.run("in")
    if answer:
        result = await runner.resume(result, *answer)
    assert result.success
    return result, sum(done_labels(log, 0).values())


async def resume_after_crashes(
    kind: str, tmp_path: Path, phases: list[tuple[str, ...]], answer: tuple[str, ...] = ()
) -> Any:
    """Run each phase in a child (killed at its hang point, or paused), then resume here.

    Checks after every crash: no call the store held as finished runs again; at the end
    every call's context change is there exactly once, the output is an uninterrupted
    run's, and the stored spend is every call once plus the reservation of each call
    lost in flight."""
    db, log = tmp_path / "runs.db", tmp_path / "calls.log"
    log.touch()
    lost_total = 0
    for number, (mode, hang, expect, *given) in enumerate(phases):
        if number:
            finished, lost = await stored_progress(db, "r")
            lost_total += lost
        before = len(log.read_text().splitlines())
        await child(kind, str(db), str(log), "r", hang, mode, *given, expect=expect)
        if number:
            assert not set(done_labels(log, before)) & finished, (finished, log.read_text())
    finished, lost = await stored_progress(db, "r")
    lost_total += lost
    before = len(log.read_text().splitlines())
    result = await crash_nested.runner(kind, db, log, None).resume("r", *answer)
    assert result.success, result.step_history
    assert not set(done_labels(log, before)) & finished
    expected, paid = await uninterrupted(kind, tmp_path, *(["yes"] if kind == "human" else []))
    assert result.output == expected.output
    assert result.final_context.counts == expected.final_context.counts
    assert set(result.final_context.counts.values()) == {1}
    async with SqliteStore(db) as store:
        stored = await store.load_run("r")
    assert stored.status is RunStatus.COMPLETED
    spend = Decimal(str(crash_nested.COST)) * paid
    spend += Decimal(str(crash_nested.RESERVE.cost_usd)) * lost_total
    assert stored.spent.cost_usd == spend == Decimal(repr(result.total_cost_usd))
    return result


@pytest.mark.parametrize(
    "hangs",
    [
        ["work@i1.1"],  # conditional > loop (1) > parallel > map (item 1) > step
        ["side@i2"],  # the other branch, second iteration
        ["work@i2.0"],
        ["after"],  # after every container finished
        ["work@i1.0", "work@i2.1"],  # killed again while resuming
        ["side@i1", "side@i2", "after"],
    ],
)
async def test_sigkill_four_containers_deep_then_resume(tmp_path, hangs):
    phases = [("run" if n == 0 else "resume", hang, "READY") for n, hang in enumerate(hangs)]
    await resume_after_crashes("nested", tmp_path, phases)


@pytest.mark.parametrize("hang", ["flaky#2", "flaky2#1", "flaky2#2", "after"])
async def test_sigkill_between_retries_does_not_repeat_a_failed_attempt(tmp_path, hang):
    await resume_after_crashes("retry", tmp_path, [("run", hang, "READY")])
    log = (tmp_path / "calls.log").read_text().splitlines()
    done = Counter(line.split()[1] for line in log if line.startswith("done"))
    # A failed attempt is stored before the next one starts: it is not made again, and
    # the attempt after it gets its feedback (so it is the second attempt, not a first).
    assert done["flaky#1"] == 1, log
    if hang in ("flaky2#2", "after"):
        assert done["flaky2#1"] == 1


@pytest.mark.parametrize("hang", ["y", "after"])
async def test_sigkill_while_resuming_a_paused_run_keeps_its_answer_once(tmp_path, hang):
    phases = [("run", "-", "PAUSED"), ("resume", hang, "READY", "yes")]
    result = await resume_after_crashes("human", tmp_path, phases)
    assert [i.human_response for i in result.final_context.hitl_history] == ["yes"]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_two_processes_resuming_one_crashed_nested_run_exactly_one_proceeds(
    tmp_path, request, backend
):
    db = (
        str(tmp_path / "runs.db") if backend == "sqlite" else request.getfixturevalue("pg_database")
    )
    log = tmp_path / "calls.log"
    log.touch()
    await child("nested", db, str(log), "r", "work@i1.1", "run", expect="READY")
    finished, _ = await stored_progress(db, "r")
    crashed = len(log.read_text().splitlines())
    outputs: list[str] = []

    async def resume() -> None:
        outputs.append(await child_output("nested", db, str(log), "r", "-", "resume"))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(resume)
        nursery.start_soon(resume)
    assert sorted(output.split()[0] for output in outputs) == ["DONE", "REFUSED"], outputs
    assert "DONE completed" in outputs
    refused = next(output for output in outputs if output.startswith("REFUSED"))
    assert "is being executed by" in refused or "nothing to resume" in refused, refused
    # Every call the store did not hold as finished ran exactly once more; no other call.
    rerun = done_labels(log, crashed)
    everything = set((await uninterrupted("nested", tmp_path))[0].final_context.counts)
    assert set(rerun) == everything - finished and set(rerun.values()) == {1}, rerun
    async with open_store(db) as store:
        stored = await store.load_run("r")
    assert stored.status is RunStatus.COMPLETED
    assert set(stored.context.counts.values()) == {1} and set(stored.context.counts) == everything


# -- a runner that is not the one the run was started with -----------------------------------


@attrs.define
class Other(PipelineContext):
    other: int = 0


@pytest.mark.parametrize("kind", ["memory", "sqlite", "postgres"])
async def test_resuming_with_another_context_type_is_refused_before_the_run_is_claimed(stores):
    calls: list[str] = []
    paused = await Runner(tally_pipeline(calls), store=stores(), context_type=Tally).run(
        "x", run_id="r1"
    )
    assert paused.status is RunStatus.PAUSED
    before = await snapshot(stores)
    calls.clear()
    runner = Runner(tally_pipeline(calls), store=stores(), context_type=Other)
    with pytest.raises(ResumeError, match=r"context of type Tally.*context_type is Other"):
        await runner.resume("r1", "ok")
    # Not run with a context its steps cannot use (and then failed for good): still paused.
    assert calls == [] and await snapshot(stores) == before
    done = await Runner(tally_pipeline(calls), store=stores(), context_type=Tally).resume(
        "r1", "ok"
    )
    assert done.success and calls == ["b"]


@pytest.mark.parametrize("kind", ["sqlite"])  # PostgreSQL columns are timestamptz
@pytest.mark.parametrize("column", ["lease_expires_at", "owner_since", "created_at"])
async def test_a_stored_time_without_timezone_is_damage_not_a_type_error(stores, column):
    await paused_run(stores)
    # As if a crashed owner held it: running, with a lease (then one time made naive).
    stores.raw(
        "UPDATE {runs} SET status = 'running', owner = 'elsewhere:1:1:x', "
        "owner_since = '2030-01-01T12:00:00.000000+00:00', "
        "lease_expires_at = '2030-01-01T12:00:30.000000+00:00' WHERE run_id = 'r1'",
        (),
    )
    stores.raw(f"UPDATE {{runs}} SET {column} = '2030-01-01T12:00:00' WHERE run_id = 'r1'", ())
    before = await snapshot(stores)
    calls: list[str] = []
    with pytest.raises(SerializationError, match=r"run 'r1'.*damaged.*has no timezone"):
        await Runner(paying_pipeline(calls), store=stores()).resume("r1")
    assert calls == [] and await snapshot(stores) == before


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_two_processes_answering_one_paused_run_exactly_one_answer_wins(
    tmp_path, request, backend
):
    db = (
        str(tmp_path / "runs.db") if backend == "sqlite" else request.getfixturevalue("pg_database")
    )
    log = tmp_path / "calls.log"
    log.touch()
    await child("human", db, str(log), "r", "-", "run", expect="PAUSED")
    paused = len(log.read_text().splitlines())
    outputs: dict[str, str] = {}

    async def answer(text: str) -> None:
        outputs[text] = await child_output("human", db, str(log), "r", "-", "resume", text)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(answer, "yes")
        nursery.start_soon(answer, "no")
    [winner] = [text for text, output in outputs.items() if output == "DONE completed"]
    [loser] = [text for text, output in outputs.items() if text != winner]
    assert outputs[loser].startswith("REFUSED"), outputs
    assert done_labels(log, paused) == Counter({"x": 1, "y": 1, "after": 1})
    async with open_store(db) as store:
        stored = await store.load_run("r")
    assert stored.status is RunStatus.COMPLETED
    assert [i.human_response for i in stored.context.hitl_history] == [winner]


# -- values ------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["NaN", "sNaN", "Infinity", "-Infinity"])
async def test_non_finite_decimals_are_not_storable_like_non_finite_floats(tmp_path, bad):
    async def score(data: Any) -> dict[str, Any]:
        return {"score": [Decimal(1), Decimal(bad)]}

    runner = Runner(Step("s", score), store=SqliteStore(tmp_path / "runs.db"))
    with pytest.raises(SerializationError, match=r"\$\.output\['score'\]\[1\] \(Decimal\("):
        await runner.run("x", run_id="odd")
    async with SqliteStore(tmp_path / "runs.db") as store:
        stored = await store.load_run("odd")
    assert stored is not None and stored.status is RunStatus.FAILED


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_a_tampered_non_finite_decimal_is_refused_on_load(stores):
    await paused_run(stores)
    tagged = {"__flujo_type__": "decimal", "value": "NaN"}
    stores.raw("UPDATE {runs} SET input = ? WHERE run_id = ?", (json.dumps(tagged), "r1"))
    before = await snapshot(stores)
    with pytest.raises(SerializationError, match=r"input of run 'r1'.*finite"):
        await Runner(paying_pipeline([]), store=stores()).resume("r1", "ok")
    assert await snapshot(stores) == before


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
@pytest.mark.parametrize("shape", ["null", "{}", '[{"kind":"step","name":"b_renamed"}]'])
async def test_a_tampered_shape_does_not_switch_the_shape_check_off(stores, shape):
    await paused_run(stores)
    stores.raw("UPDATE {runs} SET shape = ? WHERE run_id = ?", (shape, "r1"))
    before = await snapshot(stores)
    calls: list[str] = []

    async def other(data: Any) -> str:
        calls.append("other")
        return data

    changed = Step("a", other) >> HumanStep("h") >> Step("b_renamed", other)
    with pytest.raises(SerializationError, match=r"run 'r1'.*shape is damaged"):
        await Runner(changed, store=stores(), name="a").resume("r1", "ok")
    assert calls == [] and await snapshot(stores) == before
