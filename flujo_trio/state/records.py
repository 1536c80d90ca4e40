"""What a store keeps of a run besides its journal: a small header, and the summary
listings show. Everything here is frozen: saved records are facts, never builders."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import attrs

from ..context import PipelineContext, RunStatus, utc_now
from ..errors import ConfigurationError
from ..results import StepResult
from ..usage import UsageLimits
from .journal import Entry, results_from_journal


@attrs.frozen
class Spent:
    """A run's ledger as stored: what it spent, across every process that ran it."""

    cost_usd: Decimal = Decimal(0)
    tokens: int = 0
    requests: int = 0

    def __add__(self, other: Spent) -> Spent:
        return Spent(
            self.cost_usd + other.cost_usd,
            self.tokens + other.tokens,
            self.requests + other.requests,
        )


@attrs.frozen
class RunState:
    """Everything needed to show a run, and to resume it without redoing finished work."""

    run_id: str
    pipeline_name: str
    status: RunStatus
    input: Any
    """The run's original input (a resume replays from it)."""
    context: PipelineContext
    """The context as of the last save (start, pause, end, cancel)."""
    initial_context: PipelineContext | None = None
    """The context the run started with: replay starts here. None: same as ``context``."""
    journal: tuple[Entry, ...] = ()
    spent: Spent = attrs.field(factory=Spent)
    created_at: datetime = attrs.field(factory=utc_now)
    updated_at: datetime = attrs.field(factory=utc_now)
    limits: UsageLimits = attrs.field(factory=UsageLimits)
    """The limits the run was last started or resumed with."""
    origin: str | None = None
    """Where the pipeline came from (the CLI's TARGET), so a resume can find it."""
    shape: list[Any] | None = None
    """The pipeline's shape (kinds, names, nesting) when the run was created."""
    fingerprint: str | None = None
    owner: str | None = None
    """Who executes the run now (None when nobody does)."""
    owner_since: datetime | None = None
    lease_expires_at: datetime | None = None
    version: int = 0
    """Bumped by every write; ownership changes compare-and-set on it."""

    @property
    def spent_cost(self) -> Decimal:
        return self.spent.cost_usd

    @property
    def spent_tokens(self) -> int:
        return self.spent.tokens

    @property
    def total_cost_usd(self) -> float:
        return float(self.spent.cost_usd)

    @property
    def steps(self) -> list[StepResult]:
        """The stored step tree, rebuilt from the journal (finished, paused and stopped
        steps; steps that were running when the run stopped read as cancelled)."""
        return results_from_journal(self.journal, self.status)


@attrs.frozen
class RunSummary:
    """One row of ``list_runs()``."""

    run_id: str
    status: RunStatus
    pipeline_name: str
    created_at: datetime
    updated_at: datetime
    total_cost_usd: float
    total_tokens: int
    origin: str | None = None
    """Where the pipeline came from (the CLI's TARGET), if recorded."""
    owner: str | None = None
    """Who executes the run right now (None when nobody does)."""
    total_requests: int = 0
    error: str | None = None
    """Set when this run's stored row is damaged: what is wrong with it (the other
    fields are then placeholders)."""


def listing_filters(since: datetime | None, limit: int | None) -> datetime | None:
    """Check ``list_runs`` filters the same way for every store; ``since`` in UTC."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ConfigurationError(f"list_runs(limit=) must be an int >= 0 or None, got {limit!r}")
    if since is None:
        return None
    if not isinstance(since, datetime) or since.tzinfo is None:
        raise ConfigurationError(
            f"list_runs(since=) must be a timezone-aware datetime, got {since!r}: "
            "e.g. datetime.now(UTC) - timedelta(hours=2)"
        )
    return since.astimezone(UTC)


def timestamp(moment: datetime) -> str:
    """How SQL stores write times: UTC, fixed width, so text order is time order."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")
