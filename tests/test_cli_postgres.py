"""The real ``flujo-trio`` console script with ``--db postgresql://...``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

from tests.cli_run import flujo, ok_json, one_error_line

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


def test_inspection_from_another_directory_on_postgres(pg_database, tmp_path):
    db = pg_database
    for run_id, target in [("p1", "human"), ("p2", "human"), ("c1", "pipeline")]:
        cli("run", f"tests.cli_pipelines:{target}", "--input", "x", "--run-id", run_id, db=db)

    def ids(*args: str) -> list[str]:
        done = flujo("runs", "list", *args, "--db", db, cwd=tmp_path)
        return [row["run_id"] for row in ok_json(done)]

    assert ids() == ["c1", "p2", "p1"]
    assert ids("--pipeline", "draft") == ["p2", "p1"]
    assert ids("--limit", "1") == ["c1"]
    assert ids("--since", "1h", "--status", "paused") == ["p2", "p1"]
    assert ids("--since", "2999-01-01T00:00+02:00") == []
    exported = flujo("runs", "export", "p1", "--db", db, cwd=tmp_path)
    document = ok_json(exported)
    assert "__flujo_type__" not in exported.stdout and "__type__" not in exported.stdout
    assert document["status"] == "paused" and document["pause_message"] == "x>draft"
    assert {entry["entry"] for entry in document["journal"]} == {"call", "step"}
    error = one_error_line(flujo("runs", "delete", "p1", "nope", "--db", db, cwd=tmp_path))
    assert "nothing was deleted" in error
    assert flujo("runs", "delete", "p1", "c1", "--db", db, cwd=tmp_path).returncode == 0
    assert ids() == ["p2"]
