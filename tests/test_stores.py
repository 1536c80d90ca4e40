"""State stores: MemoryStore and SqliteStore behave the same; SQLite is durable and strict."""

from __future__ import annotations

import json
from decimal import Decimal
from functools import partial

import pytest
import trio

from flujo_trio import (
    AgentResult,
    HumanStep,
    MemoryStore,
    ParallelStep,
    ResumeError,
    Runner,
    RunStatus,
    SerializationError,
    SqliteCache,
    SqliteStore,
    Step,
    StoreError,
    Usage,
)
from flujo_trio.testing import StubAgent
from tests.helpers import raw_sqlite
from tests.models import Color, Priority, Profile, RichContext


async def set_profile(data, context):
    context.profile = Profile("ada", Color.GREEN, tags={"x"})
    context.priority = Priority.HIGH
    context.amount = Decimal("0.10")
    return AgentResult({"answer": data, "items": (1, 2)}, Usage(0.25, 7))


def pipeline():
    return Step("profile", set_profile) >> HumanStep("review") >> Step("done", StubAgent(["ok"]))


@pytest.fixture(params=["memory", "sqlite"])
def store(request, tmp_path):
    if request.param == "memory":
        return MemoryStore()
    return SqliteStore(tmp_path / "runs.db")


async def test_paused_run_is_saved_listed_and_resumed(store):
    runner = Runner(pipeline(), store=store, context_type=RichContext)
    paused = await runner.run("q")
    state = await store.load_run(paused.run_id)
    assert state.status is RunStatus.PAUSED and state.pipeline_name == "profile"
    assert isinstance(state.context, RichContext)
    assert state.context.profile == Profile("ada", Color.GREEN, tags={"x"})
    assert state.context.priority is Priority.HIGH and state.context.amount == Decimal("0.10")
    assert state.steps[0].output == {"answer": "q", "items": (1, 2)}
    [summary] = await store.list_runs()
    assert summary.run_id == paused.run_id and summary.status is RunStatus.PAUSED
    assert summary.total_cost_usd == 0.25 and summary.pipeline_name == "profile"
    assert summary.created_at <= summary.updated_at
    assert await store.list_runs(RunStatus.COMPLETED) == []
    fresh = Runner(pipeline(), store=store, context_type=RichContext)  # e.g. a new process
    result = await fresh.resume(paused.run_id, "looks good")
    assert result.success and result.total_cost_usd == 0.25
    assert result.final_context.profile.color is Color.GREEN
    assert (await store.list_runs(RunStatus.COMPLETED))[0].run_id == paused.run_id
    assert await store.delete_run(paused.run_id) is True
    assert await store.delete_run(paused.run_id) is False
    assert await store.load_run(paused.run_id) is None


async def test_caller_cancel_is_stored_as_cancelled_and_resumable(store):
    calls = []
    started = trio.Event()

    async def slow(data):
        calls.append(data)
        if len(calls) == 1:
            started.set()
            await trio.sleep_forever()
        return "slow done"

    runner = Runner(Step("first", StubAgent(["one"])) >> Step("slow", slow), store=store)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(partial(runner.run, "x", run_id="r1"))
        await started.wait()
        nursery.cancel_scope.cancel(reason="the caller gives up")
    state = await store.load_run("r1")
    assert state.status is RunStatus.CANCELLED
    assert [s.name for s in state.steps] == ["first", "slow"]
    result = await runner.resume("r1")
    assert result.success and result.output == "slow done" and calls == ["one", "one"]
    assert [s.name for s in result.step_history] == ["first", "slow"]


async def test_run_id_that_exists_is_refused(store):
    runner = Runner(Step("a", StubAgent(["x", "y"])), store=store)
    await runner.run("in", run_id="same")
    from flujo_trio import ConfigurationError

    with pytest.raises(ConfigurationError, match="already exists"):
        await runner.run("in", run_id="same")


async def test_resume_with_another_pipeline_is_refused(store):
    await Runner(HumanStep("h"), store=store).run("x", run_id="r")
    with pytest.raises(ResumeError, match="belongs to pipeline 'h'"):
        await Runner(Step("other", StubAgent([1])), store=store).resume("r", "answer")


async def test_sqlite_rows_are_plain_json_with_enums_by_value(tmp_path):
    path = tmp_path / "runs.db"
    runner = Runner(pipeline(), store=SqliteStore(path), context_type=RichContext)
    paused = await runner.run("q")
    with raw_sqlite(path) as db:
        status, text = db.execute(
            "SELECT status, context FROM runs WHERE run_id = ?", (paused.run_id,)
        ).fetchone()
        entries = [
            json.loads(row[0])
            for row in db.execute("SELECT entry FROM journal WHERE run_id = ?", (paused.run_id,))
        ]
    context = json.loads(text)
    assert status == "paused"
    assert context["priority"] == 2 and context["profile"]["color"] == "green"
    assert context["__type__"] == "tests.models.RichContext"
    assert [entry["status"] for entry in entries if "status" in entry][-1] == "paused"


async def test_unserializable_value_fails_the_run_and_keeps_the_last_checkpoint(tmp_path):
    store = SqliteStore(tmp_path / "runs.db")

    async def bad(data):
        return object()

    runner = Runner(Step("good", StubAgent(["fine"])) >> Step("bad", bad), store=store)
    with pytest.raises(SerializationError, match=r"run 'r1'.*'bad'.*\$\.output \(object\)"):
        await runner.run("x", run_id="r1")
    state = await store.load_run("r1")
    good, bad = state.steps  # the bad output itself is not kept
    assert state.status is RunStatus.FAILED and good.success and good.output == "fine"
    assert bad.name == "bad" and not bad.success and bad.output is None
    with pytest.raises(ResumeError, match="failed"):
        await runner.resume("r1")


async def test_corrupted_row_is_a_clear_error_and_other_runs_still_load(tmp_path):
    path = tmp_path / "runs.db"
    store = SqliteStore(path)
    runner = Runner(HumanStep("h"), store=store, context_type=RichContext)
    await runner.run("x", run_id="good")
    await runner.run("x", run_id="bad")
    await runner.run("x", run_id="garbage")
    with raw_sqlite(path) as db:
        (text,) = db.execute("SELECT context FROM runs WHERE run_id = 'bad'").fetchone()
        data = json.loads(text)
        data["color"] = "ultraviolet"
        db.execute("UPDATE runs SET context = ? WHERE run_id = 'bad'", (json.dumps(data),))
        db.execute("UPDATE runs SET context = '{not json' WHERE run_id = 'garbage'")
    with pytest.raises(SerializationError, match=r"context of run 'bad'.*\$\.color"):
        await store.load_run("bad")
    with pytest.raises(SerializationError, match=r"run 'garbage'.*JSON is invalid"):
        await store.load_run("garbage")
    assert (await store.load_run("good")).status is RunStatus.PAUSED
    assert len(await store.list_runs()) == 3


async def test_two_concurrent_runs_share_one_store(tmp_path):
    store = SqliteStore(tmp_path / "runs.db")

    async def work(data):
        await trio.lowlevel.checkpoint()  # let the two runs interleave
        return AgentResult(f"{data}!", Usage(0.1))

    runner = Runner(Step("a", work) >> Step("b", work), store=store)
    results = {}

    async def one(name):
        results[name] = await runner.run(name, run_id=name)

    async with trio.open_nursery() as nursery:
        for name in ("x", "y"):
            nursery.start_soon(one, name)
    assert results["x"].output == "x!!" and results["y"].output == "y!!"
    states = {run.run_id: run for run in await store.list_runs()}
    assert set(states) == {"x", "y"}
    assert all(s.status is RunStatus.COMPLETED for s in states.values())


async def test_newer_schema_and_foreign_databases_are_refused(tmp_path):
    newer = tmp_path / "newer.db"
    await SqliteStore(newer).list_runs()
    with raw_sqlite(newer) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="newer flujo-trio"):
        await SqliteStore(newer).list_runs()
    foreign = tmp_path / "foreign.db"
    with raw_sqlite(foreign) as db:
        db.execute("CREATE TABLE people (name TEXT)")
    with pytest.raises(StoreError, match="not a flujo-trio store"):
        await SqliteStore(foreign).list_runs()
    text = tmp_path / "notes.txt"
    text.write_text("hello, not a database" * 100)
    with pytest.raises(StoreError, match="not a flujo-trio SQLite store"):
        await SqliteStore(text).list_runs()


async def test_parallel_branch_state_survives_a_store_round_trip(tmp_path):
    store = SqliteStore(tmp_path / "runs.db")
    fast = StubAgent([AgentResult("fast", Usage(0.5))])
    step = ParallelStep("fan", {"fast": Step("f", fast), "ask": HumanStep("q", message="ok?")})
    runner = Runner(step, store=store, context_type=RichContext)
    paused = await runner.run("x")
    result = await Runner(step, store=store, context_type=RichContext).resume(paused, "yes")
    assert result.output == {"fast": "fast", "ask": "yes"}
    assert fast.call_count == 1 and result.total_cost_usd == 0.5


async def test_sqlite_cache_survives_a_new_cache_object(tmp_path):
    path = tmp_path / "cache.db"
    agent = StubAgent([AgentResult({"v": (1, Color.RED)}, Usage(0.2, 3)), "second"])
    first = await Runner(Step("s", agent, cache=SqliteCache(path))).run("q")
    second = await Runner(Step("s", agent, cache=SqliteCache(path))).run("q")
    assert agent.call_count == 1
    hit = second.step_history[0]
    assert hit.metadata["cache_hit"] is True and hit.output == first.output == {"v": (1, Color.RED)}
    assert hit.metadata["cached_usage"] == Usage(0.2, 3) and second.total_cost_usd == 0


async def test_sqlite_cache_ttl_and_bounds(tmp_path):
    now = [1000.0]
    cache = SqliteCache(tmp_path / "c.db", ttl_s=10, max_entries=2, clock=lambda: now[0])
    agent = StubAgent(list(range(10)))
    step = Step("s", agent, cache=cache)
    assert (await Runner(step).run("a")).output == 0
    now[0] += 11
    assert (await Runner(step).run("a")).output == 1
    now[0] += 1
    await Runner(step).run("b")
    now[0] += 1
    await Runner(step).run("c")
    assert (await Runner(step).run("a")).output == 4
    with pytest.raises(Exception, match="ttl_s"):
        SqliteCache(tmp_path / "c.db", ttl_s=0)


async def test_memory_store_copies_are_real_or_the_run_fails_naming_the_value():
    import threading

    async def keep_lock(data, context):
        context.anything = threading.Lock()
        return data

    runner = Runner(Step("a", keep_lock) >> HumanStep("h"), context_type=RichContext)
    with pytest.raises(SerializationError, match=r"context field 'anything'.*_thread\.lock"):
        await runner.run("x", run_id="locked")
    state = await runner.store.load_run("locked")
    assert state.status is RunStatus.FAILED


async def test_resume_after_a_budget_stop_does_not_pay_for_the_breaching_call_again():
    from flujo_trio import UsageLimitExceededError, UsageLimits

    calls = []

    def agent(name, cost):
        async def run(data):
            calls.append(name)
            return AgentResult(f"{data}>{name}", Usage(cost))

        return run

    pipeline = (
        Step("a", agent("a", 0.5)) >> Step("b", agent("b", 0.8)) >> Step("c", agent("c", 0.1))
    )
    store = MemoryStore()
    with pytest.raises(UsageLimitExceededError) as info:
        await Runner(pipeline, store=store, limits=UsageLimits(1.0)).run("x", run_id="r")
    assert info.value.result.total_cost_usd == pytest.approx(1.3)
    result = await Runner(pipeline, store=store, limits=UsageLimits(5.0)).resume("r")
    assert result.success and result.output == "x>a>b>c"
    assert calls == ["a", "b", "c"]
    assert result.total_cost_usd == pytest.approx(1.4)
