"""Run events: what a stream consumer and every hook see, in order.

``path`` names a step by where it sits, e.g. ``("fanout", "branch_a", "summarize")``
for the ``summarize`` step of branch ``branch_a`` of the parallel step ``fanout``.
"""

from __future__ import annotations

from typing import Any

import attrs

from .results import PipelineResult, StepResult
from .usage import Usage, UsageLimits


@attrs.frozen
class RunStarted:
    """A run started, or a stored run resumed (``resumed`` is True then)."""

    run_id: str
    pipeline_name: str
    resumed: bool = False


@attrs.frozen
class StepStarted:
    """A step (or a parallel branch / map item) started."""

    path: tuple[str, ...]
    run_id: str | None = attrs.field(default=None, kw_only=True)
    """The run it belongs to (one hook may serve many concurrent runs)."""


@attrs.frozen
class StepFinished:
    """A step ended: succeeded, failed or paused (``result.metadata["paused"]``)."""

    path: tuple[str, ...]
    result: StepResult
    run_id: str | None = attrs.field(default=None, kw_only=True)


@attrs.frozen
class UsageUpdated:
    """The run's ledger changed: ``total`` is everything spent so far."""

    total: Usage
    limits: UsageLimits
    run_id: str | None = attrs.field(default=None, kw_only=True)


@attrs.frozen
class RunPaused:
    """The run paused for a person; ``message`` is what it asks."""

    run_id: str
    message: str | None
    result: PipelineResult


@attrs.frozen
class RunFinished:
    """The run ended (completed, failed, budget exceeded, paused or cancelled)."""

    result: PipelineResult


@attrs.frozen
class AgentDelta:
    """Text a streaming agent produced, as it arrives (``step`` is the step's path,
    ``"/"``-joined, e.g. ``"reviews/facts/review_facts"``).

    .. versionadded:: 0.2
    """

    run_id: str
    step: str
    text: str


@attrs.frozen
class ToolCalled:
    """An agent's model asked for a tool; ``arguments`` as the model sent them.

    .. versionadded:: 0.2
    """

    run_id: str
    step: str
    tool: str
    arguments: Any = None
    call_id: str | None = None


@attrs.frozen
class ToolReturned:
    """A tool call ended: ``result`` when it returned, ``error`` when it raised.

    .. versionadded:: 0.2
    """

    run_id: str
    step: str
    tool: str
    result: Any = None
    error: str | None = None
    call_id: str | None = None


Event = (
    RunStarted
    | StepStarted
    | StepFinished
    | UsageUpdated
    | RunPaused
    | RunFinished
    | AgentDelta
    | ToolCalled
    | ToolReturned
)
