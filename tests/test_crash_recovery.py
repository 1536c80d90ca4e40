"""A run whose process is killed with SIGKILL resumes from its last checkpoint."""

from __future__ import annotations

from flujo_trio import RunStatus, SqliteStore
from tests.crash_pipeline import runner
from tests.helpers import child_until


async def test_sigkill_mid_run_then_resume_skips_completed_steps(tmp_path):
    db, log = tmp_path / "runs.db", tmp_path / "calls.log"
    await child_until("tests.crash_pipeline", str(db), str(log), "run-1")

    assert log.read_text().split() == ["one", "two"]
    state = await SqliteStore(db).load_run("run-1")
    assert state.status is RunStatus.RUNNING
    assert state.spent_tokens == 1
    one, two = state.steps  # "two" was in flight: stored as interrupted, not as done
    assert one.name == "one" and one.success
    assert two.name == "two" and not two.success and two.metadata["cancelled"] is True

    result = await runner(db, log, hang=False).resume("run-1")
    assert result.success and result.output == "start>one>two>three"
    assert log.read_text().split() == ["one", "two", "two", "three"]
    assert [s.name for s in result.step_history] == ["one", "two", "three"]
    assert result.total_tokens == 3
