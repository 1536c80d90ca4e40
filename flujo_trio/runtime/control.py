"""Run-wide stop requests that are not budget breaches (e.g. ERROR_ON_CONFLICT)."""

from __future__ import annotations

import attrs
import trio

from ..errors import MergeConflictError


@attrs.define(eq=False)
class RunControl:
    """Lets an actor end the whole run on purpose: it cancels the governed scope with a
    reason, and the runner raises the recorded error with the partial result."""

    scope: trio.CancelScope
    error_type: type[MergeConflictError] | None = None
    message: str | None = None

    def halt(self, error_type: type[MergeConflictError], message: str) -> None:
        if self.error_type is None:
            self.error_type, self.message = error_type, message
        self.scope.cancel(reason=f"flujo-trio: {message}")
