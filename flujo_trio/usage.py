"""Usage, limits and the money arithmetic that keeps budgets exact.

Costs are floats at the API surface (that is what providers report), but every sum
the runtime makes goes through :class:`~decimal.Decimal` built from the float's
shortest repr, so ``0.1 + 0.2`` spent against a ``0.3`` limit is exactly the limit.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Generic, TypeVar

import attrs

from .errors import ConfigurationError

T = TypeVar("T")


def money(value: float | int | Decimal) -> Decimal:
    """Exact decimal of a cost as a person would write it (``0.1`` -> ``Decimal('0.1')``)."""
    if isinstance(value, Decimal):
        return value
    return Decimal(repr(float(value)))


def format_money(value: float | Decimal) -> str:
    """At most 6 decimals and no trailing zeros: ``1``, ``1.2``, ``0.005``."""
    text = f"{Decimal(value):.6f}".rstrip("0").rstrip(".")
    return text or "0"


def _non_negative_cost(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise ConfigurationError(f"{attribute.name} must be a number >= 0, got {value!r}")


def _non_negative_tokens(_: object, attribute: attrs.Attribute[Any], value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigurationError(f"{attribute.name} must be an int >= 0, got {value!r}")


@attrs.frozen
class Usage:
    """What one or more agent calls spent (or may spend, when used as a reservation)."""

    cost_usd: float = attrs.field(default=0.0, validator=_non_negative_cost)
    """Dollars spent."""
    tokens: int = attrs.field(default=0, validator=_non_negative_tokens)
    """Tokens spent (prompt plus completion)."""

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            float(money(self.cost_usd) + money(other.cost_usd)), self.tokens + other.tokens
        )


def _optional_limit(_: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is None:
        return
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise ConfigurationError(
            f"UsageLimits.{attribute.name} must be a number >= 0 or None, got {value!r}"
        )


def _optional_tokens(_: object, attribute: attrs.Attribute[Any], value: int | None) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
        raise ConfigurationError(
            f"UsageLimits.{attribute.name} must be an int >= 0 or None, got {value!r}"
        )


@attrs.frozen
class UsageLimits:
    """Hard limits for a whole run (across every branch, retry, fallback and resume)."""

    total_cost_usd_limit: float | None = attrs.field(default=None, validator=_optional_limit)
    """Dollars the run may spend; reaching it exactly is allowed. ``None``: no limit."""
    total_tokens_limit: int | None = attrs.field(default=None, validator=_optional_tokens)
    """Tokens the run may spend; reaching it exactly is allowed. ``None``: no limit."""

    def cost_message(self) -> str:
        assert self.total_cost_usd_limit is not None
        return f"Cost limit of ${format_money(money(self.total_cost_usd_limit))} exceeded"

    def tokens_message(self) -> str:
        return f"Token limit of {self.total_tokens_limit} exceeded"


@attrs.frozen
class AgentResult(Generic[T]):
    """What an agent returns when it wants to report the usage of its call."""

    output: T
    """The step output."""
    usage: Usage = attrs.field(factory=Usage)
    """What the call cost."""


def usage_of_output(raw: object) -> tuple[object, Usage]:
    """Split an agent's return value into the output and the usage it reports.

    An :class:`AgentResult` carries its usage; any other object may expose
    ``cost_usd`` and ``token_counts`` attributes (the incumbent's convention); else zero.
    """
    if isinstance(raw, AgentResult):
        return raw.output, raw.usage
    cost = getattr(raw, "cost_usd", None)
    tokens = getattr(raw, "token_counts", None)
    if cost is None and tokens is None:
        return raw, Usage()
    return raw, _coerce_usage(cost, tokens)


def usage_of_error(error: BaseException) -> Usage:
    """Usage a failed attempt reports through an ``usage`` attribute on its exception."""
    usage = getattr(error, "usage", None)
    return usage if isinstance(usage, Usage) else Usage()


def _coerce_usage(cost: Any, tokens: Any) -> Usage:
    try:
        return Usage(float(cost or 0.0), int(tokens or 0))
    except (TypeError, ValueError) as error:
        raise ConfigurationError(
            f"Agent output reports unusable usage (cost_usd={cost!r}, token_counts={tokens!r}): "
            "report a number of dollars and an int of tokens, or return AgentResult"
        ) from error
