"""The default store: live objects in this process, nothing serialized."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import TypeVar

from ..context import RunStatus
from ..runtime.record import StepRecord
from .models import RunState, RunSummary

T = TypeVar("T")


def _copy(value: T) -> T:
    """A deep copy, or the live value when it holds things that cannot be copied."""
    try:
        return copy.deepcopy(value)
    except Exception:
        return value


class MemoryStore:
    """Keeps run states in this process: any Python value works, nothing is serialized.

    Checkpoints are copies, so later changes to the live run (or a rejected resume)
    never alter what was saved; values that cannot be copied (locks, clients) are kept
    live. A finished step's record is copied once and reused by later checkpoints of
    the run, so checkpointing after every step stays linear in the number of steps.
    Lost when the process ends.
    """

    #: Checkpoints here cannot outlive the process, so the runner saves only when a run
    #: starts, pauses, stops or is cancelled, not after every step.
    durable = False

    def __init__(self) -> None:
        self._runs: dict[str, RunState] = {}
        self._finished: dict[str, dict[int, tuple[StepRecord, StepRecord]]] = {}

    def _copy_record(self, run_id: str, record: StepRecord) -> StepRecord:
        cache = self._finished.setdefault(run_id, {})
        hit = cache.get(id(record))
        if hit is not None and hit[0] is record:
            return hit[1]
        copied = _copy(record)
        if record.finished or record.paused:
            cache[id(record)] = (record, copied)  # keeps ``record`` alive: ids stay unique
        return copied

    async def save_run(self, state: RunState) -> None:
        saved = copy.copy(state)
        saved.context = _copy(state.context)
        saved.input = _copy(state.input)
        saved.steps = [self._copy_record(state.run_id, record) for record in state.steps]
        previous = self._runs.get(state.run_id)
        if previous is not None:
            saved.created_at = previous.created_at
        saved.updated_at = datetime.now(UTC)
        self._runs[state.run_id] = saved

    async def load_run(self, run_id: str) -> RunState | None:
        state = self._runs.get(run_id)
        return _copy(state) if state is not None else None

    async def list_runs(self, status: RunStatus | None = None) -> list[RunSummary]:
        return [
            _summary(s)
            for s in sorted(self._runs.values(), key=lambda s: s.updated_at, reverse=True)
            if status is None or s.status is status
        ]

    async def get_summary(self, run_id: str) -> RunSummary | None:
        state = self._runs.get(run_id)
        return _summary(state) if state is not None else None

    async def delete_run(self, run_id: str) -> bool:
        self._finished.pop(run_id, None)
        return self._runs.pop(run_id, None) is not None


def _summary(s: RunState) -> RunSummary:
    return RunSummary(
        s.run_id,
        s.status,
        s.pipeline_name,
        s.created_at,
        s.updated_at,
        s.total_cost_usd,
        s.spent_tokens,
        s.origin,
    )
