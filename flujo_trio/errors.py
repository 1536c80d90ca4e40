"""The error hierarchy: one root so callers can catch everything flujo-trio raises."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .results import PipelineResult


class FlujoTrioError(Exception):
    """Root of every error flujo-trio raises on purpose."""


class ConfigurationError(FlujoTrioError):
    """A pipeline, step or runner was declared in a way that can never run correctly.

    Raised at construction time, so a bad declaration fails before any money is spent.
    """


class _ResultError(FlujoTrioError):
    """An error that ends a run but still hands back everything the run did."""

    def __init__(self, message: str, result: PipelineResult) -> None:
        super().__init__(message)
        self.result = result


class UsageLimitExceededError(_ResultError):
    """The run's cost or token limit was breached, or a reservation could not fit.

    ``result`` holds every step that started, with honest totals of what was spent.
    """


class MergeConflictError(_ResultError):
    """Two parallel branches changed the same context field to different values."""


class ResumeError(FlujoTrioError):
    """A run cannot be resumed the way it was asked (finished run, bad human input, ...)."""


class SerializationError(FlujoTrioError):
    """A value could not be stored or loaded; the message names the field path."""


class StoreError(FlujoTrioError):
    """A state store cannot be used: not a flujo-trio store, or written by a newer version."""


class AbortRun(FlujoTrioError):
    """Raise from a hook to stop the run on purpose; the run ends ``failed``.

    The message says why, and is repeated in the feedback of the steps it stopped.
    """


class HumanInputError(ResumeError, SerializationError):
    """The answer given to a paused human step does not fit its ``input_type``.

    Both a :class:`ResumeError` (the resume was refused; the stored run is unchanged)
    and a :class:`SerializationError` (the converter rejected the value).
    """


class AgentCallError(FlujoTrioError):
    """An agent call failed; ``retryable`` says whether the step should try again.

    Adapters raise it (or a subclass) with ``retryable=False`` for failures another
    attempt cannot fix (a bad request, a rejected key), so the step stops retrying at
    once. ``usage`` is what the failed call still cost, and counts toward the totals.
    ``retry_after`` (seconds) is how long the provider asked to wait before the next
    attempt; the step waits at least that long (if it retries at all).
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = True,
        usage: Any = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.usage = usage
        self.retry_after = retry_after


class OutputParseError(AgentCallError):
    """The model's reply does not fit the requested output type; retried with the
    parse error as feedback, and the tokens the reply cost are counted."""
