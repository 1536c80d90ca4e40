"""How long a step waits before retrying its agent: exponential backoff with full jitter.

Immediate retries hammer a provider that just said it is overloaded; waiting
``random(0, min(max_s, initial_s * multiplier**(n-1)))`` before retry ``n`` spreads
retries of many concurrent branches out (AWS's "full jitter"), and a larger
``Retry-After`` from the provider always wins.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

import attrs

from .errors import ConfigurationError
from .usage import finite


def _non_negative(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not finite(value)
        or value < 0
    ):
        raise ConfigurationError(
            f"Backoff.{attribute.name} must be a finite number >= 0, got {value!r:.60}"
        )


def _multiplier(_: object, __: object, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 1:
        raise ConfigurationError(f"Backoff.multiplier must be a number >= 1, got {value!r}")
    if not finite(value):
        raise ConfigurationError(f"Backoff.multiplier must be finite, got {value!r:.60}")


@attrs.frozen
class Backoff:
    """Waits between agent attempts; ``Step(..., backoff=Backoff(initial_s=0.5, max_s=20))``.

    .. versionadded:: 0.2
    """

    initial_s: float = attrs.field(default=0.5, validator=_non_negative)
    """The cap of the first wait (before the first retry)."""
    max_s: float = attrs.field(default=20.0, validator=_non_negative)
    """No wait is longer than this, however many retries came before."""
    multiplier: float = attrs.field(default=2.0, validator=_multiplier)
    """How much the cap grows per retry."""
    jitter: bool = attrs.field(default=True)
    """Full jitter: wait a uniform random time up to the cap (False: wait the cap)."""

    @classmethod
    def off(cls) -> Backoff:
        """No waiting at all, also for adapters that back off by default."""
        return cls(initial_s=0.0, max_s=0.0, jitter=False)

    def cap(self, retry: int) -> float:
        """The longest wait before retry number ``retry`` (1-based)."""
        exponent = max(0, retry - 1)
        try:
            grown = self.initial_s * self.multiplier**exponent
        except OverflowError:
            grown = math.inf
        return min(self.max_s, grown)

    def delay(
        self,
        retry: int,
        *,
        retry_after: float | None = None,
        rng: Callable[[], float] = random.random,
    ) -> float:
        """Seconds to wait before retry ``retry``; a larger ``retry_after`` wins."""
        cap = self.cap(retry)
        wait = rng() * cap if self.jitter else cap
        if retry_after is not None and finite(retry_after) and retry_after > wait:
            return float(retry_after)
        return wait
