"""Step records: results built while a step runs, so a cancelled step still reports.

A record is attached to its parent the moment its step starts. Whatever stops the
step (success, failure, a budget breach cancelling the run, the caller cancelling),
the record already holds the attempts and usage so far, and :meth:`to_result` turns
it into a :class:`StepResult` with honest numbers.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs
import trio

from ..results import StepResult
from ..usage import Usage, money


def _now() -> float:
    return trio.current_time()


@attrs.define(eq=False)
class StepRecord:
    """The mutable builder of one :class:`StepResult`."""

    name: str
    started_at: float = attrs.field(factory=_now)
    attempts: int = 0
    own_cost: Decimal = Decimal(0)
    own_tokens: int = 0
    output: Any = None
    success: bool | None = None
    feedback: str | None = None
    metadata: dict[str, Any] = attrs.field(factory=dict)
    branch_context: Any = None
    children: list[StepRecord] = attrs.field(factory=list)
    latency_s: float | None = None

    def child(self, name: str) -> StepRecord:
        record = StepRecord(name)
        self.children.append(record)
        return record

    def charge(self, usage: Usage) -> None:
        self.own_cost += money(usage.cost_usd)
        self.own_tokens += usage.tokens

    def finish(self, success: bool, output: Any, feedback: str | None = None) -> None:
        self.success = success
        self.output = output
        self.feedback = feedback
        self.latency_s = _now() - self.started_at

    @property
    def finished(self) -> bool:
        return self.success is not None

    def total(self) -> tuple[Decimal, int]:
        cost, tokens = self.own_cost, self.own_tokens
        for child in self.children:
            child_cost, child_tokens = child.total()
            cost += child_cost
            tokens += child_tokens
        return cost, tokens

    def interrupt(self, reason: str) -> None:
        """Finish this record and its unfinished descendants as cancelled."""
        for child in self.children:
            child.interrupt(reason)
        if self.success is None:
            self.metadata["cancelled"] = True
            self.finish(False, self.output, self.feedback or f"Cancelled: {reason}")

    def to_result(self, interrupted: str = "cancelled") -> StepResult:
        """Freeze into a result; unfinished records are reported as cancelled."""
        self.interrupt(interrupted)
        cost, tokens = self.total()
        return StepResult(
            name=self.name,
            output=self.output,
            success=bool(self.success),
            attempts=self.attempts,
            latency_s=self.latency_s or 0.0,
            cost_usd=float(cost),
            token_counts=tokens,
            feedback=self.feedback,
            metadata=dict(self.metadata),
            branch_context=self.branch_context,
            step_history=[child.to_result(interrupted) for child in self.children],
        )
