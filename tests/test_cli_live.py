"""The live view in a real terminal (a pty read through pyte): resumes, final
statuses, reasons, containers and branch order."""

from __future__ import annotations

import signal
import subprocess

import pytest

from tests.cli_pty import Terminal, lines_with
from tests.cli_run import CLI, ENV, ROOT

HANG = {"FLUJO_TEST_HANG": "1"}


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "runs.db")


def cancelled_after_first_step(db: str, run_id: str) -> None:
    """A run of ``interruptible`` stopped by Ctrl-C in its second step ($0.01 spent)."""
    process = subprocess.Popen(
        [
            CLI,
            "run",
            "tests.cli_pipelines:interruptible",
            "--input",
            "x",
            "--run-id",
            run_id,
            "--db",
            db,
        ],
        cwd=ROOT,
        env={**ENV, **HANG},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr.readline().strip() == "READY"
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130


def title(text: str) -> str:
    """The view's title line (a hanging agent may have printed READY above it)."""
    return next(line for line in text.splitlines() if " · " in line)


def test_a_resume_shows_the_whole_run_from_its_stored_spend(db):
    cancelled_after_first_step(db, "c1")
    with Terminal("resume", "c1", "--db", db, extra_env=HANG) as terminal:
        # The resumed step hangs: nothing new is spent, so whatever the view shows was
        # there from the start.
        screen = terminal.wait_for(lambda text: lines_with(text, "slow", "running"))
        assert "resumed c1 · running" in title(screen)
        [first] = lines_with(screen, "✓ first")
        assert "earlier" in first and "attempts=1" in first
        [spend] = lines_with(screen, "spend")
        assert "$0.01" in spend
        assert lines_with(screen, "tokens", "10")
        terminal.interrupt()
        code, screen = terminal.finish()
    assert code == 130
    assert "resumed c1 · cancelled" in title(screen)
    [slow] = lines_with(screen, "slow")
    assert "⊘" in slow and "cancelled" in slow and "running" not in screen
    assert "flujo-trio resume c1 --db" in screen
    with Terminal("resume", "c1", "--db", db) as terminal:
        code, screen = terminal.finish()
    assert code == 0
    assert "resumed c1 · completed" in title(screen)
    assert "earlier" in lines_with(screen, "✓ first")[0]
    assert "earlier" not in lines_with(screen, "slow")[0]
    assert 'output: "x>first>finished"' in screen


def test_ctrl_c_ends_the_view_on_cancelled(db):
    args = (
        "run",
        "tests.cli_pipelines:interruptible",
        "--input",
        "x",
        "--run-id",
        "c2",
        "--db",
        db,
    )
    with Terminal(*args, extra_env=HANG) as terminal:
        terminal.wait_for(lambda text: lines_with(text, "slow", "running"))
        terminal.interrupt()
        code, screen = terminal.finish()
    assert code == 130
    assert "run c2 · cancelled" in title(screen)
    assert "⊘ slow  cancelled" in screen


def _failed_says_why(screen: str) -> None:
    [broken] = lines_with(screen, "broken")
    assert "✗" in broken and "failed" in broken and "the model is down" in broken


def _denied_says_why(screen: str) -> None:
    for branch in ("branch_a/work_a", "branch_b/work_b"):
        [line] = lines_with(screen, branch)
        assert "denied" in line and "Token limit of 100 reached" in line
        assert "attempts" not in line
    [fanout] = lines_with(screen, "fanout  failed")
    assert "Token limit" not in fanout  # its branches say it


def _paused_says_what_it_asks(screen: str) -> None:
    [approve] = lines_with(screen, "approve")
    assert "⏸" in approve and "Paused: x>draft" in approve and "attempts" not in approve


@pytest.mark.parametrize(
    ("target", "code", "status", "says_why"),
    [
        ("tests.cli_pipelines:human", 4, "paused", _paused_says_what_it_asks),
        ("tests.cli_pipelines:failing", 1, "failed", _failed_says_why),
        ("tests.cli_pipelines:denied", 3, "budget_exceeded", _denied_says_why),
    ],
)
def test_the_view_ends_on_the_final_status_and_says_why(db, target, code, status, says_why):
    with Terminal("run", target, "--input", "x", "--db", db) as terminal:
        exit_code, screen = terminal.finish()
    assert exit_code == code
    assert title(screen).split(" · ")[-2] == status
    assert "running" not in screen
    says_why(screen)


def test_containers_show_what_counts_for_them(db):
    with Terminal("run", "tests.cli_pipelines:containers", "--input", "x", "--db", db) as terminal:
        code, screen = terminal.finish()
    assert code == 0
    assert "attempts=0" not in screen
    assert "iterations=2" in lines_with(screen, "refine  ok")[0]
    assert "branch=long" in lines_with(screen, "route")[0]
    assert "2 branches" in lines_with(screen, "reviews")[0]
    assert "3 items" in lines_with(screen, "per_item  ok")[0]
    [style] = lines_with(screen, "✓ style  ok")
    assert "attempts" not in style  # a branch of two steps: its steps count
    assert len(lines_with(screen, "check_style  ok  attempts=1")) == 1
    assert len(lines_with(screen, "facts/check_facts  ok  attempts=1")) == 1


def test_branches_once_each_in_declared_order(db):
    # branch_a is declared first; all three start together and finish in any order.
    for _ in range(2):
        with Terminal(
            "run", "tests.cli_pipelines:limited", "--input", "go", "--db", db
        ) as terminal:
            code, screen = terminal.finish()
        assert code == 0
        rows = [lines_with(screen, f"branch_{c}/work_{c}") for c in "abc"]
        assert [len(found) for found in rows] == [1, 1, 1], screen
        order = [screen.index(found[0]) for found in rows]
        assert order == sorted(order), screen
        assert len(lines_with(screen, "✓", "work_a")) == 1  # not nested under its branch
