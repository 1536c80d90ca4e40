"""The mutable state a run carries from step to step, and the run's status."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

import attrs


class RunStatus(enum.StrEnum):
    """Where a run stands; stored by value so the SQLite rows stay readable."""

    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    BUDGET_EXCEEDED = "budget_exceeded"


def utc_now() -> datetime:
    """Timestamps flujo-trio stores are timezone-aware UTC."""
    return datetime.now(UTC)


@attrs.define
class HumanInteraction:
    """One question put to a person and the answer they gave."""

    message_to_human: str
    """What the run asked."""
    human_response: Any
    """The structured answer."""
    timestamp: datetime = attrs.field(factory=utc_now)
    """When the answer arrived (UTC)."""


@attrs.define
class PipelineContext:
    """State shared by the steps of one run; subclass it (with attrs) to add fields.

    Parallel branches each get a deep copy, merged back by diffing against the
    snapshot taken at the fork, so a subclass's fields must be deep-copyable.
    """

    run_id: str | None = None
    """The run this context belongs to; set by the runner."""
    status: RunStatus = RunStatus.RUNNING
    """Mirrors the run's status."""
    pause_message: str | None = None
    """The question a paused run is waiting on."""
    hitl_history: list[HumanInteraction] = attrs.field(factory=list)
    """Every human interaction of the run, oldest first."""
    step_outputs: dict[str, Any] = attrs.field(factory=dict)
    """The output of every step that succeeded, by step name."""
