"""The default store: runs kept in this process as copies, nothing serialized.

Checkpoints are real deep copies (a value that cannot be copied fails the save with
:class:`SerializationError`), so later changes to live objects never alter what was
saved, and a resume gets copies too. Finished runs (completed or failed) are kept up
to ``max_finished``, oldest evicted first, so a long-running service does not grow
without bound; runs that can still be resumed are never evicted. Ownership works as
in the durable stores, within this process. Lost when the process ends.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import attrs

from ..context import RunStatus, utc_now
from ..copying import copy_attrs_fields, deep_copy
from ..errors import ConfigurationError, ResumeError
from ..usage import UsageLimits
from .journal import CallRecord, Entry, SavedStep, StepSnapshot, entry_of
from .owner import (
    DEFAULT_LEASE_S,
    Claim,
    Holding,
    check_lease,
    claim_refusal,
    lost_ownership,
    run_exists,
)
from .protocol import ClosesOnExit, Finish
from .records import RunState, RunSummary, Spent, listing_filters

_FINAL = (RunStatus.COMPLETED, RunStatus.FAILED)


def _check_max_finished(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(f"MemoryStore.max_finished must be an int >= 0, got {value!r}")
    return value


_ATOMS = (type(None), bool, int, float, str, bytes)


def copy_entry(entry: Entry) -> Entry:
    """A journal entry whose payloads (outputs, context changes) are copies."""
    if isinstance(entry, SavedStep):
        if type(entry.output) in _ATOMS and not entry.metadata and not entry.changes:
            return entry  # frozen, and nothing in it can change

        changes = [
            attrs.evolve(c, value=deep_copy(c.value, what=f"a change to {c.field!r}"))
            for c in entry.changes
        ]
        return attrs.evolve(
            entry,
            output=deep_copy(entry.output, what=f"the output of {entry.name!r}"),
            metadata=deep_copy(entry.metadata, what=f"the metadata of {entry.name!r}"),
            changes=changes,
        )
    if isinstance(entry, CallRecord):
        if type(entry.output) in _ATOMS:
            return entry
        return attrs.evolve(entry, output=deep_copy(entry.output, what="a call's output"))
    return attrs.evolve(entry, value=deep_copy(entry.value, what="a decision"))


@attrs.define
class _Kept:
    state: RunState
    journal: list[Entry | StepSnapshot]


class MemoryStore(ClosesOnExit):
    """Keeps run states in this process: any copyable Python value works.

    Args:
        max_finished: completed and failed runs kept (oldest evicted first).
        lease_s: how long an owner's lease lasts without renewal.
        clock: the wall clock leases are measured on (timezone-aware UTC).
    """

    #: Saves cannot outlive the process, so the runner writes the journal when a run
    #: stops, pauses or ends rather than after every call.
    durable = False

    def __init__(
        self,
        *,
        max_finished: int = 1000,
        lease_s: float = DEFAULT_LEASE_S,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.max_finished = _check_max_finished(max_finished)
        self.lease_s = check_lease(lease_s)
        self.clock = clock
        self._runs: dict[str, _Kept] = {}
        self._finished: OrderedDict[str, None] = OrderedDict()

    async def aclose(self) -> None:
        """Nothing to release; present so every store closes the same way."""

    def encode_entry(self, entry: Entry) -> Entry:
        return copy_entry(entry)

    #: Finished steps whose output cannot change may be handed over as their builders
    #: (see ``StepSnapshot``): the saved form is made only if the run is ever loaded.
    keeps_snapshots = True

    # -- writes ------------------------------------------------------------------------

    def _copied(self, state: RunState) -> RunState:
        what = f"run {state.run_id!r}"
        return attrs.evolve(
            state,
            input=deep_copy(state.input, what=f"the input of {what}"),
            context=copy_attrs_fields(state.context, what=f"the context of {what}"),
            initial_context=(
                None
                if state.initial_context is None
                else copy_attrs_fields(state.initial_context, what=f"the context of {what}")
            ),
        )

    def _track(self, state: RunState) -> None:
        self._finished.pop(state.run_id, None)
        if state.status in _FINAL:
            self._finished[state.run_id] = None
            while len(self._finished) > self.max_finished:
                evicted, _ = self._finished.popitem(last=False)
                self._runs.pop(evicted, None)

    async def create_run(self, state: RunState) -> None:
        if state.run_id in self._runs:
            raise run_exists(state.run_id)
        now = self.clock()
        saved = attrs.evolve(
            self._copied(state),
            created_at=now,
            updated_at=now,
            owner_since=now if state.owner else None,
            lease_expires_at=Claim(state.owner, now, self.lease_s).expires if state.owner else None,
            version=1,
        )
        self._runs[state.run_id] = _Kept(saved, [copy_entry(e) for e in state.journal])
        self._track(saved)

    async def claim_run(
        self,
        run_id: str,
        owner: str,
        *,
        expected_version: int | None,
        limits: UsageLimits,
    ) -> RunState:
        claim = Claim(owner, self.clock(), self.lease_s)
        kept = self._runs.get(run_id)
        if kept is None:
            raise ResumeError(f"No run {run_id!r} in this store")
        refusal = claim_refusal(Holding.of(kept.state), claim, expected_version)
        if refusal is not None:
            raise refusal
        kept.state = attrs.evolve(
            kept.state,
            status=RunStatus.RUNNING,
            owner=claim.owner,
            owner_since=claim.now,
            lease_expires_at=claim.expires,
            limits=limits,
            updated_at=claim.now,
            version=kept.state.version + 1,
        )
        self._track(kept.state)
        return self._loaded(kept)

    def _owned(self, run_id: str, owner: str) -> _Kept:
        kept = self._runs.get(run_id)
        if kept is None or kept.state.owner != owner:
            raise lost_ownership(run_id, kept.state.owner if kept else None)
        return kept

    async def append(
        self,
        run_id: str,
        owner: str,
        entries: Sequence[Any],
        spent: Spent,
        *,
        finish: Finish | None = None,
    ) -> None:
        kept = self._owned(run_id, owner)
        now = self.clock()
        changes: dict[str, Any] = {}
        if finish is not None:
            if finish.context is not None:
                what = f"the context of run {run_id!r}"
                changes["context"] = copy_attrs_fields(finish.context, what=what)
            changes["status"] = finish.status
            if finish.status is not RunStatus.RUNNING:
                changes.update(owner=None, owner_since=None, lease_expires_at=None)
        kept.journal.extend(entries)
        fields: dict[str, Any] = {
            "spent": spent,
            "updated_at": now,
            "lease_expires_at": Claim(owner, now, self.lease_s).expires,
            "version": kept.state.version + 1,
        }
        fields.update(changes)
        kept.state = attrs.evolve(kept.state, **fields)
        self._track(kept.state)

    async def renew(self, run_id: str, owner: str) -> None:
        kept = self._owned(run_id, owner)
        kept.state = attrs.evolve(
            kept.state, lease_expires_at=Claim(owner, self.clock(), self.lease_s).expires
        )

    async def save_run(self, state: RunState) -> None:
        saved = self._copied(state)
        previous = self._runs.get(state.run_id)
        version = previous.state.version + 1 if previous is not None else 1
        created = previous.state.created_at if previous is not None else state.created_at
        saved = attrs.evolve(saved, created_at=created, updated_at=self.clock(), version=version)
        self._runs[state.run_id] = _Kept(saved, [copy_entry(e) for e in state.journal])
        self._track(saved)

    # -- reads -------------------------------------------------------------------------

    def _loaded(self, kept: _Kept) -> RunState:
        state = self._copied(kept.state)
        journal = tuple(copy_entry(entry_of(item)) for item in kept.journal)
        return attrs.evolve(state, journal=journal)

    async def load_run(self, run_id: str) -> RunState | None:
        kept = self._runs.get(run_id)
        return self._loaded(kept) if kept is not None else None

    async def list_runs(
        self,
        status: RunStatus | None = None,
        *,
        pipeline: str | None = None,
        since: datetime | None = None,
        limit: int | None = None,
    ) -> list[RunSummary]:
        since = listing_filters(since, limit)
        rows = [
            summary_of(kept.state)
            for kept in self._runs.values()
            if (status is None or kept.state.status is status)
            and (pipeline is None or kept.state.pipeline_name == pipeline)
            and (since is None or kept.state.updated_at >= since)
        ]
        ordered = sorted(rows, key=lambda row: row.run_id)
        ordered.sort(key=lambda row: row.updated_at, reverse=True)
        return ordered[:limit] if limit is not None else ordered

    async def get_summary(self, run_id: str) -> RunSummary | None:
        kept = self._runs.get(run_id)
        return summary_of(kept.state) if kept is not None else None

    async def delete_run(self, run_id: str) -> bool:
        self._finished.pop(run_id, None)
        return self._runs.pop(run_id, None) is not None

    def __len__(self) -> int:
        return len(self._runs)


def summary_of(state: RunState) -> RunSummary:
    return RunSummary(
        run_id=state.run_id,
        status=state.status,
        pipeline_name=state.pipeline_name,
        created_at=state.created_at,
        updated_at=state.updated_at,
        total_cost_usd=state.total_cost_usd,
        total_tokens=state.spent.tokens,
        origin=state.origin,
        owner=state.owner,
        total_requests=state.spent.requests,
    )
