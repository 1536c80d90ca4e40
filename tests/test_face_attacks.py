"""A demanding user against the CLI, human answers and the event stream: each test
is a bug that was found by attacking them and then fixed."""

from __future__ import annotations

import json
import subprocess

import pytest

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
