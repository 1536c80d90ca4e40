"""Writing a run's journal: every finished call is stored before its branch moves on.

Entries are snapshotted by the store the moment they are recorded (a copy, or their
JSON), so what is written is the value as it was. For a durable store a writer task
commits whatever has accumulated in one transaction (group commit: one write for
many branches), and :meth:`RunJournal.sync` lets a branch wait until everything it
recorded is stored: the runtime calls it before starting an agent call, so a
finished call is never lost once a later call of its branch has started. For a store
that is not durable, entries are written when the run stops, pauses or ends.

A write that fails (the store refused it, or the run was taken over by another
process) stops the run: ``on_failure`` cancels it, and nothing more is written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import trio

from ..errors import FlujoTrioError, SerializationError, StoreError
from ..state.journal import Entry, FieldChange
from ..state.protocol import Finish, StateStore
from ..state.records import Spent
from .record import StepRecord

#: Outputs a later step cannot change in place.
_IMMUTABLE = frozenset({type(None), bool, int, float, str, bytes})


class RunJournal:
    """The journal writer of one execution of one run."""

    def __init__(
        self,
        store: StateStore,
        run_id: str,
        owner: str,
        spent: Callable[[], Spent],
        on_failure: Callable[[FlujoTrioError], None],
    ) -> None:
        self.store, self.run_id, self.owner = store, run_id, owner
        self.durable = bool(getattr(store, "durable", True))
        self._keeps_snapshots = bool(getattr(store, "keeps_snapshots", False))
        self._spent = spent
        self._on_failure = on_failure
        self._pending: list[Any] = []
        self._recorded = 0
        self._committed = 0
        self._wakeup = trio.Event()
        self._stored = trio.lowlevel.ParkingLot()
        self._writing = trio.Lock()
        self.closed = False
        """The last write (with the run's final status) is done: nothing more is written."""
        self.failure: FlujoTrioError | None = None

    def record(self, entry: Entry) -> None:
        """Snapshot ``entry`` now; it is written by the next commit (raises
        :class:`~flujo_trio.SerializationError` when it cannot be stored)."""
        try:
            self._pending.append(self.store.encode_entry(entry))
        except SerializationError as error:
            raise SerializationError(f"In run {self.run_id!r}: {error}") from error
        self._recorded += 1
        if self.durable:
            self._wakeup.set()

    def record_step(self, record: StepRecord, changes: list[FieldChange] | None = None) -> None:
        """Record a step that finished or paused.

        A store that is not durable writes only when the run stops, so a step whose
        output is immutable and that changed nothing is snapshotted then, from its
        record (which no longer changes): a fan-out of 10,000 branches then keeps no
        second object per step alive while it runs.
        """
        if not self.durable and not changes and type(record.output) in _IMMUTABLE:
            self._pending.append(record)
            self._recorded += 1
        else:
            self.record(record.saved(changes))

    def record_stopped(self, record: StepRecord) -> None:
        """Record a step the run stopped; if its output cannot be stored, the step is
        recorded without it (it runs again on resume anyway)."""
        if not self.durable and self._keeps_snapshots:
            self._pending.append(record)  # saved form made if the run is ever loaded
            self._recorded += 1
            return
        entry = record.saved()
        try:
            self.record(entry)
        except SerializationError:
            self.record(attrs.evolve(entry, output=None, metadata={}, changes=[]))

    async def sync(self) -> None:
        """Wait until everything recorded so far is stored (durable stores only)."""
        if not self.durable or self._committed >= self._recorded:
            await trio.lowlevel.checkpoint()
            return
        target = self._recorded
        while self._committed < target:
            if self.failure is not None:
                raise self.failure
            await self._stored.park()
        if self.failure is not None:
            raise self.failure

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The group-commit writer of a durable store; runs until cancelled."""
        task_status.started()
        while self.failure is None:
            await self._wakeup.wait()
            self._wakeup = trio.Event()
            await self._commit()

    async def renew(
        self, interval_s: float, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Keep the owner's lease alive while the run executes; runs until cancelled."""
        task_status.started()
        while self.failure is None:
            await trio.sleep(interval_s)
            async with self._writing:  # never between the last write and the run's end
                if self.closed or self.failure is not None:
                    return
                try:
                    await self.store.renew(self.run_id, self.owner)
                except FlujoTrioError as error:
                    self._fail(error)

    async def _commit(self, finish: Finish | None = None) -> None:
        async with self._writing:  # commits land in the order they were taken
            await self._commit_locked(finish)

    async def _commit_locked(self, finish: Finish | None) -> None:
        if self.failure is not None:
            return
        batch, self._pending = self._pending, []
        if not self._keeps_snapshots:
            batch = [
                self.store.encode_entry(item.saved()) if isinstance(item, StepRecord) else item
                for item in batch
            ]
        upto = self._recorded
        if not batch and finish is None:
            return
        try:
            await self.store.append(self.run_id, self.owner, batch, self._spent(), finish=finish)
        except SerializationError:
            # Only ``finish`` can fail to serialize here (entries were snapshotted when
            # recorded): keep the batch for the caller's next attempt.
            self._pending[:0] = batch
            raise
        except FlujoTrioError as error:
            self._fail(error)
            return
        except OSError as error:
            self._fail(StoreError(f"Could not write run {self.run_id!r}: {error}"))
            return
        except BaseException:
            # Cancelled before the store began the write (a write, once begun, runs to its
            # end in a worker thread): the batch is still to be written, by close().
            self._pending[:0] = batch
            raise
        self._committed = max(self._committed, upto)
        self._stored.unpark_all()
        if finish is not None:
            self.closed = True

    def _fail(self, error: FlujoTrioError) -> None:
        if self.failure is None:
            self.failure = error
            self._stored.unpark_all()
            self._on_failure(error)

    async def close(self, finish: Finish) -> None:
        """Write everything still pending, and ``finish`` with it, in one transaction."""
        await self._commit(finish)
        if self.failure is not None:
            raise self.failure
