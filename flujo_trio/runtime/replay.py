"""The replay cursor of a resumed run: what the journal already holds, by address.

Built once from the stored journal. The kernel asks it whether a leaf step finished
before (then the step is taken from it, with its output, spend and context changes),
the agent step asks it for each of its calls, and a conditional for its decision.
"""

from __future__ import annotations

from typing import Any

from ..state.journal import (
    Address,
    CallKey,
    CallRecord,
    Entry,
    SavedStep,
    StepStatus,
    latest_entries,
)


class Replay:
    """Finished work of earlier executions of one run, by address."""

    __slots__ = ("answer", "answer_for", "calls", "decisions", "steps")

    def __init__(
        self, journal: tuple[Entry, ...], answer_for: Address | None = None, answer: Any = None
    ) -> None:
        self.steps, self.calls, self.decisions = latest_entries(journal)
        self.answer_for = answer_for
        """The paused human step this resume answers (None: no answer)."""
        self.answer = answer

    def reusable(self, address: Address) -> SavedStep | None:
        """The saved leaf at ``address`` if it finished and may be reused as it is.

        A step that failed only because a run-level reservation was denied never ran
        its work: a resume (with room in the budget) runs it again.
        """
        saved = self.steps.get(address)
        if saved is None or saved.denied:
            return None
        if saved.status is StepStatus.OK or saved.status is StepStatus.FAILED:
            return saved
        return None

    def paused(self, address: Address) -> SavedStep | None:
        saved = self.steps.get(address)
        return saved if saved is not None and saved.status is StepStatus.PAUSED else None

    def calls_at(self, address: Address) -> dict[CallKey, CallRecord]:
        return self.calls.get(address) or {}

    def take_answer(self, address: Address) -> tuple[bool, Any]:
        """The resume's answer, once, for the human step at ``address``."""
        if self.answer_for is None or self.answer_for != address:
            return False, None
        self.answer_for = None
        answer, self.answer = self.answer, None
        return True, answer
