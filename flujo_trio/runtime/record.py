"""Step records: the runtime's mutable builders of step results.

A record is attached to its parent the moment its step starts. Whatever stops the
step (success, failure, a pause, a budget breach, the caller cancelling), the record
already holds the attempts and usage so far, and :meth:`StepRecord.to_result` turns
it into a :class:`StepResult` with honest numbers. What a store keeps is not the
record but the frozen :class:`~flujo_trio.state.journal.SavedStep` that
:meth:`StepRecord.saved` makes of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import trio

from ..results import StepResult
from ..state.journal import Address, FieldChange, SavedStep, StepStatus, fold_tree
from ..usage import Usage, dollars, money

#: Levels of records turned into results by recursion before a subtree is walked with
#: an explicit stack (a record tree is two levels per nested parallel or map step).
_RECURSION_LEVELS = 100

ZERO = Decimal(0)
#: Shared by saved steps that changed nothing (a saved step is never mutated).
_NO_CHANGES: list[FieldChange] = []


class StepRecord:
    """The mutable builder of one :class:`StepResult`."""

    __slots__ = (
        "_children",
        "_metadata",
        "address",
        "attempts",
        "branch_context",
        "cost",
        "denied",
        "feedback",
        "kind",
        "latency_s",
        "name",
        "output",
        "pause_message",
        "position",
        "reused",
        "started_at",
        "status",
        "tokens",
    )

    def __init__(self, name: str, kind: str, address: Address, position: tuple[int, ...]) -> None:
        self.name = name
        self.kind = kind
        self.address = address
        self.position = position
        self.attempts = 0
        self.cost = ZERO
        self.tokens = 0
        self.output: Any = None
        self.status: StepStatus | None = None
        """None while running."""
        self.feedback: str | None = None
        self._metadata: dict[str, Any] | None = None
        self.branch_context: Any = None
        self._children: list[StepRecord] | None = None
        self.latency_s: float | None = None
        self.started_at = trio.current_time()
        self.pause_message: str | None = None
        self.denied = False
        """Failed only because a run-level reservation was denied (a resume re-runs it)."""
        self.reused = False
        """Taken from the journal of an earlier execution, not run now."""

    @property
    def metadata(self) -> dict[str, Any]:
        """Facts about how the step ran, for its result (made on first use: most steps
        have none, and a fan-out of 10,000 branches should not carry 40,000 empty dicts)."""
        found = self._metadata
        if found is None:
            found = self._metadata = {}
        return found

    @metadata.setter
    def metadata(self, value: dict[str, Any]) -> None:
        self._metadata = value

    @property
    def children(self) -> list[StepRecord]:
        """Records of the steps nested in this one, in the order they started."""
        found = self._children
        if found is None:
            found = self._children = []
        return found

    @classmethod
    def from_saved(cls, saved: SavedStep) -> StepRecord:
        record = cls(saved.name, saved.kind, saved.address, saved.position)
        record.status = saved.status
        record.output = saved.output
        record.attempts = saved.attempts
        record.cost, record.tokens = saved.cost_usd, saved.tokens
        record.latency_s = saved.latency_s
        record.feedback = saved.feedback
        record._metadata = dict(saved.metadata) if saved.metadata else None
        record.pause_message = saved.pause_message
        record.denied = saved.denied
        record.reused = True
        return record

    # -- while running -------------------------------------------------------------------

    def charge(self, usage: Usage) -> None:
        self.cost += money(usage.cost_usd)
        self.tokens += usage.tokens

    def finish(self, success: bool, output: Any, feedback: str | None = None) -> None:
        self.status = StepStatus.OK if success else StepStatus.FAILED
        self.output = output
        self.feedback = feedback
        self.latency_s = (self.latency_s or 0.0) + (trio.current_time() - self.started_at)

    def pause(self, message: str | None, feedback: str | None = None) -> None:
        self.status = StepStatus.PAUSED
        self.output = None
        self.pause_message = message
        self.feedback = feedback or f"Paused: {message}"
        self.latency_s = (self.latency_s or 0.0) + (trio.current_time() - self.started_at)

    def end_like(self, last: StepRecord, output: Any, feedback: str | None = None) -> None:
        """A container ends as the last child it ran ended: paused, failed or succeeded.

        ``output`` and ``feedback`` are the container's own when it succeeds or fails.
        """
        if last.status is StepStatus.PAUSED:
            self.pause(last.pause_message, last.feedback)
        elif last.status is StepStatus.OK:
            self.finish(True, output, feedback)
        else:
            self.finish(False, output, feedback if feedback is not None else last.feedback)

    @property
    def finished(self) -> bool:
        return self.status is StepStatus.OK or self.status is StepStatus.FAILED

    @property
    def success(self) -> bool:
        return self.status is StepStatus.OK

    @property
    def paused(self) -> bool:
        return self.status is StepStatus.PAUSED

    def interrupt(self, reason: str) -> list[StepRecord]:
        """Finish this record and its unfinished descendants as cancelled; returns the
        records it changed (innermost first), so they can be journaled."""
        if self.status is not None and self.status is not StepStatus.PAUSED:
            return []  # finished or stopped: everything inside it ended too
        changed: list[StepRecord] = []
        for child in self._children or ():
            changed.extend(child.interrupt(reason))
        if self.status is None:
            self.status = StepStatus.CANCELLED
            self.metadata["cancelled"] = True
            self.feedback = self.feedback or f"Cancelled: {reason}"
            self.latency_s = (self.latency_s or 0.0) + (trio.current_time() - self.started_at)
            changed.append(self)
        return changed

    def total(self) -> tuple[Decimal, int]:
        cost, tokens = self.cost, self.tokens
        for child in self._children or ():
            child_cost, child_tokens = child.total()
            cost += child_cost
            tokens += child_tokens
        return cost, tokens

    def first_paused_leaf(self) -> StepRecord | None:
        """The human step a resume answers: the first paused leaf in declared order."""
        if self.status is not StepStatus.PAUSED:
            return None
        for child in self._children or ():
            found = child.first_paused_leaf()
            if found is not None:
                return found
        return self

    # -- reading -------------------------------------------------------------------------

    def saved(self, changes: list[FieldChange] | None = None) -> SavedStep:
        """The frozen journal form of this record as it stands."""
        assert self.status is not None, "only finished, paused or stopped steps are saved"
        return SavedStep(
            address=self.address,
            position=self.position,
            kind=self.kind,
            status=self.status,
            output=self.output,
            attempts=self.attempts,
            cost_usd=self.cost,
            tokens=self.tokens,
            latency_s=self.latency_s or 0.0,
            feedback=self.feedback,
            metadata=self._metadata or {},
            pause_message=self.pause_message,
            denied=self.denied,
            changes=changes or _NO_CHANGES,
        )

    def to_result(self, interrupted: str = "the run stopped") -> StepResult:
        """The result as of now; a step that never finished reads as cancelled, with
        ``interrupted`` as the reason (the record itself is left as it is)."""
        return self._result(interrupted)[0]

    def _result(self, interrupted: str, depth: int = 0) -> tuple[StepResult, Decimal]:
        """The result and its exact cost, children first (each subtree summed once)."""
        if depth >= _RECURSION_LEVELS:
            return self._deep_result(interrupted)
        return self._built(
            interrupted, [child._result(interrupted, depth + 1) for child in self._children or ()]
        )

    def _deep_result(self, interrupted: str) -> tuple[StepResult, Decimal]:
        """:meth:`_result` without recursion, for pipelines nested deeper than the
        interpreter's stack (recursion is faster for the usual few levels)."""

        def children(record: StepRecord) -> Iterable[StepRecord]:
            return record._children or ()

        def build(
            record: StepRecord, done: list[tuple[StepResult, Decimal]]
        ) -> tuple[StepResult, Decimal]:
            return record._built(interrupted, done)

        return fold_tree(self, children, build)

    def _built(
        self, interrupted: str, done: list[tuple[StepResult, Decimal]]
    ) -> tuple[StepResult, Decimal]:
        children: list[StepResult] = []
        cost, tokens = self.cost, self.tokens
        for result, child_cost in done:
            children.append(result)
            cost += child_cost
            tokens += result.token_counts
        metadata = dict(self._metadata) if self._metadata else {}
        feedback, latency = self.feedback, self.latency_s
        status = self.status
        if status is StepStatus.PAUSED:
            metadata["paused"] = True
        elif status is None or status is StepStatus.CANCELLED:
            metadata["cancelled"] = True
            feedback = feedback or f"Cancelled: {interrupted}"
            if latency is None:
                latency = trio.current_time() - self.started_at
        result = StepResult(
            name=self.name,
            output=self.output,
            success=status is StepStatus.OK,
            attempts=self.attempts,
            latency_s=latency or 0.0,
            cost_usd=dollars(cost),
            token_counts=tokens,
            feedback=feedback,
            metadata=metadata,
            branch_context=self.branch_context,
            step_history=children,
        )
        return result, cost
