"""The interface the runner uses to keep run state; any backend can implement it.

One contract, every store (memory, SQLite, PostgreSQL):

- ``create_run`` inserts a new run, owned by ``state.owner``, only if its id is
  free (atomically, also across processes).
- ``claim_run`` takes a stored run over for a resume: a compare-and-set on the
  version the caller loaded, refused while a live owner holds the lease.
- ``encode_entry`` snapshots a journal entry the moment it is recorded (a copy,
  or its serialized form), so later changes to live objects cannot alter it;
  ``append`` writes snapshots, the run's totals and a fresh lease in one
  transaction, only while ``owner`` still owns the run. Given ``finish``, the same
  transaction also records the run's new status and context, and gives the run up
  unless it is still running.
- ``renew`` pushes the owner's lease forward.
- ``save_run`` stores a whole state as it is (header and journal), unconditionally.

Writes are all-or-nothing: a state that cannot be stored raises and leaves what
was stored before as it was. ``load_run`` returns None for an unknown run id.

``durable`` says whether saves outlive the process. The runner waits for a durable
store to hold each finished call before its branch starts the next one; for a store
that is not durable it writes the journal when the run stops, pauses or ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

from ..context import PipelineContext, RunStatus
from ..usage import UsageLimits
from .journal import Entry
from .records import RunState, RunSummary, Spent


class ClosesOnExit:
    """``async with store:`` closes the store on the way out (every store has it)."""

    async def aclose(self) -> None:
        """Release what the store holds (connections, pools); nothing for some stores."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class Finish:
    """The header changes that go with the last write of an execution (or a pause).

    ``context`` None keeps the stored context (when the live one cannot be stored).
    """

    __slots__ = ("context", "status")

    def __init__(self, status: RunStatus, context: PipelineContext | None) -> None:
        self.status, self.context = status, context


@runtime_checkable
class StateStore(Protocol):
    """Where runs are kept; see the module docstring for the contract."""

    durable: bool
    lease_s: float

    def encode_entry(self, entry: Entry) -> Any: ...

    async def create_run(self, state: RunState) -> None: ...

    async def claim_run(
        self, run_id: str, owner: str, *, expected_version: int | None, limits: UsageLimits
    ) -> RunState: ...

    async def append(
        self,
        run_id: str,
        owner: str,
        entries: Sequence[Any],
        spent: Spent,
        *,
        finish: Finish | None = None,
    ) -> None: ...

    async def renew(self, run_id: str, owner: str) -> None: ...

    async def save_run(self, state: RunState) -> None: ...

    async def load_run(self, run_id: str) -> RunState | None: ...

    async def list_runs(
        self,
        status: RunStatus | None = None,
        *,
        pipeline: str | None = None,
        since: datetime | None = None,
        limit: int | None = None,
    ) -> list[RunSummary]: ...

    async def get_summary(self, run_id: str) -> RunSummary | None: ...

    async def delete_run(self, run_id: str) -> bool: ...

    async def aclose(self) -> None: ...
