"""The interface the runner uses to keep run state; any backend can implement it."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..context import RunStatus
from .models import RunState, RunSummary


@runtime_checkable
class StateStore(Protocol):
    """Durable (or not) keeping of :class:`RunState`, keyed by run id.

    ``save_run`` is all-or-nothing: a state that cannot be stored raises and leaves
    the previous save in place. ``load_run`` returns None for an unknown run id.

    A store may set ``durable = False`` (as :class:`MemoryStore` does) when its saves
    cannot outlive the process: the runner then skips the per-step checkpoints that
    only crash recovery needs, and saves at start, pause, stop and cancel.
    """

    async def save_run(self, state: RunState) -> None: ...

    async def load_run(self, run_id: str) -> RunState | None: ...

    async def list_runs(self, status: RunStatus | None = None) -> list[RunSummary]: ...

    async def delete_run(self, run_id: str) -> bool: ...
