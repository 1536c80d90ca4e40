"""Step records: results built while a step runs, kept for checkpoints and replay.

A record is attached to its parent the moment its step starts. Whatever stops the
step (success, failure, a pause, a budget breach, the caller cancelling), the record
already holds the attempts and usage so far, and :meth:`to_result` turns it into a
:class:`StepResult` with honest numbers.

Records are also what a checkpoint stores. On resume, the saved records are handed
back as ``prior``: a finished step is reused as it was (not re-run, not re-paid),
a paused composite replays into its children, and anything unfinished runs again.
"""

from __future__ import annotations

from collections import deque
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
    attempts: int = 0
    own_cost: Decimal = Decimal(0)
    own_tokens: int = 0
    output: Any = None
    success: bool | None = None
    """None while running, paused or interrupted before finishing."""
    paused: bool = False
    feedback: str | None = None
    metadata: dict[str, Any] = attrs.field(factory=dict)
    branch_context: Any = None
    children: list[StepRecord] = attrs.field(factory=list)
    latency_s: float | None = None
    call_done: bool = False
    """An agent call of this step completed (and was paid) but the step was stopped
    before it finished; ``call_output`` holds what the call returned, so a resume
    finishes the step without paying for the call again."""
    call_output: Any = None
    started_at: float = attrs.field(default=0.0, repr=False)
    prior: StepRecord | None = attrs.field(default=None, repr=False)
    """The saved record this run replays (checkpoints do not store it)."""
    _pending: deque[StepRecord] = attrs.field(factory=deque, repr=False, alias="_pending")
    """Saved children not yet claimed by a replayed step."""
    _call_taken: bool = attrs.field(default=False, repr=False, alias="_call_taken")

    @classmethod
    def start(cls, name: str, prior: StepRecord | None = None) -> StepRecord:
        record = cls(name, started_at=_now(), prior=prior)
        if prior is not None:
            # What was spent before the interruption stays this step's spend.
            record.attempts = prior.attempts
            record.own_cost, record.own_tokens = prior.own_cost, prior.own_tokens
            record.latency_s = prior.latency_s
            record.metadata = {k: v for k, v in prior.metadata.items() if k != "cancelled"}
            record._pending = deque(prior.children)
        return record

    def child(self, name: str, prior: StepRecord | None = None) -> StepRecord:
        record = StepRecord.start(name, prior)
        self.children.append(record)
        return record

    def claim(self, name: str, *, anywhere: bool = False) -> StepRecord | None:
        """The saved child a replayed step named ``name`` continues, if any.

        Sequences claim in order (the next saved child, if its name matches);
        fan-outs claim by name (``anywhere``), as their children finish in any order.
        """
        if not self._pending:
            return None
        if not anywhere:
            if self._pending[0].name != name:
                self._pending.clear()  # the pipeline changed shape: stop replaying
                return None
            return self._pending.popleft()
        for saved in self._pending:
            if saved.name == name:
                self._pending.remove(saved)
                return saved
        return None

    def release_prior(self) -> None:
        """Drop replay bookkeeping once the step is done (checkpoints copy records)."""
        self.prior = None
        self._pending.clear()

    def peek_claim(self) -> StepRecord | None:
        return self._pending[0] if self._pending else None

    def adopt(self, saved: StepRecord) -> StepRecord:
        """Reuse a finished saved child as it is: nothing re-runs, nothing is charged."""
        self.children.append(saved)
        return saved

    def charge(self, usage: Usage) -> None:
        self.own_cost += money(usage.cost_usd)
        self.own_tokens += usage.tokens

    def completed_call(self, output: Any) -> None:
        self.call_done, self.call_output = True, output

    def take_completed_call(self) -> tuple[bool, Any]:
        """On replay: the output of a call the interrupted run already paid for, once.

        Saved records are never mutated (stores may share them), so the claim is
        remembered on this record.
        """
        prior = self.prior
        if prior is None or not prior.call_done or self._call_taken:
            return False, None
        self._call_taken = True
        return True, prior.call_output

    def finish(self, success: bool, output: Any, feedback: str | None = None) -> None:
        self.call_done, self.call_output = False, None
        self.success = success
        self.paused = False
        self.output = output
        self.feedback = feedback
        self.latency_s = (self.latency_s or 0.0) + (_now() - self.started_at)

    def pause(self, feedback: str = "Paused: waiting for human input") -> None:
        self.paused = True
        self.success = None
        self.output = None
        self.feedback = feedback
        self.latency_s = (self.latency_s or 0.0) + (_now() - self.started_at)

    @property
    def finished(self) -> bool:
        return self.success is not None

    @property
    def reusable(self) -> bool:
        """Whether a replay may reuse this saved record as it is. A step that failed
        only because its reservation was denied (itself, or a step inside it) never
        ran its work, so a resume with room in the budget runs it again."""
        return self.finished and not (self.success is False and self._denied_inside())

    def _denied_inside(self) -> bool:
        return bool(self.metadata.get("reservation_denied")) or any(
            child._denied_inside() for child in self.children
        )

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
        if self.success is None and not self.paused:
            self.metadata["cancelled"] = True
            self.finish(False, self.output, self.feedback or f"Cancelled: {reason}")

    def first_paused_leaf(self) -> StepRecord | None:
        """The human step a resume answers: the first paused leaf in declared order."""
        if not self.paused:
            return None
        if not self.children:
            return self
        for child in self.children:
            found = child.first_paused_leaf()
            if found is not None:
                return found
        return None

    def to_result(self, interrupted: str = "the run stopped") -> StepResult:
        """The result as of now; a step that never finished reads as cancelled, with
        ``interrupted`` as the reason (the record itself is left as it is)."""
        cost, tokens = self.total()
        metadata = dict(self.metadata)
        feedback, latency = self.feedback, self.latency_s
        if self.paused:
            metadata["paused"] = True
        elif self.success is None:
            metadata["cancelled"] = True
            feedback = feedback or f"Cancelled: {interrupted}"
            latency = latency if latency is not None else _now() - self.started_at
        return StepResult(
            name=self.name,
            output=self.output,
            success=bool(self.success),
            attempts=self.attempts,
            latency_s=latency or 0.0,
            cost_usd=float(cost),
            token_counts=tokens,
            feedback=feedback,
            metadata=metadata,
            branch_context=self.branch_context,
            step_history=[child.to_result(interrupted) for child in self.children],
        )
