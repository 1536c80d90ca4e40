"""The default store: live objects in this process, nothing serialized."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

from ..context import RunStatus
from .models import RunState, RunSummary


def _snapshot(state: RunState) -> RunState:
    """A deep copy, so later changes to the live run never alter a checkpoint; a state
    holding values that cannot be copied (locks, clients) is kept live instead."""
    try:
        return copy.deepcopy(state)
    except Exception:
        return copy.copy(state)


class MemoryStore:
    """Keeps run states in this process: any Python value works, nothing is serialized.

    States are deep-copied when possible, so a later change to a live context (or a
    rejected resume) never alters what was saved. Lost when the process ends.
    """

    def __init__(self) -> None:
        self._runs: dict[str, RunState] = {}

    async def save_run(self, state: RunState) -> None:
        saved = _snapshot(state)
        previous = self._runs.get(state.run_id)
        if previous is not None:
            saved.created_at = previous.created_at
        saved.updated_at = datetime.now(UTC)
        self._runs[state.run_id] = saved

    async def load_run(self, run_id: str) -> RunState | None:
        state = self._runs.get(run_id)
        return _snapshot(state) if state is not None else None

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
