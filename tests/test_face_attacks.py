"""A demanding user against the CLI, human answers and the event stream: each test
is a bug that was found by attacking them and then fixed."""

from __future__ import annotations

import enum
import json
import signal
import subprocess
from typing import Any

import attrs
import pydantic
import pytest

from flujo_trio import HumanInputError, HumanStep, Runner, RunStatus, SqliteStore, Step
from tests.cli_run import CLI, ENV, ROOT, flujo, one_error_line


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "runs.db")


def described(done) -> str:
    assert done.returncode == 0, done.stderr
    return str(json.loads(done.stdout)["output"])


def flujo_bytes(*args: str, stdin: bytes) -> subprocess.CompletedProcess[str]:
    """``flujo-trio ARGS`` fed raw bytes on standard input."""
    done = subprocess.run(
        [CLI, *args], input=stdin, capture_output=True, cwd=ROOT, env=ENV, timeout=120
    )
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode(), done.stderr.decode()
    )


# -- CLI input --------------------------------------------------------------------------

DEEP = "[" * 100_000 + "]" * 100_000


def test_deeply_nested_json_on_stdin_is_one_error_line(db):
    # It was a RecursionError traceback from json.loads.
    done = flujo("run", "tests.cli_pipelines:echo", "--input", "-", "--db", db, stdin=DEEP)
    assert "nested too deeply" in one_error_line(done)


def test_deeply_nested_json_file_is_one_error_line(db, tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text(DEEP)
    done = flujo("run", "tests.cli_pipelines:echo", "--input-file", str(deep), "--db", db)
    line = one_error_line(done)
    assert "deep.json" in line and "nested too deeply" in line


def test_input_file_that_is_not_utf8_is_one_error_line(db, tmp_path):
    # It was a UnicodeDecodeError traceback: only OSError was caught.
    binary = tmp_path / "photo.txt"
    binary.write_bytes(b"\xff\xfe\x00binary")
    done = flujo("run", "tests.cli_pipelines:echo", "--input-file", str(binary), "--db", db)
    line = one_error_line(done)
    assert "photo.txt is not UTF-8 text" in line


def test_stdin_that_is_not_utf8_says_so(db):
    # It was decoded with surrogateescape, then refused as "a lone surrogate ... store
    # it as bytes", advice for Python code, not for someone piping a file in.
    done = flujo_bytes(
        "run", "tests.cli_pipelines:echo", "--input", "-", "--db", db, stdin=b"caf\xe9\n"
    )
    assert "standard input is not UTF-8 text" in one_error_line(done)


def test_input_file_text_keeps_its_lines(db, tmp_path):
    # Still read as text mode did: Windows line ends become \n.
    notes = tmp_path / "notes.txt"
    notes.write_bytes("café\r\nbar\r\n".encode())
    done = flujo("run", "tests.cli_pipelines:echo", "--input-file", str(notes), "--db", db)
    assert described(done) == 'str "caf\\u00e9\\nbar\\n"'


def test_json_file_with_nan_is_refused_as_input(db, tmp_path):
    # --input refuses NaN; a .json file let it through to fail as "not storable".
    nan = tmp_path / "nan.json"
    nan.write_text("[1, NaN]")
    done = flujo("run", "tests.cli_pipelines:echo", "--input-file", str(nan), "--db", db)
    line = one_error_line(done)
    assert "nan.json" in line and "NaN" in line


def test_a_number_longer_than_python_reads_is_refused_not_taken_as_text(db, tmp_path):
    # 5000 digits exceed Python's int limit: the text silently became a string.
    digits = "9" * 5000
    line = one_error_line(flujo("run", "tests.cli_pipelines:echo", "--input", digits, "--db", db))
    assert line.startswith("flujo-trio: error: --input holds a number with more digits")
    big = tmp_path / "big.json"
    big.write_text(f"[{digits}]")
    done = flujo("run", "tests.cli_pipelines:echo", "--input-file", str(big), "--db", db)
    assert "big.json holds a number with more digits" in one_error_line(done)
    text = flujo("run", "tests.cli_pipelines:echo", "--input", f'"{digits}"', "--db", db)
    assert described(text) == f'str "{digits}"'


@pytest.mark.parametrize("command", ["run", "graph"])
def test_a_target_that_exits_while_imported_is_one_error_line(db, tmp_path, command):
    # Its sys.exit(5) ended the CLI with status 5 and no word.
    script = tmp_path / "script.py"
    script.write_text("import sys\nsys.exit(5)\n")
    args = ["--input", "x", "--db", db] if command == "run" else []
    done = flujo(command, f"{script}:pipeline", *args)
    assert done.returncode == 2
    assert "script.py called sys.exit(5)" in one_error_line(done)


# -- human answers ---------------------------------------------------------------------


@attrs.define
class Labels:
    tags: list[str]


class Mood(enum.Enum):
    CALM = "calm"
    ONE = 1


class Approval(pydantic.BaseModel):
    approved: bool
    score: int = 0


async def echo_agent(data: Any) -> Any:
    return data


async def answered(input_type: Any, answer: Any, store: Any = None) -> Any:
    runner = Runner(HumanStep("ask", input_type=input_type) >> Step("echo", echo_agent))
    if store is not None:
        runner = Runner(runner.pipeline, store=store)
    paused = await runner.run("question")
    assert paused.status is RunStatus.PAUSED
    done = await runner.resume(paused.run_id, answer)
    assert done.status is RunStatus.COMPLETED
    return done.output


@pytest.mark.parametrize(
    ("input_type", "answer"),
    [
        # Text for a list was split into characters: {"tags": "urgent"} -> u, r, g, ...
        (Labels, {"tags": "urgent"}),
        (list[str], "ab"),
        (set[str], "ab"),
        (list[int], {}),
        (tuple[int, ...], {}),
        # True == 1, so a bool picked the enum member valued 1.
        (Mood, True),
    ],
)
async def test_answer_of_the_wrong_shape_is_refused(input_type, answer):
    runner = Runner(HumanStep("ask", input_type=input_type) >> Step("echo", echo_agent))
    paused = await runner.run("question")
    with pytest.raises(HumanInputError):
        await runner.resume(paused.run_id, answer)
    assert (await runner.resume(paused.run_id, None if False else _fitting(input_type))).success


def _fitting(input_type: Any) -> Any:
    return {Labels: {"tags": ["a"]}, Mood: 1, list[str]: ["a"], set[str]: ["a"]}.get(
        input_type, [1]
    )


async def test_enum_members_still_answer_by_value():
    assert await answered(Mood, "calm") is Mood.CALM
    assert await answered(Mood, 1) is Mood.ONE


async def test_pydantic_input_type_takes_its_fields(tmp_path):
    # Every answer was refused: "Unsupported type ... Register a structure hook".
    assert await answered(Approval, {"approved": True}) == Approval(approved=True)
    assert await answered(Approval, Approval(approved=False, score=2)) == Approval(
        approved=False, score=2
    )
    async with SqliteStore(tmp_path / "runs.db") as store:
        assert await answered(Approval, {"approved": True, "score": 3}, store) == Approval(
            approved=True, score=3
        )


@pytest.mark.parametrize(
    "answer",
    [{"approved": "yes"}, {"approved": True, "score": "3"}, {"approved": True, "x": 1}, {}, "ok"],
)
async def test_pydantic_input_type_refuses_what_attrs_refuses(answer):
    runner = Runner(HumanStep("ask", input_type=Approval) >> Step("echo", echo_agent))
    paused = await runner.run("question")
    with pytest.raises(HumanInputError):
        await runner.resume(paused.run_id, answer)


# -- signals -----------------------------------------------------------------------------


def test_sigterm_saves_the_run_as_cancelled_like_ctrl_c(tmp_path):
    # SIGTERM (timeout, docker stop, a CI cancel) killed the CLI outright: nothing was
    # printed and the run stayed "running", owned by a dead process.
    db = str(tmp_path / "runs.db")
    args = ["--input", "x", "--run-id", "t1", "--db", db, "--json"]
    process = subprocess.Popen(
        [CLI, "run", "tests.cli_pipelines:interruptible", *args],
        cwd=ROOT,
        env={**ENV, "FLUJO_TEST_HANG": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        assert process.stderr.readline().strip() == "READY"
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 143, stderr
    assert "terminated (SIGTERM)" in stderr and "flujo-trio resume t1 --db" in stderr
    assert "Traceback" not in stderr
    listed = json.loads(flujo("runs", "list", "--db", db, "--json").stdout)
    assert [(run["run_id"], run["status"], run["owner"]) for run in listed] == [
        ("t1", "cancelled", None)
    ]
    resumed = flujo("resume", "t1", "--db", db, "--json")
    assert json.loads(resumed.stdout)["output"] == "x>first>finished", resumed.stderr
