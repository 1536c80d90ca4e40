"""Run-wide requests that are not budget breaches: stopping on purpose, human answers."""

from __future__ import annotations

from typing import Any

import attrs
import trio

from ..errors import MergeConflictError
from .record import StepRecord


@attrs.frozen
class Answer:
    value: Any


@attrs.define(eq=False)
class RunControl:
    """Shared by a run's actors.

    ``halt`` ends the whole run on purpose: it cancels the governed scope with a
    reason, and the runner raises the recorded error with the partial result.
    ``abort`` (a hook raised ``AbortRun``) does the same, and the run ends ``failed``.
    ``take_answer`` hands a resume's human input to the one paused human step it
    answers (the first in declared order), exactly once.
    """

    scope: trio.CancelScope
    error_type: type[MergeConflictError] | None = None
    message: str | None = None
    answer_for: StepRecord | None = None
    answer: Answer | None = None
    aborted: str | None = None
    denied: str | None = None
    """Set once a reservation was denied: failures after it are its consequences, so
    fan-outs no longer cancel siblings for them (admitted calls must finish)."""

    def halt(self, error_type: type[MergeConflictError], message: str) -> None:
        if self.error_type is None:
            self.error_type, self.message = error_type, message
        self.scope.cancel(reason=f"flujo-trio: {message}")

    def abort(self, message: str) -> None:
        """A hook asked to stop: the run ends ``failed`` with ``message`` as the reason."""
        if self.aborted is None and self.error_type is None:
            self.aborted = message
        self.scope.cancel(reason=f"flujo-trio: {message}")

    def deny(self, message: str) -> None:
        if self.denied is None:
            self.denied = message

    @property
    def stop_reason(self) -> str | None:
        return self.message or self.aborted

    def take_answer(self, prior: StepRecord | None) -> Answer | None:
        if prior is None or prior is not self.answer_for or self.answer is None:
            return None
        answer, self.answer = self.answer, None
        return answer
