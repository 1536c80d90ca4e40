"""What the governor did for a run, as numbers (``PipelineResult.governor``).

.. versionadded:: 0.2
"""

from __future__ import annotations

import attrs

from .usage import Usage


@attrs.frozen
class GovernorStatistics:
    """A snapshot of one run's governor, in the style of ``trio.Lock.statistics()``."""

    admitted: int = 0
    """Agent calls (requests) admitted, across every scope."""
    denied: int = 0
    """Reservations refused because they could never fit a limit."""
    waiting: int = 0
    """Reservations waiting for room right now."""
    peak_waiting: int = 0
    """The most reservations that waited at the same time."""
    in_flight: int = 0
    """Admitted calls not yet settled right now."""
    peak_in_flight: int = 0
    """The most admitted calls outstanding at the same time."""
    spent: Usage = attrs.field(factory=Usage)
    """Everything the run has spent (earlier executions of a resumed run included)."""
    reserved: Usage = attrs.field(factory=Usage)
    """Held for calls in flight right now."""
    requests: int = 0
    """Requests counted against ``total_requests_limit`` (earlier executions included)."""
    spent_at_first_denial: Usage | None = None
    """What the run had spent when a reservation was first refused (None: never), the
    measure of how much of a budget admission let the run use."""
