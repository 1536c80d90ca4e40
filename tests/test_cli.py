"""The real ``flujo-trio`` console script, driven in subprocesses."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
from pathlib import Path

import pyte
import pytest

from tests.cli_pty import Terminal
from tests.helpers import raw_sqlite

ROOT = Path(__file__).resolve().parent.parent
CLI = str(Path(sys.executable).parent / "flujo-trio")
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def cli(*args: str, db: Path, extra_env: dict[str, str] | None = None):
    return subprocess.run(
        [CLI, *args, "--db", str(db)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**ENV, **(extra_env or {})},
        timeout=120,
    )


@pytest.fixture
def db(tmp_path):
    return tmp_path / "runs.db"


def test_run_completes_and_prints_one_json_document(db):
    done = cli("run", "tests.cli_pipelines:pipeline", "--input", "hi", "--run-id", "r1", db=db)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["status"] == "completed" and doc["output"] == "hi>first>second"
    assert doc["run_id"] == "r1" and doc["total_tokens"] == 20
    assert [s["name"] for s in doc["steps"]] == ["first", "second"]


def test_exit_codes_for_failed_and_budget_exceeded(db):
    failed = cli("run", "tests.cli_pipelines:failing", "--input", "x", db=db)
    assert failed.returncode == 1
    assert json.loads(failed.stdout)["status"] == "failed"
    over = cli(
        "run", "tests.cli_pipelines:costly", "--input", "x", "--cost-limit", "1.5", "--json", db=db
    )
    assert over.returncode == 3
    doc = json.loads(over.stdout)
    assert doc["status"] == "budget_exceeded" and doc["error"] == "Cost limit of $1.5 exceeded"
    assert doc["limits"]["total_cost_usd_limit"] == 1.5


def test_pause_then_resume_with_json_input(db):
    paused = cli("run", "tests.cli_pipelines:human", "--input", "q", "--run-id", "h1", db=db)
    assert paused.returncode == 4
    assert json.loads(paused.stdout)["pause_message"] == "q>draft"
    bad = cli("resume", "h1", "--input", '{"approved": "yes"}', db=db)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "human input for 'approve'" in bad.stderr
    done = cli("resume", "h1", "--input", '{"approved": true}', db=db)
    assert done.returncode == 0, done.stderr
    assert (
        json.loads(done.stdout)["output"] == "{'approved': True}>publish"
        or json.loads(done.stdout)["status"] == "completed"
    )
    again = cli("resume", "h1", db=db)
    assert again.returncode == 2 and "completed" in again.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "tests.nowhere:pipeline"], "cannot import module 'tests.nowhere'"),
        (["run", "tests.cli_pipelines:missing"], "has no attribute 'missing': name the"),
        (["run", "tests.cli_pipelines:not_a_pipeline"], "is a int, not a Pipeline"),
        (["run", "no-colon"], "TARGET must look like"),
        (["run", "tests/missing_file.py:pipeline"], "no such file: tests/missing_file.py"),
        (
            ["run", "tests.cli_pipelines:pipeline", "--input-file", "/nope/input.txt"],
            "cannot read input file",
        ),
        (["resume", "unknown-run"], "no run 'unknown-run'"),
        (["runs", "show", "unknown-run"], "no run 'unknown-run'"),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_code_2(db, args, message):
    cli("run", "tests.cli_pipelines:pipeline", "--input", "x", db=db)  # the store exists
    bad = cli(*args, db=db)
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and message in bad.stderr, bad.stderr
    assert "Traceback" not in bad.stderr


def test_a_database_that_is_not_ours_is_refused(tmp_path):
    foreign = tmp_path / "other.db"
    with raw_sqlite(foreign) as connection:
        connection.execute("CREATE TABLE t (x)")
    bad = cli("run", "tests.cli_pipelines:pipeline", "--input", "x", db=foreign)
    assert bad.returncode == 2 and "not a flujo-trio store" in bad.stderr


def test_runs_list_show_and_delete(db):
    cli("run", "tests.cli_pipelines:pipeline", "--input", "a", "--run-id", "r1", db=db)
    cli("run", "tests.cli_pipelines:human", "--input", "b", "--run-id", "r2", db=db)
    listed = json.loads(cli("runs", "list", db=db).stdout)
    assert {r["run_id"]: r["status"] for r in listed} == {"r1": "completed", "r2": "paused"}
    paused = json.loads(cli("runs", "list", "--status", "paused", db=db).stdout)
    assert [r["run_id"] for r in paused] == ["r2"]
    with Terminal("runs", "show", "r1", "--db", str(db)) as terminal:
        code, shown = terminal.finish()
    assert code == 0
    for text in ("✓ first", "✓ second", "attempts=1", "total: $0.02", "no cost limit"):
        assert text in shown
    doc = json.loads(cli("runs", "show", "r1", db=db).stdout)  # not a terminal: JSON
    assert doc["steps"][1]["latency_s"] >= 0 and doc["total_tokens"] == 20
    assert doc == json.loads(cli("runs", "show", "r1", "--json", db=db).stdout)
    assert cli("runs", "delete", "r1", db=db).returncode == 0
    assert cli("runs", "delete", "r1", db=db).returncode == 2


def test_ctrl_c_cancels_cleanly_and_the_run_resumes(db):
    process = subprocess.Popen(
        [
            CLI,
            "run",
            "tests.cli_pipelines:interruptible",
            "--input",
            "x",
            "--run-id",
            "c1",
            "--db",
            str(db),
        ],
        cwd=ROOT,
        env={**ENV, "FLUJO_TEST_HANG": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr.readline().strip() == "READY"
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130
    assert "flujo-trio resume c1" in stderr and "Traceback" not in stderr
    listed = json.loads(cli("runs", "list", db=db).stdout)
    assert listed[0]["run_id"] == "c1" and listed[0]["status"] == "cancelled"
    resumed = cli("resume", "c1", db=db)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["output"] == "x>first>finished"


def test_live_view_draws_the_step_tree_and_spend_in_a_terminal(db):
    columns, lines = 110, 40
    master, slave = pty.openpty()
    env = {**ENV, "TERM": "xterm-256color", "COLUMNS": str(columns), "LINES": str(lines)}
    process = subprocess.Popen(
        [CLI, "run", "tests.cli_pipelines:limited", "--input", "go", "--db", str(db)],
        cwd=ROOT,
        env=env,
        stdin=slave,
        stdout=slave,
        stderr=slave,
    )
    os.close(slave)
    screen = pyte.Screen(columns, lines)
    stream = pyte.ByteStream(screen)
    try:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            stream.feed(chunk)
    finally:
        os.close(master)
        process.wait(timeout=60)
    assert process.returncode == 0
    text = "\n".join(screen.display)
    for expected in (
        "fanout",
        "branch_a",
        "work_a",
        "summary",
        "spend",
        "$0.04 / $1",
        "completed",
        "✓",
    ):
        assert expected in text, f"{expected!r} not on screen:\n{text}"
