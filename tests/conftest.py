"""A real PostgreSQL server for the tests that need one.

``FLUJO_TRIO_TEST_POSTGRES_DSN`` points the tests at a server of yours; without it the
session starts a throwaway server (``tests/pg_server.py``) on first use and stops it at
the end. When neither works the Postgres tests fail with the reason: they are never
skipped. Each test gets a PostgreSQL schema (or a database) of its own, dropped
afterwards, so the DSN's user needs the right to create both (PostgreSQL 13 or newer).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from tests.pg_server import DSN_VARIABLE, throwaway_server


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    own = os.environ.get(DSN_VARIABLE)
    if own:
        yield own
        return
    with throwaway_server() as dsn:
        yield dsn


def drop_schema(dsn: str, schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
        )


@pytest.fixture
def pg_database(postgres_dsn: str) -> Iterator[str]:
    """The DSN of a fresh database, for programs that use the store's default schema
    (the CLI, worker processes); dropped afterwards."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params = conninfo_to_url(make_conninfo(postgres_dsn, dbname=name))
    yield params
    with psycopg.connect(postgres_dsn, autocommit=True) as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def conninfo_to_url(conninfo: str) -> str:
    """A ``postgresql://`` URL for a DSN (the CLI's ``--db`` takes URLs)."""
    from urllib.parse import quote

    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(conninfo)
    user = quote(str(params.pop("user", "")), safe="")
    password = params.pop("password", None)
    auth = f"{user}:{quote(str(password), safe='')}@" if password else (f"{user}@" if user else "")
    host = str(params.pop("host", ""))
    port = f":{params.pop('port')}" if params.get("port") else ""
    dbname = quote(str(params.pop("dbname", "")), safe="")
    query = "&".join(f"{key}={quote(str(value), safe='')}" for key, value in params.items())
    return f"postgresql://{auth}{host}{port}/{dbname}" + (f"?{query}" if query else "")


@pytest.fixture
def pg_schema(postgres_dsn: str) -> Iterator[str]:
    """A fresh schema name for this test's store (the store creates it)."""
    schema = f"test_{uuid.uuid4().hex[:12]}"
    yield schema
    drop_schema(postgres_dsn, schema)


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[str]:
    """A local Ray cluster of two CPUs for the whole session; yields its address.

    Started once (it takes seconds), with the signal handlers ``ray.init`` installs put
    back as they were, and stopped at the end of the session.
    """
    import signal
    from pathlib import Path

    import ray
    from ray.job_config import JobConfig

    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    root = str(Path(__file__).resolve().parent.parent)  # workers import tests.* from here
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        configure_logging=False,
        job_config=JobConfig(code_search_path=[root]),
    )
    for sig, handler in saved.items():
        signal.signal(sig, handler)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()
