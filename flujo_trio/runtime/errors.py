"""Unwrapping exception groups from nurseries whose children are our own actors.

Actors turn user-code failures into step results, so what escapes an actor's
nursery is cancellation, a ``KeyboardInterrupt``-style ``BaseException``, or a bug.
Callers of ``Runner.run`` are promised a plain :class:`trio.Cancelled` when they
cancel, so groups made only of those collapse to one of them; anything else keeps
its group unless it is alone.
"""

from __future__ import annotations

import trio


def _leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]


def sole_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one exception a group stands for: a lone real error, else a Cancelled."""
    leaves = _leaves(group)
    for leaf in leaves:
        if isinstance(leaf, KeyboardInterrupt | SystemExit):
            return leaf
    real = [leaf for leaf in leaves if not isinstance(leaf, trio.Cancelled)]
    if not real:
        # Raised inside the ``except`` that caught the group, the Cancelled would keep
        # the whole group as its context: every cancelled task's traceback, frames and
        # locals (10,000 of them in a big fan-out) alive for as long as it propagates.
        cancelled = leaves[0]
        cancelled.__context__ = None
        return cancelled
    if len(real) == 1:
        return real[0]
    return group
