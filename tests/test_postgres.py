"""What only the PostgreSQL store has: a DSN (and a password to keep out of messages), a
schema with migrations, JSON readable with psql, and an optional dependency."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import traceback
from pathlib import Path

import psycopg
import pytest
import trio
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

import flujo_trio
from flujo_trio import (
    ConfigurationError,
    HumanStep,
    PostgresStore,
    Runner,
    StateStore,
    Step,
    StoreError,
)
from flujo_trio.state.postgres_schema import MIGRATIONS, SCHEMA_VERSION, Migration, prepare
from tests.models import RichContext
from tests.pg_server import bindir

ROOT = Path(__file__).resolve().parent.parent


def with_params(dsn: str, **params: str) -> str:
    return make_conninfo(dsn, **params)


def everything_said(error: BaseException) -> str:
    """The message, the causes and the whole traceback, as a log would keep them."""
    return "".join(traceback.format_exception(error))


def test_importing_flujo_trio_does_not_import_psycopg():
    code = "import sys, flujo_trio; print('psycopg' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert done.stdout.strip() == "False"
    from flujo_trio.state import PostgresStore as from_state

    assert flujo_trio.PostgresStore is from_state is PostgresStore
    store = PostgresStore("dbname=anything")  # nothing connects before first use
    assert isinstance(store, StateStore) and store.durable and store.lease_s == 30


async def test_wrong_credentials_are_a_store_error_without_the_password(postgres_dsn, pg_schema):
    secret = "hunter2-not-the-password"
    dsn = with_params(postgres_dsn, password=secret, dbname="no_such_database_here")
    async with PostgresStore(dsn, schema=pg_schema) as store:
        with pytest.raises(StoreError) as info:
            await store.list_runs()
    message = str(info.value)
    assert message.startswith("PostgreSQL store postgresql://")
    assert "password authentication failed" in message or "does not exist" in message
    assert "check that the server is running" in message
    assert secret not in everything_said(info.value) and secret not in repr(store)


async def test_a_server_that_is_not_there_says_so(postgres_dsn, pg_schema):
    with socket_closed_port() as port:
        dsn = with_params(postgres_dsn, port=str(port), password="s3cret-pw")
        async with PostgresStore(dsn, schema=pg_schema) as store:
            with pytest.raises(StoreError, match=f"127.0.0.1:{port}.*refused") as info:
                await store.load_run("r1")
    assert "s3cret-pw" not in everything_said(info.value)


def socket_closed_port():
    import contextlib
    import socket

    @contextlib.contextmanager
    def closed():
        with socket.socket() as probe:  # bound, never listening: connections are refused
            probe.bind(("127.0.0.1", 0))
            yield probe.getsockname()[1]

    return closed()


@pytest.mark.parametrize(
    "dsn",
    [
        "host=localhost password=hunter2secret bogus",
        "postgresql://user:hunter2secret@host:5432/db?not_an_option=1",
        "",
    ],
)
def test_a_bad_dsn_is_a_configuration_error_without_the_password(dsn):
    with pytest.raises(ConfigurationError, match="DSN") as info:
        PostgresStore(dsn)
    assert "hunter2secret" not in everything_said(info.value)


def test_bad_options_are_refused():
    with pytest.raises(ConfigurationError, match="lease_s"):
        PostgresStore("dbname=x", lease_s=0)
    with pytest.raises(ConfigurationError, match="pool_size"):
        PostgresStore("dbname=x", pool_size=0)
    with pytest.raises(ConfigurationError, match="schema"):
        PostgresStore("dbname=x", schema="")


# -- the schema ------------------------------------------------------------------------------


def versions(dsn: str, schema: str) -> list[int]:
    with psycopg.connect(dsn) as db:
        query = sql.SQL("SELECT version FROM {}.schema_version ORDER BY version")
        return [row[0] for row in db.execute(query.format(sql.Identifier(schema)))]


async def test_workers_opening_a_new_store_together_all_see_it_finished(postgres_dsn, pg_schema):
    stores = [PostgresStore(postgres_dsn, schema=pg_schema) for _ in range(8)]
    seen: list[int] = []

    async def open_one(store: PostgresStore) -> None:
        seen.append(len(await store.list_runs()))

    async with trio.open_nursery() as nursery:
        for store in stores:
            nursery.start_soon(open_one, store)
    for store in stores:
        await store.aclose()
    assert seen == [0] * 8
    assert versions(postgres_dsn, pg_schema) == [SCHEMA_VERSION]


async def test_migrations_apply_forward_once(postgres_dsn, pg_schema):
    async with PostgresStore(postgres_dsn, schema=pg_schema) as store:
        await Runner(HumanStep("h"), store=store).run("x", run_id="old")
    later = (*MIGRATIONS, Migration(2, ("ALTER TABLE {schema}.runs ADD COLUMN note text",)))
    with psycopg.connect(postgres_dsn, autocommit=True) as db:
        assert prepare(db, pg_schema, later) == 2
        assert prepare(db, pg_schema, later) == 2  # nothing left to apply
        query = sql.SQL("SELECT status, note FROM {}.runs").format(sql.Identifier(pg_schema))
        assert db.execute(query).fetchall() == [("paused", None)]  # the run is still there
    assert versions(postgres_dsn, pg_schema) == [1, 2]
    async with PostgresStore(postgres_dsn, schema=pg_schema) as store:
        with pytest.raises(StoreError, match=r"newer flujo-trio \(store schema 2, .* up to 1\)"):
            await store.list_runs()


async def test_a_schema_with_other_tables_is_not_taken_over(postgres_dsn, pg_schema):
    with psycopg.connect(postgres_dsn, autocommit=True) as db:
        name = sql.Identifier(pg_schema)
        db.execute(sql.SQL("CREATE SCHEMA {}").format(name))
        db.execute(sql.SQL("CREATE TABLE {}.runs (name text)").format(name))
    async with PostgresStore(postgres_dsn, schema=pg_schema) as store:
        with pytest.raises(StoreError, match="holds tables that are not a flujo-trio store"):
            await store.list_runs()
    with psycopg.connect(postgres_dsn) as db:
        query = sql.SQL("SELECT count(*) FROM {}.runs").format(sql.Identifier(pg_schema))
        assert db.execute(query).fetchone() == (0,)


# -- what is stored --------------------------------------------------------------------------


async def set_context(data, context):
    from tests.models import Color

    context.color = Color.GREEN
    context.counts = {"b": 2, "a": 1}
    return {"text": data}


async def test_state_is_json_readable_with_psql(postgres_dsn, pg_schema):
    pipeline = Step("set", set_context) >> HumanStep("review", message="ok?")
    async with PostgresStore(postgres_dsn, schema=pg_schema) as store:
        runner = Runner(pipeline, store=store, context_type=RichContext)
        await runner.run("hello", run_id="r1")
    psql = shutil.which("psql") or str(bindir() / "psql")
    query = (
        f"SELECT status, context->>'color', context->'counts', context::text "
        f"FROM {pg_schema}.runs WHERE run_id = 'r1';"
        f"SELECT entry->'output'->>'text' FROM {pg_schema}.journal "
        "WHERE run_id = 'r1' AND kind = 'step' AND entry->>'status' = 'ok'"
    )
    params = conninfo_to_dict(postgres_dsn)
    env = {**os.environ, "PGPASSWORD": str(params.pop("password", None) or "")}
    done = await trio.run_process(
        [psql, make_conninfo("", **params), "-At", "-F", "|", "-c", query],
        capture_stdout=True,
        env=env,
    )
    header, output = done.stdout.decode().strip().splitlines()
    status, color, counts, text = header.split("|", 3)
    assert status == "paused" and color == "green" and counts == '{"b":2,"a":1}'
    assert '"__type__":"tests.models.RichContext"' in text
    assert output == "hello"


async def _count(store: PostgresStore) -> int:
    return len(await store.list_runs())


def test_a_store_outlives_one_trio_run(postgres_dsn, pg_schema):
    store = PostgresStore(postgres_dsn, schema=pg_schema)
    assert trio.run(_count, store) == 0
    Runner(Step("s", lambda x: x), store=store).run_sync("x", run_id="r")
    assert trio.run(_count, store) == 1
    store.database.close()
