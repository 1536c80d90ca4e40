"""Limit flags on ``run`` and ``resume``: each overrides only its own dimension."""

from __future__ import annotations

import pytest

from tests.cli_run import flujo, ok_json, one_error_line


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "runs.db")


def limits(cost=None, tokens=None, requests=None) -> dict:
    return {
        "total_cost_usd_limit": cost,
        "total_tokens_limit": tokens,
        "total_requests_limit": requests,
    }


def stopped_two_limits(db, *flags: str) -> dict:
    """``run`` of two_limits with ``flags``, stopped by a budget (exit 3).

    two_limits: a Runner with $10 and 1000 tokens; "big" spends $2 and 10 tokens.
    """
    done = flujo("run", "tests.cli_pipelines:two_limits", "--input", "x", *flags, "--db", db)
    return ok_json(done, 3)


def test_token_limit_keeps_the_runners_cost_limit(db):
    document = stopped_two_limits(db, "--token-limit", "5")
    assert document["limits"] == limits(cost=10.0, tokens=5)
    assert document["error"] == "Token limit of 5 exceeded"


def test_cost_limit_keeps_the_runners_token_limit(db):
    document = stopped_two_limits(db, "--cost-limit", "1.5")
    assert document["limits"] == limits(cost=1.5, tokens=1000)
    assert document["error"] == "Cost limit of $1.5 exceeded"


def test_request_limit_counts_agent_calls_and_keeps_the_others(db):
    document = stopped_two_limits(db, "--request-limit", "1")
    assert document["limits"] == limits(cost=10.0, tokens=1000, requests=1)
    assert document["error"] == "Request limit of 1 exceeded"
    assert document["total_requests"] == 1
    fits = flujo(
        "run", "tests.cli_pipelines:pipeline", "--input", "x", "--request-limit", "2", "--db", db
    )
    assert ok_json(fits)["limits"] == limits(requests=2)


def test_a_budget_stop_resumed_with_a_higher_limit_continues_with_its_spend(db):
    stopped = stopped_two_limits(db, "--cost-limit", "1.5", "--run-id", "b1")
    assert stopped["total_cost_usd"] == 2.0
    again = flujo("resume", "b1", "--db", db)  # same limits: stopped again, nothing spent
    document = ok_json(again, 3)
    assert document["error"] == "Cost limit of $1.5 exceeded" and document["total_cost_usd"] == 2.0
    raised = flujo("resume", "b1", "--cost-limit", "5", "--db", db)
    document = ok_json(raised)
    assert document["status"] == "completed" and document["output"] == "x>big>after"
    # "big" ran once (its $2 counted once), "after" once: two requests in all.
    assert document["total_cost_usd"] == 2.01 and document["total_requests"] == 2
    assert document["limits"] == limits(cost=5.0, tokens=1000)
    stored = ok_json(flujo("runs", "show", "b1", "--db", db))
    assert stored["limits"] == limits(cost=5.0, tokens=1000)


def test_resume_flags_override_only_their_dimension(db):
    stopped_two_limits(db, "--token-limit", "5", "--run-id", "b2")
    document = ok_json(flujo("resume", "b2", "--request-limit", "9", "--db", db), 3)
    assert document["limits"] == limits(cost=10.0, tokens=5, requests=9)
    done = ok_json(flujo("resume", "b2", "--token-limit", "100", "--db", db))
    assert done["limits"] == limits(cost=10.0, tokens=100, requests=9)
    assert done["total_tokens"] == 20


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--cost-limit", "-1"), ("--token-limit", "1.5"), ("--request-limit", "many")],
)
def test_a_bad_limit_is_one_line(db, flag, value):
    error = one_error_line(
        flujo("run", "tests.cli_pipelines:pipeline", "--input", "x", flag, value, "--db", db)
    )
    assert f"Invalid value for '{flag}'" in error
