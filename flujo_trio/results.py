"""What a run hands back: one :class:`StepResult` per step, and the run's summary."""

from __future__ import annotations

from typing import Any

import attrs

from .context import PipelineContext, RunStatus
from .governance import GovernorStatistics


@attrs.define
class StepResult:
    """The outcome of one step; composite steps nest their children in ``step_history``."""

    name: str
    """The step's name (a parallel branch's result is named after its branch key)."""
    output: Any = None
    """What the step produced (kept on validation failure unless ``validation="drop"``)."""
    success: bool = True
    """Whether the step achieved what it was declared to do."""
    attempts: int = 0
    """Agent calls made (for a loop: iterations run; 0 when denied or cached)."""
    latency_s: float = 0.0
    """Wall time of the step, including retries and fallback."""
    cost_usd: float = 0.0
    """Dollars spent by this step and everything nested in it."""
    token_counts: int = 0
    """Tokens spent by this step and everything nested in it."""
    feedback: str | None = None
    """Why the step failed (or warned), in words a person can act on."""
    metadata: dict[str, Any] = attrs.field(factory=dict)
    """Facts about how the step ran (``cache_hit``, ``fallback_triggered``, ...)."""
    branch_context: Any = None
    """For a parallel branch or map item: the context the branch ended with."""
    step_history: list[StepResult] = attrs.field(factory=list)
    """Results of the steps nested in this one, in the order they started."""


@attrs.define
class PipelineResult:
    """Everything one run did, with honest totals even when it stopped early."""

    run_id: str
    """Identifies the run in a store; pass it to ``Runner.resume``."""
    step_history: list[StepResult] = attrs.field(factory=list)
    """Top-level steps that started, in order."""
    total_cost_usd: float = 0.0
    """Every dollar spent by the run, failed attempts and cancelled calls included."""
    total_tokens: int = 0
    """Every token spent by the run."""
    final_context: PipelineContext | None = None
    """The context as the run left it."""
    status: RunStatus = RunStatus.RUNNING
    """Where the run stands."""
    total_requests: int = 0
    """Agent calls admitted by the run (every execution of a resumed run included).

    .. versionadded:: 0.2
    """
    governor: GovernorStatistics | None = None
    """What the governor did in the execution that produced this result.

    .. versionadded:: 0.2
    """

    @property
    def success(self) -> bool:
        """True only for a completed run."""
        return self.status is RunStatus.COMPLETED

    @property
    def output(self) -> Any:
        """The last step's output; ``None`` when nothing ran or the run is paused."""
        if self.status is RunStatus.PAUSED or not self.step_history:
            return None
        return self.step_history[-1].output
