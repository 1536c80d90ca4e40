"""The real ``flujo-trio`` console script with ``--db postgresql://...``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

ROOT = Path(__file__).resolve().parent.parent
CLI = str(Path(sys.executable).parent / "flujo-trio")
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def cli(*args: str, db: str):
    return subprocess.run(
        [CLI, *args, "--db", db], capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=120
    )


def test_run_pause_resume_list_show_and_delete_on_postgres(pg_database):
    db = pg_database
    password = str(conninfo_to_dict(db)["password"])
    paused = cli("run", "tests.cli_pipelines:human", "--input", "q", "--run-id", "h1", db=db)
    assert paused.returncode == 4, paused.stderr
    assert json.loads(paused.stdout)["pause_message"] == "q>draft"
    [row] = json.loads(cli("runs", "list", db=db).stdout)
    assert row["run_id"] == "h1" and row["status"] == "paused" and row["total_tokens"] == 10
    bad = cli("resume", "h1", "--input", '{"approved": "yes"}', db=db)
    assert bad.returncode == 2 and "human input for 'approve'" in bad.stderr
    done = cli("resume", "h1", "--input", '{"approved": true}', db=db)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "completed"
    shown = json.loads(cli("runs", "show", "h1", "--json", db=db).stdout)
    assert [s["name"] for s in shown["steps"]] == ["draft", "approve", "publish"]
    assert cli("runs", "delete", "h1", db=db).returncode == 0
    missing = cli("runs", "show", "h1", db=db)
    assert missing.returncode == 2 and "no run 'h1' in postgresql://flujo@" in missing.stderr
    outputs = [paused, bad, done, missing]
    assert all(password not in out.stdout + out.stderr for out in outputs)


def test_an_unreachable_server_is_one_clear_line_without_the_password(pg_database):
    params = conninfo_to_dict(pg_database)
    db = pg_database.replace(f":{params['port']}/", ":1/")
    listed = cli("runs", "list", db=db)
    assert listed.returncode == 2
    assert listed.stderr.startswith("flujo-trio: error: PostgreSQL store postgresql://flujo@")
    assert "refused" in listed.stderr and str(params["password"]) not in listed.stderr
    assert listed.stderr.count("\n") == 1
