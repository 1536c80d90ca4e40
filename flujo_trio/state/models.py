"""What a store keeps of a run: its full state, and the summary listings show."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import attrs

from ..context import PipelineContext, RunStatus, utc_now
from ..runtime.record import StepRecord
from ..usage import UsageLimits


@attrs.define
class RunState:
    """Everything needed to resume a run where it stopped, without redoing finished work."""

    run_id: str
    pipeline_name: str
    status: RunStatus
    input: Any
    """The run's original input (a resume replays from it)."""
    context: PipelineContext
    steps: list[StepRecord] = attrs.field(factory=list)
    """Records of the top-level steps that started; nested ones inside them."""
    spent_cost: Decimal = Decimal(0)
    """The governor's ledger: limits apply to the run across resumes."""
    spent_tokens: int = 0
    created_at: datetime = attrs.field(factory=utc_now)
    updated_at: datetime = attrs.field(factory=utc_now)
    limits: UsageLimits = attrs.field(factory=UsageLimits)
    """The limits the run was last started or resumed with."""
    origin: str | None = None
    """Where the pipeline came from (the CLI's TARGET), so a resume can find it."""

    @property
    def total_cost_usd(self) -> float:
        return float(self.spent_cost)


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
