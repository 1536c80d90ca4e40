"""The CLI's input rule, its one-line errors and exit codes, and ``--version``."""

from __future__ import annotations

import importlib.metadata
import json

import pytest

import flujo_trio
from tests.cli_run import flujo, one_error_line


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "runs.db")


def described(done) -> str:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["output"]


def test_version_is_the_package_version():
    done = flujo("--version")
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout == f"flujo-trio {importlib.metadata.version('flujo-trio')}\n"
    assert flujo_trio.__version__ == importlib.metadata.version("flujo-trio")


@pytest.mark.parametrize(
    ("text", "seen"),
    [
        ("42", "int 42"),
        ("true", "bool true"),
        ('{"a": [1, 2]}', 'dict {"a": [1, 2]}'),
        ("  [1]", "list [1]"),
        ('"{ quoted"', 'str "{ quoted"'),
        ("3 apples", 'str "3 apples"'),
        ("NaN", 'str "NaN"'),
        ("", 'str ""'),
    ],
)
def test_input_is_json_when_it_parses_else_text(db, text, seen):
    assert described(flujo("run", "tests.cli_pipelines:echo", "--input", text, "--db", db)) == seen


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('{"approved": tru}', "line 1 column 14"),
        ("[1, 2", "line 1 column 6"),
        ('"unterminated', "line 1 column 1"),
        ("  {oops}", "line 1 column 4"),
    ],
)
def test_text_that_starts_like_json_must_be_json(db, text, where):
    error = one_error_line(flujo("run", "tests.cli_pipelines:echo", "--input", text, "--db", db))
    assert "--input starts like JSON but is not valid JSON" in error and where in error
    assert "fix the JSON" in error


@pytest.mark.parametrize(
    ("stdin", "seen"),
    [('{"k": 1}\n', 'dict {"k": 1}'), ("plain words\n", 'str "plain words"')],
)
def test_input_dash_reads_standard_input(db, stdin, seen):
    done = flujo("run", "tests.cli_pipelines:echo", "--input", "-", "--db", db, stdin=stdin)
    assert described(done) == seen


def test_input_files_json_parsed_other_files_verbatim(db, tmp_path):
    (tmp_path / "in.json").write_text('{"k": [1]}')
    (tmp_path / "in.txt").write_text("{not json\n")
    (tmp_path / "bad.json").write_text("{not json")
    run = ("run", "tests.cli_pipelines:echo", "--db", db, "--input-file")
    assert described(flujo(*run, str(tmp_path / "in.json"))) == 'dict {"k": [1]}'
    assert described(flujo(*run, str(tmp_path / "in.txt"))) == 'str "{not json\\n"'
    error = one_error_line(flujo(*run, str(tmp_path / "bad.json")))
    assert "bad.json is not valid JSON" in error


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "no input: give the first step's input with --input TEXT"),
        (["--input", "x", "--input-file", "in.txt"], "give --input or --input-file, not both"),
    ],
)
def test_run_needs_exactly_one_input(db, args, message):
    error = one_error_line(flujo("run", "tests.cli_pipelines:echo", *args, "--db", db))
    assert message in error


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run"], "Missing argument 'TARGET'. (see: flujo-trio run --help)"),
        (["run", "tests.cli_pipelines:echo", "--bogus"], "No such option '--bogus'"),
        (["graph"], "Missing argument 'TARGET'. (see: flujo-trio graph --help)"),
        (["nope"], "No such command 'nope'"),
    ],
)
def test_usage_errors_are_one_line_too(args, message):
    assert message in one_error_line(flujo(*args))


@pytest.mark.parametrize("args", [[], ["runs"]])
def test_a_bare_group_prints_its_help(args):
    done = flujo(*args)
    assert done.returncode in (0, 2)  # click < 8.2 exits 0, later ones 2
    shown = done.stdout + done.stderr
    assert shown.startswith("Usage: flujo-trio") and "Commands:" in shown
    assert "error:" not in shown


def test_resume_follows_the_same_rule_and_says_what_a_paused_run_needs(db):
    paused = flujo("run", "tests.cli_pipelines:ask", "--input", "q", "--run-id", "a1", "--db", db)
    assert paused.returncode == 4

    error = one_error_line(flujo("resume", "a1", "--db", db))
    assert "run 'a1' is paused, waiting for a person's answer ('anything?')" in error
    assert f"flujo-trio resume a1 --input ANSWER --db {db}" in error
    assert "human_input" not in error

    error = one_error_line(flujo("resume", "a1", "--input", '{"approved": tru}', "--db", db))
    assert "--input starts like JSON but is not valid JSON" in error
    listed = json.loads(flujo("runs", "list", "--db", db).stdout)
    assert [(r["run_id"], r["status"]) for r in listed] == [("a1", "paused")]

    assert described(flujo("resume", "a1", "--input", "ship it", "--db", db)) == 'str "ship it"'


def test_resume_reads_a_json_answer_from_standard_input(db):
    flujo("run", "tests.cli_pipelines:ask", "--input", "q", "--run-id", "a2", "--db", db)
    done = flujo("resume", "a2", "--input", "-", "--db", db, stdin='{"ok": true}\n')
    assert described(done) == 'dict {"ok": true}'


def test_an_answer_to_a_run_that_is_not_paused_is_refused_in_cli_words(db):
    over = flujo(
        "run", "tests.cli_pipelines:costly", "--input", "x", "--cost-limit", "1.5", "--run-id",
        "b1", "--db", db,
    )  # fmt: skip
    assert over.returncode == 3
    error = one_error_line(flujo("resume", "b1", "--input", "yes", "--db", db))
    assert "run 'b1' is budget_exceeded, not paused, so it takes no --input" in error
    assert f"continue it with flujo-trio resume b1 --db {db}" in error
