"""Machine output is plain JSON a jq user expects: no internal tags, objects as objects."""

from __future__ import annotations

import pytest

from tests.cli_run import ROOT, flujo, ok_json

TAGS = ("__flujo_type__", "__type__")


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "runs.db")


def assert_plain(done) -> None:
    assert not any(tag in done.stdout for tag in TAGS), done.stdout


def test_the_demo_prints_plain_json_everywhere(db):
    demo = str(ROOT / "examples" / "demo_pipeline.py") + ":runner"
    paused = flujo("run", demo, "--input", "agent pipelines", "--run-id", "d1", "--db", db)
    assert ok_json(paused, 4)["pause_message"] == "Publish the reviewed draft?"
    answer = '{"approved": true, "note": "ship it"}'
    done = flujo("resume", "d1", "--input", answer, "--db", db)
    document = ok_json(done)
    steps = {step["name"]: step for step in document["steps"]}
    assert steps["approve"]["output"] == {"approved": True, "note": "ship it"}
    assert steps["approve"]["output_type"] == "Approval"
    assert document["output"] == "published after 3 reviews"
    assert [b["name"] for b in steps["reviews"]["steps"]] == ["style", "facts", "tone"]
    shown = flujo("runs", "show", "d1", "--db", db)
    assert ok_json(shown)["steps"][2]["output"] == {"approved": True, "note": "ship it"}
    exported = flujo("runs", "export", "d1", "--db", db)
    assert ok_json(exported)["context"]["reviews"] == ["style", "facts", "tone"]
    listed = flujo("runs", "list", "--db", db)
    for output in (paused, done, shown, exported, listed):
        assert_plain(output)


REPORT = {
    "title": "x",
    "mood": "calm",
    "corner": {"x": 1, "y": 2},
    "verdict": {"score": 0.5, "tags": ["a"]},
    "pair": [1, "one"],
    "labels": ["x", "y"],
    "when": "2026-05-01T12:00:00+00:00",
    "extra": {"anything": ["calm", [1, 3]], "7": "int key"},
}


def _sorted_sets(report: dict) -> dict:
    """Sets have no order: compare them sorted."""
    extra = report["extra"]
    return {
        **report,
        "labels": sorted(report["labels"]),
        "extra": {**extra, "anything": [extra["anything"][0], sorted(extra["anything"][1])]},
    }


def test_outputs_are_their_json_form_with_the_type_beside(db):
    # attrs, a dataclass, a pydantic model, an enum, a tuple, sets, a datetime and an
    # int dict key, nested in one output.
    done = flujo("run", "tests.cli_pipelines:typed", "--input", "x", "--run-id", "t1", "--db", db)
    document = ok_json(done)
    assert_plain(done)
    assert _sorted_sets(document["output"]) == REPORT
    assert document["output_type"] == "Report"
    assert document["steps"][0]["output_type"] == "Report"
    shown = flujo("runs", "show", "t1", "--db", db)
    assert_plain(shown)
    stored = ok_json(shown)
    assert _sorted_sets(stored["output"]) == REPORT
    assert "output_type" not in stored  # a stored run is read without its classes


def test_json_steps_say_their_kind_and_what_counts_for_it(db):
    document = ok_json(flujo("run", "tests.cli_pipelines:containers", "--input", "x", "--db", db))
    steps = {step["name"]: step for step in document["steps"]}
    assert steps["refine"]["kind"] == "loop" and steps["refine"]["iterations"] == 2
    assert "attempts" not in steps["refine"]
    assert steps["route"]["metadata"] == {"executed_branch_key": "long"}
    assert "attempts" not in steps["reviews"] and steps["reviews"]["kind"] == "parallel"
    style = steps["reviews"]["steps"][0]
    assert style["kind"] == "branch" and "attempts" not in style
    assert style["steps"][0] == {**style["steps"][0], "kind": "step", "attempts": 1}
    assert [item["name"] for item in steps["per_item"]["steps"]] == [
        "per_item[0]",
        "per_item[1]",
        "per_item[2]",
    ]
    assert {item["kind"] for item in steps["per_item"]["steps"]} == {"item"}
