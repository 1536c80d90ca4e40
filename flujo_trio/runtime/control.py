"""Why a run stops when its budget is not the reason: a conflict, a hook, a failure.

Shared by a run's actors. Each way to stop cancels the run's governed scope with a
reason and is recorded here, so the runner can say how the run ended and raise the
right error with the partial result.
"""

from __future__ import annotations

import enum

import trio

from ..errors import FlujoTrioError


class Halt(enum.Enum):
    MERGE_CONFLICT = "merge_conflict"
    """A parallel step with ``ERROR_ON_CONFLICT`` found a conflict."""
    ABORTED = "aborted"
    """A hook raised ``AbortRun``."""
    FATAL = "fatal"
    """The run cannot go on: its state cannot be stored, or it lost its ownership."""


class RunControl:
    """Requests to stop the run on purpose, and the first reason given."""

    __slots__ = ("denied", "error", "halt", "message", "scope")

    def __init__(self, scope: trio.CancelScope) -> None:
        self.scope = scope
        self.halt: Halt | None = None
        self.message: str | None = None
        self.error: FlujoTrioError | None = None
        """The error a fatal stop raises from ``run()``."""
        self.denied: str | None = None
        """Set once a run-level reservation was denied: failures after it are its
        consequences, so fan-outs no longer cancel siblings for them (admitted calls
        must finish)."""

    def stop(self, halt: Halt, message: str, error: FlujoTrioError | None = None) -> None:
        if self.halt is None:
            self.halt, self.message, self.error = halt, message, error
        self.scope.cancel(reason=f"flujo-trio: {message}")

    def deny(self, message: str) -> None:
        if self.denied is None:
            self.denied = message

    @property
    def stopped(self) -> bool:
        return self.halt is not None
