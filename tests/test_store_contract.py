"""One contract, three stores: MemoryStore, SqliteStore and PostgresStore behave the same.

Every test here runs against each store (PostgreSQL: a real server, see conftest.py),
with an injected clock so leases expire without waiting. Tests of tampered rows run on
the two stores that keep rows.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import sys
import threading
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from flujo_trio import (
    AgentResult,
    ConfigurationError,
    HumanStep,
    MapStep,
    MemoryStore,
    ParallelStep,
    PipelineContext,
    PostgresStore,
    ResumeError,
    Runner,
    RunStatus,
    SerializationError,
    SqliteStore,
    Step,
    StoreError,
    Usage,
    UsageLimits,
)
from flujo_trio.state.journal import (
    CallRecord,
    CallStatus,
    Decision,
    FieldChange,
    SavedStep,
    StepStatus,
)
from flujo_trio.state.protocol import Finish
from flujo_trio.state.records import RunState, Spent
from tests.helpers import raw_sqlite
from tests.models import Address, Color, Priority, Profile, RichContext

START = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC)
LEASE_S = 30.0
ELSEWHERE = "other-host:4242:777:0123456789ab"  # an owner on another machine: only its lease counts


class Clock:
    """The wall clock every store of a test reads; tests move it by hand."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


KINDS = ["memory", "sqlite", "postgres"]


Raw = Callable[[str, tuple[Any, ...]], list[tuple[Any, ...]]]


@attrs.define
class Stores:
    """Opens stores of one kind on one set of data (a MemoryStore is its own data).

    ``raw`` runs one SQL statement on the rows directly (``?`` placeholders,
    ``{runs}``/``{journal}`` for the tables), as anyone with access to the database
    could; None for the memory store.
    """

    kind: str
    clock: Clock
    open_one: Callable[[], Any]
    raw: Raw | None
    opened: list[Any] = attrs.field(factory=list)

    def __call__(self) -> Any:
        store = self.open_one()
        self.opened.append(store)
        return store


def _sqlite_raw(path: Path) -> Raw:
    def run(statement: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with raw_sqlite(path) as db:
            return db.execute(statement.format(runs="runs", journal="journal"), params).fetchall()

    return run


def _postgres_raw(dsn: str, schema: str) -> Raw:
    import psycopg
    from psycopg.types.string import TextLoader

    def run(statement: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        tables = {"runs": f'"{schema}".runs', "journal": f'"{schema}".journal'}
        with psycopg.connect(dsn, autocommit=True) as db:
            db.adapters.register_loader("json", TextLoader)  # the stored text, as stored
            cursor = db.execute(statement.replace("?", "%s").format(**tables), params)
            return cursor.fetchall() if cursor.description else []

    return run


def _opener(
    kind: str, request, tmp_path: Path, clock: Clock
) -> tuple[Callable[[], Any], Raw | None]:
    if kind == "memory":
        memory = MemoryStore(lease_s=LEASE_S, clock=clock)
        return (lambda: memory), None
    if kind == "sqlite":
        path = tmp_path / "runs.db"
        return (lambda: SqliteStore(path, lease_s=LEASE_S, clock=clock)), _sqlite_raw(path)
    dsn = request.getfixturevalue("postgres_dsn")
    schema = request.getfixturevalue("pg_schema")
    return (lambda: PostgresStore(dsn, schema=schema, lease_s=LEASE_S, clock=clock)), _postgres_raw(
        dsn, schema
    )


@pytest.fixture(params=KINDS)
def kind(request) -> str:
    return request.param


@pytest.fixture
async def stores(kind, request, tmp_path):
    clock = Clock()
    made = Stores(kind, clock, *_opener(kind, request, tmp_path, clock))
    yield made
    for opened in made.opened:
        await opened.aclose()


@pytest.fixture
def store(stores):
    return stores()


# -- data ------------------------------------------------------------------------------------


def odd_values() -> dict[str, Any]:
    """Values JSON alone would lose or change; each must come back as it went in."""
    return {
        "int_keys": {2: "two", 1: "one"},
        "enum_keys": {Priority.HIGH: 1, Priority.LOW: 2},
        "enum": Color.RED,
        "decimal": Decimal("0.1000"),
        "tuple": (1, (2, "3"), []),
        "set": {1, 2},
        "frozenset": frozenset({"a"}),
        "order": {"b": 1, "a": 2, "c": {"z": 0, "y": 1}},
        "big_float": 1e16,
        "small_float": 1.5e-7,
        "float_one": 1.0,
        "big_int": 2**70,
        "text": "nul\x00 ünï 😀 \u2028 'quote\" \\",
        "when": dt.datetime(2030, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC),
        "date": dt.date(2030, 1, 2),
        "bytes": b"\x00\xff",
        "uuid": uuid.UUID(int=7),
        "attrs": Profile("ada", Color.GREEN, Address("Paris"), tags={"x"}),
        "context": RichContext(
            run_id="inner", priority=Priority.HIGH, anything=PipelineContext(run_id="deepest")
        ),
    }


def journal_entries() -> list[Any]:
    """Every kind of entry, with every optional field used somewhere."""
    odd = odd_values()
    return [
        CallRecord(("a",), (0,), 1, CallStatus.STARTED, reserved=Usage(0.5, 10)),
        CallRecord(
            ("a",),
            (0,),
            1,
            CallStatus.SUCCEEDED,
            reserved=Usage(0.5, 10),
            usage=Usage(0.1, 3),
            output=odd,
        ),
        SavedStep(
            ("a",),
            (0,),
            "agent",
            StepStatus.OK,
            output=odd,
            attempts=1,
            cost_usd=Decimal("0.1"),
            tokens=3,
            latency_s=0.25,
            metadata={"k": (1, 2), "flag": True},
            changes=[
                FieldChange("counts", "update", {"x": 1}, removed=["gone"]),
                FieldChange("ids", "append", [3]),
                FieldChange("anything", "set", odd["context"]),
            ],
        ),
        Decision(("cond",), "branch-b"),
        Decision(("cond", "inner"), Color.GREEN),
        CallRecord(
            ("loop", 2, "draft"),
            (1, 2, 0),
            1,
            CallStatus.FAILED,
            usage=Usage(0.2),
            error="boom",
            retryable=False,
        ),
        CallRecord(
            ("loop", 2, "draft"),
            (1, 2, 0),
            2,
            CallStatus.INTERRUPTED,
            reserved=Usage(0.3),
            usage=Usage(0.3),
            estimated=True,
            request=1,
        ),
        SavedStep(
            ("map", "map[7]", "classify"), (2, 7, 0), "agent", StepStatus.FAILED, denied=True
        ),
        SavedStep(("h",), (3,), "human", StepStatus.PAUSED, pause_message="ok?", feedback="why"),
    ]


def new_state(run_id: str = "r1", *, owner: str | None = None, **changes: Any) -> RunState:
    context = RichContext(run_id=run_id, color=Color.GREEN, counts={"a": 1}, amount=Decimal("2.50"))
    state = RunState(
        run_id=run_id,
        pipeline_name="pipe",
        status=RunStatus.RUNNING,
        input={"question": "why?", "n": (1, 2)},
        context=context,
        initial_context=RichContext(run_id=run_id),
        limits=UsageLimits(1.5, 100, 7),
        origin="pkg.module:runner",
        shape=["pipeline", [["agent", "a"], ["human", "h"]]],
        fingerprint="fp-1",
        owner=owner,
    )
    return attrs.evolve(state, **changes)


async def snapshot(stores: Stores, run_id: str = "r1") -> Any:
    """Everything stored about a run: the rows as stored (SQL), or the loaded state."""
    if stores.raw is None:
        state = await stores.opened[0].load_run(run_id)
        return None if state is None else attrs.evolve(state)
    return (
        stores.raw("SELECT * FROM {runs} WHERE run_id = ?", (run_id,)),
        stores.raw("SELECT * FROM {journal} WHERE run_id = ? ORDER BY seq", (run_id,)),
    )


async def dead_owner() -> str:
    """The owner id of a process of this host that has exited (as a SIGKILLed worker's)."""
    done = await trio.run_process(
        [sys.executable, "-c", "from flujo_trio.state.owner import new_owner; print(new_owner())"],
        capture_stdout=True,
    )
    return done.stdout.decode().strip()


# -- runs, summaries, delete -----------------------------------------------------------------


async def test_a_created_run_loads_back_whole(stores, store):
    state = new_state(owner=ELSEWHERE)
    await store.create_run(state)
    loaded = await stores().load_run("r1")  # another store object: read back, not cached
    assert loaded.pipeline_name == "pipe" and loaded.status is RunStatus.RUNNING
    assert loaded.input == {"question": "why?", "n": (1, 2)}
    assert isinstance(loaded.context, RichContext) and loaded.context == state.context
    assert loaded.initial_context == RichContext(run_id="r1")
    assert loaded.limits == UsageLimits(1.5, 100, 7)
    assert loaded.origin == "pkg.module:runner" and loaded.fingerprint == "fp-1"
    assert loaded.shape == ["pipeline", [["agent", "a"], ["human", "h"]]]
    assert loaded.created_at == loaded.updated_at == START
    assert loaded.owner == ELSEWHERE and loaded.owner_since == START
    assert loaded.lease_expires_at == START + dt.timedelta(seconds=LEASE_S)
    assert loaded.version == 1 and loaded.journal == () and loaded.spent == Spent()
    assert await store.load_run("nope") is None


async def test_summaries_filters_and_order(stores, store):
    clock = stores.clock
    for run_id, pipeline, status in [
        ("old", "alpha", RunStatus.COMPLETED),
        ("mid", "beta", RunStatus.PAUSED),
        ("new", "alpha", RunStatus.FAILED),
    ]:
        await store.create_run(new_state(run_id, owner="me:1:1:x", pipeline_name=pipeline))
        clock.advance(10)
        spent = Spent(Decimal("0.25"), 5, 2)
        await store.append(run_id, "me:1:1:x", [], spent, finish=Finish(status, None))
        clock.advance(10)
    await store.create_run(new_state("running", owner="me:1:1:y", pipeline_name="beta"))
    listed = await store.list_runs()
    assert [r.run_id for r in listed] == ["running", "new", "mid", "old"]
    assert [r.run_id for r in await store.list_runs(RunStatus.PAUSED)] == ["mid"]
    assert [r.run_id for r in await store.list_runs(pipeline="alpha")] == ["new", "old"]
    assert [r.run_id for r in await store.list_runs(RunStatus.FAILED, pipeline="beta")] == []
    since = START + dt.timedelta(seconds=30)
    assert [r.run_id for r in await store.list_runs(since=since)] == ["running", "new", "mid"]
    assert [r.run_id for r in await store.list_runs(limit=2)] == ["running", "new"]
    assert await store.list_runs(limit=0) == []
    mid = await store.get_summary("mid")
    assert mid == listed[2]
    assert mid.status is RunStatus.PAUSED and mid.pipeline_name == "beta"
    assert mid.total_cost_usd == 0.25 and mid.total_tokens == 5 and mid.total_requests == 2
    assert mid.created_at == START + dt.timedelta(seconds=20)
    assert mid.updated_at == START + dt.timedelta(seconds=30)
    assert mid.origin == "pkg.module:runner" and mid.owner is None and mid.error is None
    assert (await store.get_summary("running")).owner == "me:1:1:y"
    assert await store.get_summary("nope") is None


async def test_delete_takes_the_run_and_its_journal(stores, store):
    await store.create_run(new_state(owner="me:1:1:x"))
    entries = [store.encode_entry(e) for e in journal_entries()[:2]]
    await store.append("r1", "me:1:1:x", entries, Spent(Decimal("0.1"), 3, 1))
    assert await store.delete_run("r1") is True
    assert await store.load_run("r1") is None and await store.get_summary("r1") is None
    assert await store.list_runs() == []
    assert await store.delete_run("r1") is False
    await store.create_run(new_state())  # the id is free again, with an empty journal
    assert (await store.load_run("r1")).journal == ()


# -- the journal ----------------------------------------------------------------------------


async def test_the_journal_round_trips_every_entry_kind_and_odd_value(stores, store):
    owner = "me:1:1:x"
    await store.create_run(new_state(owner=owner))
    entries = journal_entries()
    encoded = [store.encode_entry(entry) for entry in entries]
    await store.append("r1", owner, encoded[:2], Spent(Decimal("0.1"), 3, 1))
    await store.append("r1", owner, [], Spent(Decimal("0.1"), 3, 1))
    await store.append("r1", owner, encoded[2:5], Spent(Decimal("0.1"), 3, 1))
    context = RichContext(run_id="r1", anything=odd_values(), status=RunStatus.PAUSED)
    finish = Finish(RunStatus.PAUSED, context)
    await store.append("r1", owner, encoded[5:], Spent(Decimal("0.60"), 3, 3), finish=finish)

    loaded = await stores().load_run("r1")
    assert list(loaded.journal) == entries
    assert loaded.spent == Spent(Decimal("0.60"), 3, 3) and str(loaded.spent.cost_usd) == "0.60"
    assert loaded.status is RunStatus.PAUSED and loaded.context == context
    for odd in (loaded.journal[1].output, loaded.journal[2].output, loaded.context.anything):
        assert odd == odd_values()
        assert list(odd["order"]) == ["b", "a", "c"] and list(odd["order"]["c"]) == ["z", "y"]
        assert list(odd["int_keys"]) == [2, 1]
        assert type(odd["big_float"]) is float and type(odd["float_one"]) is float
        assert (
            str(odd["decimal"]) == "0.1000" and odd["text"] == "nul\x00 ünï 😀 \u2028 'quote\" \\"
        )
        assert type(odd["context"]) is RichContext
        assert type(odd["context"].anything) is PipelineContext
    changed = loaded.journal[2].changes[2].value
    assert changed == odd_values()["context"]


async def test_entries_are_snapshots_taken_when_encoded(stores, store):
    await store.create_run(new_state(owner="me:1:1:x"))
    live = {"items": [1]}
    encoded = store.encode_entry(Decision(("cond",), live))
    live["items"].append(2)  # the run goes on changing its objects
    await store.append("r1", "me:1:1:x", [encoded], Spent())
    live["items"].append(3)
    assert (await stores().load_run("r1")).journal[0].value == {"items": [1]}


async def test_a_value_that_cannot_be_stored_fails_when_recorded_and_stores_nothing(stores, store):
    await store.create_run(new_state(owner="me:1:1:x"))
    before = await snapshot(stores)
    with pytest.raises(SerializationError, match="lock"):
        store.encode_entry(SavedStep(("a",), (0,), "agent", StepStatus.OK, output=threading.Lock()))
    with pytest.raises(SerializationError):
        await store.append(
            "r1",
            "me:1:1:x",
            [],
            Spent(),
            finish=Finish(RunStatus.COMPLETED, RichContext(anything=threading.Lock())),
        )
    assert await snapshot(stores) == before


@pytest.mark.parametrize(
    "kind",
    ["sqlite", "postgres"],
)
async def test_text_that_is_not_unicode_is_a_serialization_error(stores, store):
    await store.create_run(new_state(owner="me:1:1:x"))
    before = await snapshot(stores)

    async def store_it() -> None:
        entry = store.encode_entry(Decision(("cond",), "lone \ud800"))
        await store.append("r1", "me:1:1:x", [entry], Spent())

    with pytest.raises(SerializationError, match="not valid Unicode"):
        await store_it()
    assert await snapshot(stores) == before


# -- creating and claiming ------------------------------------------------------------------


async def test_create_is_insert_if_absent(stores, store):
    await store.create_run(new_state(owner="me:1:1:x"))
    before = await snapshot(stores)
    stores.clock.advance(5)
    with pytest.raises(ConfigurationError, match="Run 'r1' already exists"):
        await stores().create_run(new_state(owner="me:1:1:y", pipeline_name="other"))
    assert await snapshot(stores) == before


async def test_two_concurrent_creators_exactly_one_wins(stores):
    first, second = stores(), stores()
    outcomes: dict[str, Any] = {}

    async def create(store: Any, pipeline: str) -> None:
        try:
            await store.create_run(
                new_state("same", owner=f"me:1:1:{pipeline}", pipeline_name=pipeline)
            )
            outcomes[pipeline] = "created"
        except ConfigurationError as error:
            outcomes[pipeline] = error

    async with trio.open_nursery() as nursery:
        nursery.start_soon(create, first, "one")
        nursery.start_soon(create, second, "two")
    winners = [name for name, outcome in outcomes.items() if outcome == "created"]
    assert len(winners) == 1
    loser = next(outcome for outcome in outcomes.values() if outcome != "created")
    assert "already exists" in str(loser)
    stored = await first.load_run("same")
    assert stored.pipeline_name == winners[0] and stored.owner == f"me:1:1:{winners[0]}"


async def test_a_live_owner_is_refused_until_its_lease_expires(stores, store):
    await store.create_run(new_state(owner=ELSEWHERE))
    before = await snapshot(stores)
    claimer = stores()
    stores.clock.advance(LEASE_S - 0.001)
    with pytest.raises(
        ResumeError, match=r"being executed by process 4242 on other-host since 2030-01-01T12:00:00"
    ):
        await claimer.claim_run("r1", "me:1:1:new", expected_version=1, limits=UsageLimits())
    assert await snapshot(stores) == before
    stores.clock.advance(0.001)  # the lease ends now: the owner is presumed gone
    claimed = await claimer.claim_run(
        "r1", "me:1:1:new", expected_version=1, limits=UsageLimits(9.0)
    )
    assert claimed.owner == "me:1:1:new" and claimed.status is RunStatus.RUNNING
    assert claimed.owner_since == stores.clock.now and claimed.version == 2
    assert claimed.lease_expires_at == stores.clock.now + dt.timedelta(seconds=LEASE_S)
    assert claimed.limits == UsageLimits(9.0) and claimed.context == new_state().context
    assert (await store.load_run("r1")).owner == "me:1:1:new"


async def test_a_dead_owner_on_this_host_is_taken_over_at_once(stores, store):
    owner = await dead_owner()
    assert owner.startswith(socket.gethostname() + ":")
    await store.create_run(new_state(owner=owner))
    claimed = await stores().claim_run("r1", "me:1:1:new", expected_version=1, limits=UsageLimits())
    assert claimed.owner == "me:1:1:new"


async def test_the_same_owner_may_claim_again(stores, store):
    await store.create_run(new_state(owner=ELSEWHERE))
    claimed = await store.claim_run("r1", ELSEWHERE, expected_version=None, limits=UsageLimits())
    assert claimed.owner == ELSEWHERE and claimed.version == 2


async def test_a_claim_compares_and_sets_the_version(stores, store):
    await store.create_run(new_state(owner="me:1:1:x"))
    await store.append("r1", "me:1:1:x", [], Spent(), finish=Finish(RunStatus.PAUSED, None))
    before = await snapshot(stores)
    with pytest.raises(ResumeError, match="changed while this resume was starting"):
        await store.claim_run("r1", "me:1:1:y", expected_version=1, limits=UsageLimits())
    with pytest.raises(ResumeError, match="No run 'nope'"):
        await store.claim_run("nope", "me:1:1:y", expected_version=None, limits=UsageLimits())
    assert await snapshot(stores) == before
    claimed = await store.claim_run("r1", "me:1:1:y", expected_version=2, limits=UsageLimits())
    assert claimed.version == 3
    await store.append("r1", "me:1:1:y", [], Spent(), finish=Finish(RunStatus.COMPLETED, None))
    with pytest.raises(ResumeError, match="is completed: there is nothing to resume"):
        await store.claim_run("r1", "me:1:1:z", expected_version=None, limits=UsageLimits())


async def test_concurrent_claims_exactly_one_wins(stores, store):
    claimers = [stores() for _ in range(8)]
    for round_ in range(5):  # races are won by timing: run a few
        run_id = f"r{round_}"
        await store.create_run(new_state(run_id, owner="me:1:1:x"))
        paused = Finish(RunStatus.PAUSED, None)
        await store.append(run_id, "me:1:1:x", [], Spent(), finish=paused)
        version = (await store.load_run(run_id)).version
        won: list[str] = []
        refused: list[ResumeError] = []

        async def claim(
            index: int, run_id: str, version: int, won: list[str], refused: list[ResumeError]
        ) -> None:
            owner = f"me:1:1:claimer{index}"
            try:
                await claimers[index].claim_run(
                    run_id, owner, expected_version=version, limits=UsageLimits()
                )
                won.append(owner)
            except ResumeError as error:
                refused.append(error)

        async with trio.open_nursery() as nursery:
            for index in range(len(claimers)):
                nursery.start_soon(claim, index, run_id, version, won, refused)
        assert len(won) == 1 and len(refused) == len(claimers) - 1
        stored = await store.load_run(run_id)
        assert stored.owner == won[0] and stored.version == version + 1


# -- writing as the owner --------------------------------------------------------------------


async def test_an_owner_that_lost_the_run_writes_nothing(stores, store):
    await store.create_run(new_state(owner=ELSEWHERE))
    old = stores()  # the first owner's store, e.g. a worker that hung for a while
    stores.clock.advance(LEASE_S)
    await store.claim_run("r1", "me:1:1:new", expected_version=1, limits=UsageLimits())
    before = await snapshot(stores)
    entry = old.encode_entry(Decision(("cond",), "late"))
    with pytest.raises(StoreError, match="now owned by process 1 on me while"):
        await old.append("r1", ELSEWHERE, [entry], Spent(Decimal("9"), 9, 9))
    with pytest.raises(StoreError, match="now owned by"):
        await old.append(
            "r1", ELSEWHERE, [entry], Spent(), finish=Finish(RunStatus.COMPLETED, None)
        )
    with pytest.raises(StoreError, match="while this process executed it"):
        await old.renew("r1", ELSEWHERE)
    assert await snapshot(stores) == before
    await store.append("r1", "me:1:1:new", [entry], Spent(Decimal("1"), 1, 1))
    assert (await store.load_run("r1")).journal == (Decision(("cond",), "late"),)
    assert await store.delete_run("r1")
    with pytest.raises(StoreError, match="deleted or taken over"):
        await store.append("r1", "me:1:1:new", [], Spent())
    with pytest.raises(StoreError, match="deleted or taken over"):
        await store.renew("r1", "me:1:1:new")


async def test_renew_and_append_push_the_lease(stores, store):
    await store.create_run(new_state(owner="me:1:1:x"))
    stores.clock.advance(20)
    await store.renew("r1", "me:1:1:x")
    assert (await store.load_run("r1")).lease_expires_at == START + dt.timedelta(
        seconds=20 + LEASE_S
    )
    stores.clock.advance(20)
    await store.append("r1", "me:1:1:x", [], Spent(Decimal("0.5"), 1, 1))
    state = await store.load_run("r1")
    assert state.lease_expires_at == START + dt.timedelta(seconds=40 + LEASE_S)
    assert state.updated_at == START + dt.timedelta(seconds=40) and state.spent.cost_usd == Decimal(
        "0.5"
    )


async def test_finish_sets_the_status_and_gives_the_run_up(stores, store):
    owner = "me:1:1:x"
    await store.create_run(new_state(owner=owner))
    stored_context = (await store.load_run("r1")).context
    await store.append(
        "r1",
        owner,
        [],
        Spent(),
        finish=Finish(RunStatus.RUNNING, RichContext(run_id="r1", counts={"b": 2})),
    )
    running = await store.load_run("r1")
    assert running.status is RunStatus.RUNNING and running.owner == owner
    assert running.context.counts == {"b": 2}
    await store.append("r1", owner, [], Spent(), finish=Finish(RunStatus.PAUSED, stored_context))
    paused = await store.load_run("r1")
    assert paused.status is RunStatus.PAUSED and paused.context == stored_context
    assert paused.owner is None and paused.owner_since is None and paused.lease_expires_at is None
    claimed = await store.claim_run(
        "r1", "me:1:1:y", expected_version=paused.version, limits=UsageLimits()
    )
    assert claimed.owner == "me:1:1:y"
    # A context that could not be stored: the status changes, the stored context stays.
    await store.append(
        "r1", "me:1:1:y", [], Spent(Decimal("1"), 2, 3), finish=Finish(RunStatus.FAILED, None)
    )
    failed = await store.load_run("r1")
    assert failed.status is RunStatus.FAILED and failed.context == stored_context
    assert failed.owner is None and failed.spent == Spent(Decimal("1"), 2, 3)


async def test_save_run_replaces_the_whole_state(stores, store):
    await store.create_run(new_state(owner="me:1:1:x"))
    first = [store.encode_entry(e) for e in journal_entries()[:3]]
    await store.append("r1", "me:1:1:x", first, Spent(Decimal("0.1"), 3, 1))
    stores.clock.advance(60)
    replacement = new_state(
        status=RunStatus.PAUSED,
        journal=tuple(journal_entries()[3:5]),
        spent=Spent(Decimal("2"), 4, 6),
        pipeline_name="renamed",
        created_at=START + dt.timedelta(days=9),
    )
    await store.save_run(replacement)
    saved = await stores().load_run("r1")
    assert saved.journal == tuple(journal_entries()[3:5]) and saved.status is RunStatus.PAUSED
    assert saved.spent == Spent(Decimal("2"), 4, 6) and saved.pipeline_name == "renamed"
    assert saved.created_at == START and saved.updated_at == stores.clock.now
    assert saved.owner is None and saved.version == 3
    await store.save_run(new_state("fresh"))  # also for a run the store does not have
    assert (await store.load_run("fresh")).pipeline_name == "pipe"


async def test_stores_are_async_context_managers(stores):
    async with stores() as store:
        await store.create_run(new_state())
        await store.aclose()  # closing twice is fine
    async with stores() as again:
        assert (await again.load_run("r1")).run_id == "r1"


# -- tampered rows (the stores that keep rows) ---------------------------------------------


@pytest.fixture
def canary_log(tmp_path, monkeypatch):
    path = tmp_path / "canary.log"
    monkeypatch.setenv("FLUJO_TRIO_CANARY_LOG", str(path))
    assert "tests.canary" not in sys.modules
    yield path
    assert "tests.canary" not in sys.modules, "stored data made this process import a module"
    assert not path.exists(), f"stored data reached the canary: {path.read_text()}"


HOSTILE = [
    {"__flujo_type__": "attrs", "class": "tests.canary.Canary", "value": {"value": 1}},
    {"__flujo_type__": "attrs", "class": "subprocess.Popen", "value": {"args": ["true"]}},
    {"__flujo_type__": "enum", "class": "os.system", "value": "true"},
]


async def tamper_entry(stores: Stores, store: Any, output: Any) -> None:
    """A paused run whose one journal entry's output was replaced in the database."""
    owner = "me:1:1:x"
    await store.create_run(new_state(owner=owner))
    step = SavedStep(("a",), (0,), "agent", StepStatus.OK, output="fine")
    paused = Finish(RunStatus.PAUSED, None)
    await store.append("r1", owner, [store.encode_entry(step)], Spent(), finish=paused)
    [(text,)] = stores.raw("SELECT entry FROM {journal} WHERE run_id = ?", ("r1",))
    data = json.loads(text)
    data["output"] = output
    stores.raw("UPDATE {journal} SET entry = ? WHERE run_id = ?", (json.dumps(data), "r1"))


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
@pytest.mark.parametrize("hostile", HOSTILE, ids=["canary", "popen", "os.system"])
async def test_a_tampered_entry_naming_a_class_calls_nothing(stores, store, canary_log, hostile):
    await tamper_entry(stores, store, hostile)
    named = hostile["class"]
    with pytest.raises(
        SerializationError, match=rf"journal entry 0 of run 'r1'.*names class '{named}'.*register"
    ):
        await stores().load_run("r1")
    with pytest.raises(SerializationError, match=named):
        await stores().claim_run("r1", "me:1:1:y", expected_version=None, limits=UsageLimits())


@pytest.mark.parametrize(
    "kind",
    ["sqlite", "postgres"],
)
async def test_a_run_that_cannot_be_loaded_is_not_claimed(stores, store, canary_log):
    await tamper_entry(stores, store, HOSTILE[0])
    before = await snapshot(stores)
    with pytest.raises(SerializationError, match=r"tests\.canary\.Canary"):
        await stores().claim_run("r1", "me:1:1:y", expected_version=None, limits=UsageLimits())
    assert await snapshot(stores) == before


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_a_tampered_context_class_calls_nothing(stores, store, canary_log):
    await store.create_run(new_state())
    [(text,)] = stores.raw("SELECT context FROM {runs} WHERE run_id = ?", ("r1",))
    data = json.loads(text)
    data["__type__"] = "tests.canary.CanaryContext"
    stores.raw("UPDATE {runs} SET context = ? WHERE run_id = ?", (json.dumps(data), "r1"))
    with pytest.raises(
        SerializationError, match=r"context of run 'r1'.*tests\.canary\.CanaryContext"
    ):
        await stores().load_run("r1")


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_a_damaged_summary_is_reported_for_that_run_alone(stores, store):
    await store.create_run(new_state("good"))
    await store.create_run(new_state("bad"))
    stores.raw("UPDATE {runs} SET status = ? WHERE run_id = ?", ("exploded", "bad"))
    listed = {summary.run_id: summary for summary in await stores().list_runs()}
    assert listed["good"].error is None and listed["good"].status is RunStatus.RUNNING
    assert "damaged" in listed["bad"].error and "exploded" in listed["bad"].error
    assert (await store.get_summary("bad")).error == listed["bad"].error
    with pytest.raises(SerializationError, match=r"run 'bad'.*damaged"):
        await store.load_run("bad")
    with pytest.raises(SerializationError, match=r"run 'bad'.*damaged"):
        await store.claim_run("bad", "me:1:1:y", expected_version=None, limits=UsageLimits())
    assert (await store.load_run("good")).status is RunStatus.RUNNING


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_a_shape_stored_nested_before_flat_storage_still_loads(stores, store):
    await store.create_run(new_state())
    nested = json.dumps(new_state().shape)
    stores.raw("UPDATE {runs} SET shape = ? WHERE run_id = ?", (nested, "r1"))
    assert (await stores().load_run("r1")).shape == new_state().shape


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
@pytest.mark.parametrize(
    "damaged",
    ['{"flat": [["l", 3], "only one"]}', '{"flat": [["x", 1], 2]}', '{"flat": [["d", 1], 1, 2]}'],
)
async def test_a_damaged_stored_shape_is_a_clear_error_and_changes_nothing(stores, store, damaged):
    await store.create_run(new_state())
    stores.raw("UPDATE {runs} SET shape = ? WHERE run_id = ?", (damaged, "r1"))
    before = await snapshot(stores)
    with pytest.raises(SerializationError, match=r"run 'r1': its stored shape is damaged"):
        await stores().load_run("r1")
    with pytest.raises(SerializationError, match=r"run 'r1': its stored shape is damaged"):
        await stores().claim_run("r1", "me:1:1:y", expected_version=None, limits=UsageLimits())
    assert await snapshot(stores) == before


# -- through the runner ----------------------------------------------------------------------


async def test_two_concurrent_resumes_of_a_paused_run_exactly_one_proceeds(stores):
    published: list[Any] = []

    async def publish(answer: Any) -> str:
        published.append(answer)
        return f"published {answer}"

    pipeline = Step("draft", lambda text: text) >> HumanStep("approve") >> Step("publish", publish)
    paused = await Runner(pipeline, store=stores()).run("text", run_id="p")
    assert paused.status is RunStatus.PAUSED
    outcomes: dict[str, Any] = {}

    async def resume(answer: str) -> None:
        try:
            outcomes[answer] = await Runner(pipeline, store=stores()).resume("p", answer)
        except ResumeError as error:
            outcomes[answer] = error

    async with trio.open_nursery() as nursery:
        nursery.start_soon(resume, "yes")
        nursery.start_soon(resume, "no")
    [winner] = [
        answer for answer, outcome in outcomes.items() if not isinstance(outcome, ResumeError)
    ]
    assert outcomes[winner].success and published == [winner]
    stored = await stores().load_run("p")
    assert stored.status is RunStatus.COMPLETED
    assert [i.human_response for i in stored.context.hitl_history] == [winner]


async def test_a_run_cancelled_inside_a_fan_out_resumes_without_redoing_finished_calls(stores):
    calls: list[str] = []
    hang = [True]
    five_done = trio.Event()
    finished = [0]

    def agent(name: str):
        async def run(data: Any) -> Any:
            calls.append(name)
            if name == "slow" and hang[0]:
                await trio.sleep_forever()
            finished[0] += 1
            if finished[0] == 5:
                five_done.set()
            return AgentResult(f"{data}>{name}", Usage(0.1, 1))

        return run

    fan = ParallelStep(
        "fan",
        {
            "a": Step("a", agent("a")),
            "slow": Step("slow", agent("slow")),
            "items": MapStep("items", Step("item", agent("item")), items=[1, 2, 3]),
        },
    )
    pipeline = Step("first", agent("first")) >> fan
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: Runner(pipeline, store=stores()).run("x", run_id="c"))
        await five_done.wait()
        await trio.testing.wait_all_tasks_blocked()  # every finished call is recorded
        nursery.cancel_scope.cancel()
    stopped = await stores().load_run("c")
    assert stopped.status is RunStatus.CANCELLED
    assert stopped.spent == Spent(Decimal("0.5"), 5, 6)  # the slow call: started, never ended
    hang[0] = False
    result = await Runner(pipeline, store=stores()).resume("c")
    assert result.success
    assert sorted(calls) == sorted(["first", "a", "slow", "item", "item", "item", "slow"])
    assert result.total_cost_usd == pytest.approx(0.6) and result.total_tokens == 6
    assert (await stores().load_run("c")).spent == Spent(Decimal("0.6"), 6, 7)
