"""Turning token counts into dollars, and bounding a call's tokens before it starts."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import attrs

from ..errors import ConfigurationError
from ..usage import Usage, money


def _non_negative(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigurationError(f"Pricing.{attribute.name} must be a number >= 0, got {value!r}")


@attrs.frozen
class Pricing:
    """Dollars per million input (prompt) and output (completion) tokens."""

    input_per_mtok: float = attrs.field(validator=_non_negative)
    output_per_mtok: float = attrs.field(validator=_non_negative)

    def usage(self, prompt_tokens: int, completion_tokens: int) -> Usage:
        cost = (
            money(self.input_per_mtok) * prompt_tokens
            + money(self.output_per_mtok) * completion_tokens
        ) / Decimal(1_000_000)
        return Usage(float(cost), prompt_tokens + completion_tokens)


def estimate_tokens(value: Any) -> int:
    """A deliberately generous token count for text (or JSON-able data).

    Real tokenizers average about four characters a token for English; this counts one
    token per three characters plus a margin, so it is an upper bound for reservations
    rather than a precise count.
    """
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return len(text) // 3 + 8
