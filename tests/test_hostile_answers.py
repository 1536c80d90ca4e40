"""A person's answer is data: it never chooses code, and a refused answer changes nothing.

The canary module (tests/canary.py) writes to a log file when it is imported or its
class is built; it is never imported by this process, so an empty log proves that an
answer naming it reached no code.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import attrs
import pytest

from flujo_trio import HumanStep, ResumeError, Runner, RunStatus, SqliteStore, Step
from flujo_trio.testing import StubAgent
from tests.helpers import raw_sqlite


@attrs.define
class Answer:
    approved: bool
    score: int = 0
    extra: dict[str, Any] = attrs.field(factory=dict)


def rows(path: Path) -> tuple[list[Any], list[Any]]:
    with raw_sqlite(path) as db:
        return (
            db.execute("SELECT * FROM runs ORDER BY run_id").fetchall(),
            db.execute("SELECT * FROM journal ORDER BY run_id, seq").fetchall(),
        )


def nothing_at(*paths: Path) -> bool:
    """No side effect left a file behind (the canary's log, a command's output)."""
    return not any(path.exists() for path in paths)


@pytest.fixture
def canary_log(tmp_path, monkeypatch):
    log = tmp_path / "canary.log"
    monkeypatch.setenv("FLUJO_TRIO_CANARY_LOG", str(log))
    return log


TAGGED = [
    {"__flujo_type__": "attrs", "class": "tests.canary.Canary", "value": {"note": "x"}},
    {"__flujo_type__": "attrs", "class": "subprocess.Popen", "value": {"args": ["touch", "p"]}},
    {"__flujo_type__": "enum", "class": "os.system", "value": "touch pwned"},
    {"__type__": "tests.canary.CanaryContext", "run_id": None},
]


@pytest.mark.parametrize("tag", TAGGED)
@pytest.mark.parametrize("input_type", [Answer, None])
async def test_tags_in_an_answer_stay_plain_data(tmp_path, canary_log, tag, input_type):
    db = tmp_path / "runs.db"
    runner = Runner(
        HumanStep("ask", input_type=input_type) >> Step("after", StubAgent(["ok"])),
        store=SqliteStore(db),
    )
    paused = await runner.run("q")
    answer = {"approved": True, "extra": {"payload": tag}} if input_type else {"payload": tag}
    done = await runner.resume(paused, answer)
    assert done.success
    given = done.step_history[0].output
    payload = (given.extra if input_type else given)["payload"]
    assert payload == tag and type(payload) is dict  # kept as the plain dict it was
    # Stored and loaded again in a fresh store object: still plain data.
    async with SqliteStore(db) as fresh:
        stored = await fresh.load_run(paused.run_id)
    kept = stored.steps[0].output
    assert (kept.extra if input_type else kept)["payload"] == tag
    assert nothing_at(canary_log, tmp_path / "p", Path("pwned"))


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        ({"approved": True, "extra": {"x": math.nan}}, r"\$\['extra'\]\['x'\] is nan"),
        ({"approved": True, "extra": {"x": math.inf}}, "not a finite number"),
        ({"approved": True, "extra": {"x": b"raw"}}, "is a bytes"),
        ({"approved": True, "extra": {"x": object()}}, "is a object"),
        ({"approved": True, "score": True}, "expected int, got bool"),
        ({"approved": 1}, "expected bool, got int"),
        ({"approved": True, "unknown": 1}, "unknown"),
        ({"approved": True, "extra": {1: "non-text key"}}, "non-text key"),
        ("yes", "expected a JSON object with the fields of Answer"),
        (True, "expected a JSON object"),
    ],
)
async def test_bad_answers_are_refused_and_the_stored_run_is_byte_identical(
    tmp_path, canary_log, answer, why
):
    db = tmp_path / "runs.db"
    runner = Runner(
        HumanStep("ask", input_type=Answer) >> Step("after", StubAgent(["ok"])),
        store=SqliteStore(db),
    )
    await runner.run("q", run_id="r")
    before = rows(db)
    with pytest.raises(ResumeError, match=why):
        await runner.resume("r", answer)
    assert rows(db) == before
    assert (await runner.resume("r", {"approved": False})).success
    assert nothing_at(canary_log)


async def test_an_answer_for_a_bool_or_int_input_type_is_strict(tmp_path):
    runner = Runner(HumanStep("n", input_type=int), store=SqliteStore(tmp_path / "n.db"))
    paused = await runner.run("how many?")
    for bad in (True, "3", 3.0, None):
        with pytest.raises(ResumeError):
            await runner.resume(paused, bad if bad is not None else math.nan)
    assert (await runner.resume(paused, 3)).step_history[0].output == 3
    state = await runner.store.load_run(paused.run_id)
    assert state.status is RunStatus.COMPLETED
