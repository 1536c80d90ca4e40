"""``flujo-trio runs``: inspection from any directory, without the pipeline's code."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tests.cli_pty import Terminal, lines_with
from tests.cli_run import flujo, ok_json, one_error_line
from tests.helpers import raw_sqlite

PIPELINE_FILE = textwrap.dedent(
    """
    import os

    import attrs

    from flujo_trio import HumanStep, PipelineContext, Runner, Step

    if os.environ.get("FLUJO_TEST_IMPORT_LOG"):
        with open(os.environ["FLUJO_TEST_IMPORT_LOG"], "a") as log:
            log.write("imported\\n")


    @attrs.define
    class Notes(PipelineContext):
        seen: list[str] = attrs.field(factory=list)


    @attrs.define
    class Draft:
        text: str
        words: int


    async def write(topic, context: Notes):
        context.seen.append(topic)
        return Draft(f"about {topic}", 2)


    async def publish(answer, context: Notes):
        return f"{answer} after {len(context.seen)} draft(s)"


    runner = Runner(
        Step("write", write) >> HumanStep("approve", message="ok?") >> Step("publish", publish),
        context_type=Notes,
        name="notes",
    )
    """
)

TAGS = ("__flujo_type__", "__type__")


@pytest.fixture
def project(tmp_path):
    """A pipeline file in its own directory, another directory, and a store beside them."""
    source, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    source.mkdir()
    elsewhere.mkdir()
    (source / "pipe.py").write_text(PIPELINE_FILE)
    return source, elsewhere, tmp_path / "runs.db"


def test_a_file_target_is_recorded_absolute_and_resumes_from_anywhere(project):
    source, elsewhere, db = project
    paused = flujo(
        "run",
        "pipe.py:runner",
        "--input",
        "trio",
        "--run-id",
        "n1",
        "--db",
        "../runs.db",
        cwd=source,
    )
    assert ok_json(paused, 4)["status"] == "paused"
    [row] = ok_json(flujo("runs", "list", "--db", str(db), cwd=elsewhere))
    assert row["origin"] == f"{(source / 'pipe.py').resolve()}:runner"
    done = flujo("resume", "n1", "--input", "yes", "--db", str(db), cwd=elsewhere)
    document = ok_json(done)
    assert document["output"] == "yes after 1 draft(s)"
    assert document["steps"][0]["output"] == {"text": "about trio", "words": 2}
    assert document["steps"][0]["output_type"] == "Draft"


def test_show_and_export_need_no_code_and_import_none(project, tmp_path):
    source, elsewhere, db = project
    flujo("run", "pipe.py:runner", "--input", "trio", "--run-id", "n1", "--db", str(db), cwd=source)
    flujo("resume", "n1", "--input", "yes", "--db", str(db), cwd=source)
    log = tmp_path / "imports.log"
    watched = {"FLUJO_TEST_IMPORT_LOG": str(log)}
    inspect = [("runs", "list"), ("runs", "show", "n1"), ("runs", "export", "n1")]
    for args in inspect:  # with the file in place: still never imported
        assert flujo(*args, "--db", str(db), cwd=elsewhere, env=watched).returncode == 0
    assert not log.exists()
    (source / "pipe.py").rename(source / "moved.py")
    shown = ok_json(flujo("runs", "show", "n1", "--db", str(db), cwd=elsewhere))
    assert [s["name"] for s in shown["steps"]] == ["write", "approve", "publish"]
    assert shown["steps"][0]["output"] == {"text": "about trio", "words": 2}
    assert shown["status"] == "completed" and shown["pipeline_name"] == "notes"
    exported = flujo("runs", "export", "n1", "--db", str(db), cwd=elsewhere)
    document = ok_json(exported)
    assert not any(tag in exported.stdout for tag in TAGS)
    assert document["export_format"] == 1 and document["input"] == "trio"
    assert document["context"]["seen"] == ["trio"]
    assert document["context"]["context_type"] == "Notes"
    assert document["context"]["hitl_history"][0]["human_response"] == "yes"
    assert document["initial_context"]["seen"] == []
    assert document["limits"] == {
        "total_cost_usd_limit": None,
        "total_tokens_limit": None,
        "total_requests_limit": None,
    }
    entries = {entry["entry"] for entry in document["journal"]}
    assert entries == {"call", "step"}
    saved = [e for e in document["journal"] if e["entry"] == "step" and e["address"] == ["write"]]
    assert saved[0]["output"] == {"text": "about trio", "words": 2}
    assert saved[0]["changes"] == [
        {"field": "seen", "op": "append", "value": ["trio"], "removed": []}
    ]
    assert not log.exists()


def test_resume_after_the_file_moved_names_the_stored_path(project):
    source, elsewhere, db = project
    flujo("run", "pipe.py:runner", "--input", "trio", "--run-id", "n2", "--db", str(db), cwd=source)
    before = ok_json(flujo("runs", "export", "n2", "--db", str(db)))
    (source / "pipe.py").rename(source / "moved.py")
    error = one_error_line(flujo("resume", "n2", "--input", "yes", "--db", str(db), cwd=elsewhere))
    stored = f"{(source / 'pipe.py').resolve()}"
    assert f"run 'n2' was started from {stored}:runner, but {stored} is gone" in error
    assert "put the pipeline file back at that path" in error
    assert ok_json(flujo("runs", "export", "n2", "--db", str(db))) == before


def _age(db: Path, run_id: str, updated_at: str) -> None:
    with raw_sqlite(db) as connection:
        connection.execute("UPDATE runs SET updated_at = ? WHERE run_id = ?", (updated_at, run_id))


def _ids(done) -> list[str]:
    return [row["run_id"] for row in ok_json(done)]


def test_list_filters_by_pipeline_time_and_count(tmp_path):
    db = str(tmp_path / "runs.db")
    for run_id, target in [
        ("old", "tests.cli_pipelines:pipeline"),
        ("p1", "tests.cli_pipelines:human"),
        ("p2", "tests.cli_pipelines:human"),
        ("f1", "tests.cli_pipelines:failing"),
    ]:
        flujo("run", target, "--input", "x", "--run-id", run_id, "--db", db)
    _age(Path(db), "old", "2020-01-01T00:00:00+00:00")
    listed = flujo("runs", "list", "--db", db)
    assert _ids(listed) == ["f1", "p2", "p1", "old"]  # most recently updated first
    assert all(row["updated_at"].endswith("+00:00") for row in json.loads(listed.stdout))
    assert _ids(flujo("runs", "list", "--pipeline", "draft", "--db", db)) == ["p2", "p1"]
    assert _ids(flujo("runs", "list", "--limit", "2", "--db", db)) == ["f1", "p2"]
    assert _ids(flujo("runs", "list", "--since", "3d", "--db", db)) == ["f1", "p2", "p1"]
    assert _ids(flujo("runs", "list", "--since", "2019-12-31", "--db", db))[-1] == "old"
    # 01:00 at +02:00 is 23:00 UTC the day before: the old run is after it.
    zoned = flujo("runs", "list", "--since", "2020-01-01T01:00+02:00", "--db", db)
    assert "old" in _ids(zoned)
    later = flujo("runs", "list", "--since", "2020-01-01T00:00:01Z", "--db", db)
    assert "old" not in _ids(later)
    both = flujo("runs", "list", "--pipeline", "first", "--status", "failed", "--db", db)
    assert _ids(both) == ["f1"]
    assert _ids(flujo("runs", "list", "--since", "2999-01-01", "--db", db)) == []


@pytest.mark.parametrize("since", ["yesterday", "3 days", "-2h", "2026-13-01"])
def test_a_bad_since_is_one_line_saying_what_is_accepted(tmp_path, since):
    db = tmp_path / "runs.db"
    error = one_error_line(flujo("runs", "list", "--since", since, "--db", str(db)))
    assert "--since" in error and "30m, 2h, 3d or 1w" in error
    assert not db.exists()  # refused before the store is opened


def test_the_table_shows_times_with_their_zone(tmp_path):
    db = str(tmp_path / "runs.db")
    flujo("run", "tests.cli_pipelines:pipeline", "--input", "x", "--run-id", "r1", "--db", db)
    _age(Path(db), "r1", "2020-01-01T00:00:00+00:00")
    with Terminal("runs", "list", "--db", db, extra_env={"TZ": "Asia/Tokyo"}) as terminal:
        code, text = terminal.finish()
    assert code == 0
    [row] = lines_with(text, "r1")
    assert "2020-01-01 09:00:00 JST" in row and "completed" in row


def test_a_damaged_row_is_listed_with_its_error(tmp_path):
    db = str(tmp_path / "runs.db")
    for run_id in ("good", "bad", "worse"):
        flujo("run", "tests.cli_pipelines:pipeline", "--input", "x", "--run-id", run_id, "--db", db)
    with raw_sqlite(db) as connection:
        connection.execute("UPDATE runs SET total_tokens = 'lots' WHERE run_id = 'bad'")
        connection.execute("UPDATE runs SET context = '{broken' WHERE run_id = 'worse'")
    rows = {row["run_id"]: row for row in ok_json(flujo("runs", "list", "--db", db))}
    assert rows["good"]["status"] == "completed" and rows["good"]["error"] is None
    assert rows["bad"]["status"] is None and rows["bad"]["total_tokens"] is None
    assert "stored summary is damaged" in rows["bad"]["error"]
    assert rows["worse"]["status"] == "completed"  # its summary columns are fine
    with Terminal("runs", "list", "--db", db) as terminal:
        code, text = terminal.finish()
    assert code == 0 and lines_with(text, "bad", "damaged")
    assert lines_with(text, "bad:", "stored summary is damaged")
    assert "damaged" in one_error_line(flujo("runs", "show", "bad", "--db", db))
    assert "the context of run 'worse'" in one_error_line(
        flujo("runs", "export", "worse", "--db", db)
    )
    assert "cannot be resumed" in one_error_line(flujo("resume", "bad", "--db", db))
    assert flujo("runs", "delete", "bad", "worse", "--db", db).returncode == 0
    assert _ids(flujo("runs", "list", "--db", db)) == ["good"]


def test_export_to_a_file_and_delete(tmp_path):
    db = str(tmp_path / "runs.db")
    for run_id in ("r1", "r2", "r3"):
        flujo("run", "tests.cli_pipelines:pipeline", "--input", "x", "--run-id", run_id, "--db", db)
    out = tmp_path / "r1.json"
    written = flujo("runs", "export", "r1", "-o", str(out), "--db", db)
    assert written.returncode == 0 and written.stdout == "" and str(out) in written.stderr
    assert json.loads(out.read_text())["run_id"] == "r1"
    unwritable = flujo("runs", "export", "r1", "-o", str(tmp_path / "no" / "x.json"), "--db", db)
    assert "cannot write" in one_error_line(unwritable)
    # One unknown id: nothing is deleted.
    error = one_error_line(flujo("runs", "delete", "r1", "nope", "--db", db))
    assert "no run 'nope'" in error and "nothing was deleted" in error
    assert _ids(flujo("runs", "list", "--db", db)) == ["r3", "r2", "r1"]
    deleted = flujo("runs", "delete", "r1", "r2", "--db", db)
    assert deleted.returncode == 0 and deleted.stdout == "deleted r1\ndeleted r2\n"
    assert _ids(flujo("runs", "list", "--db", db)) == ["r3"]
    assert "no run 'r1'" in one_error_line(flujo("runs", "export", "r1", "--db", db))


def test_a_run_a_process_owns_is_deleted_only_with_force(tmp_path):
    db = str(tmp_path / "runs.db")
    flujo("run", "tests.cli_pipelines:pipeline", "--input", "x", "--run-id", "r1", "--db", db)
    with raw_sqlite(db) as connection:
        connection.execute("UPDATE runs SET status = 'running', owner = 'worker-7'")
    error = one_error_line(flujo("runs", "delete", "r1", "--db", db))
    assert "is running (owned by worker-7)" in error and "--force" in error
    assert _ids(flujo("runs", "list", "--db", db)) == ["r1"]
    assert flujo("runs", "delete", "r1", "--force", "--db", db).returncode == 0
    assert _ids(flujo("runs", "list", "--db", db)) == []


def test_inspecting_a_store_that_does_not_exist_creates_nothing(tmp_path):
    missing = tmp_path / "nowhere.db"
    for args in (("runs", "list"), ("runs", "show", "r1"), ("runs", "delete", "r1")):
        error = one_error_line(flujo(*args, "--db", str(missing)))
        assert f"no store at {missing}" in error
    assert not missing.exists()
