"""Usage, limits and the money arithmetic that keeps budgets exact.

Costs are floats at the API surface (that is what providers report), but every sum
the runtime makes goes through :class:`~decimal.Decimal` built from the float's
shortest repr, so ``0.1 + 0.2`` spent against a ``0.3`` limit is exactly the limit.
NaN is refused everywhere (it would compare false against every limit and let a run
spend without bound); an infinite limit means no limit.
"""

from __future__ import annotations

import math
import sys
from decimal import Decimal
from typing import Any, Generic, TypeVar

import attrs

from .errors import ConfigurationError

T = TypeVar("T")


_NO_MONEY = Decimal(0)


def money(value: float | int | Decimal) -> Decimal:
    """Exact decimal of a cost as a person would write it (``0.1`` -> ``Decimal('0.1')``)."""
    if isinstance(value, Decimal):
        return value
    if not value:
        return _NO_MONEY
    return Decimal(repr(float(value)))


_LARGEST = Decimal(repr(sys.float_info.max))


def dollars(value: Decimal) -> float:
    """The float of an exact amount, saturated at the largest float: valid costs can sum
    past it (two of 1e308), and a report must not fail where the ledger, exact in
    decimals, still compares correctly."""
    return float(value) if value <= _LARGEST else sys.float_info.max


def format_money(value: float | Decimal) -> str:
    """At most 6 decimals and no trailing zeros: ``1``, ``1.2``, ``0.005``."""
    text = f"{Decimal(value):.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def finite(value: float) -> bool:
    """``math.isfinite`` that answers False for an int too large for a float (which
    ``math.isfinite`` refuses with OverflowError, e.g. ``10**400``)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _cost(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not _is_number(value) or not finite(value) or value < 0:
        raise ConfigurationError(f"{attribute.name} must be a finite number >= 0, got {value!r}")


def _tokens(_: object, attribute: attrs.Attribute[Any], value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigurationError(f"{attribute.name} must be an int >= 0, got {value!r}")


@attrs.frozen
class Usage:
    """What one or more agent calls spent (or may spend, when used as a reservation)."""

    cost_usd: float = attrs.field(default=0.0, validator=_cost)
    """Dollars spent."""
    tokens: int = attrs.field(default=0, validator=_tokens)
    """Tokens spent (prompt plus completion)."""

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            dollars(money(self.cost_usd) + money(other.cost_usd)), self.tokens + other.tokens
        )


def _no_limit_if_infinite(value: Any) -> Any:
    if isinstance(value, float) and math.isinf(value) and value > 0:
        return None
    return value


def _optional_cost(_: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is None:
        return
    if not _is_number(value) or not finite(value) or value < 0:
        raise ConfigurationError(
            f"UsageLimits.{attribute.name} must be a finite number >= 0 or None "
            f"(float('inf') also means no limit), got {value!r}"
        )


def _optional_count(_: object, attribute: attrs.Attribute[Any], value: int | None) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
        raise ConfigurationError(
            f"UsageLimits.{attribute.name} must be an int >= 0 or None, got {value!r}"
        )


@attrs.frozen
class UsageLimits:
    """Hard limits for a run (across every branch, retry, fallback and resume), or, given
    to a step as ``limits=``, for everything inside that step."""

    total_cost_usd_limit: float | None = attrs.field(
        default=None, converter=_no_limit_if_infinite, validator=_optional_cost
    )
    """Dollars that may be spent; reaching it exactly is allowed. ``None``: no limit."""
    total_tokens_limit: int | None = attrs.field(
        default=None, converter=_no_limit_if_infinite, validator=_optional_count
    )
    """Tokens that may be spent; reaching it exactly is allowed. ``None``: no limit."""
    total_requests_limit: int | None = attrs.field(
        default=None, converter=_no_limit_if_infinite, validator=_optional_count
    )
    """Agent calls (attempts) that may be made; a call counts when it is admitted.

    .. versionadded:: 0.2
    """

    @property
    def unlimited(self) -> bool:
        return (
            self.total_cost_usd_limit is None
            and self.total_tokens_limit is None
            and self.total_requests_limit is None
        )

    def cost_message(self) -> str:
        assert self.total_cost_usd_limit is not None
        return f"Cost limit of ${format_money(money(self.total_cost_usd_limit))} exceeded"

    def tokens_message(self) -> str:
        return f"Token limit of {self.total_tokens_limit} exceeded"

    def requests_message(self) -> str:
        return f"Request limit of {self.total_requests_limit} exceeded"

    def merged(self, override: UsageLimits) -> UsageLimits:
        """These limits with every dimension ``override`` sets replaced (the CLI flags)."""
        return UsageLimits(
            total_cost_usd_limit=_first(override.total_cost_usd_limit, self.total_cost_usd_limit),
            total_tokens_limit=_first(override.total_tokens_limit, self.total_tokens_limit),
            total_requests_limit=_first(override.total_requests_limit, self.total_requests_limit),
        )


def _first(a: Any, b: Any) -> Any:
    return a if a is not None else b


@attrs.frozen
class AgentResult(Generic[T]):
    """What an agent returns when it wants to report the usage of its call."""

    output: T
    """The step output."""
    usage: Usage = attrs.field(factory=Usage)
    """What the call cost."""


#: Zero usage; Usage is frozen, so one instance serves every call that reports nothing.
NO_USAGE = Usage()
_PLAIN = frozenset({str, bytes, int, float, bool, list, dict, tuple})


class UnusableUsage(ConfigurationError):
    """An agent reported usage the runtime cannot count (NaN, negative, not a number)."""


def usage_of_output(raw: object) -> tuple[object, Usage]:
    """Split an agent's return value into the output and the usage it reports.

    An :class:`AgentResult` carries its usage. Any other object with an ``output``
    attribute is unwrapped the same way (the incumbent's convention, which
    pydantic-ai's results follow too), and ``cost_usd`` / ``token_counts``
    attributes are read as its usage; else the usage is zero. Raises
    :class:`UnusableUsage` for usage that cannot be counted.
    """
    if isinstance(raw, AgentResult):
        return raw.output, raw.usage
    if raw is None or type(raw) in _PLAIN:
        return raw, NO_USAGE
    cost = getattr(raw, "cost_usd", None)
    tokens = getattr(raw, "token_counts", None)
    usage = NO_USAGE if cost is None and tokens is None else _coerce_usage(cost, tokens)
    if hasattr(raw, "output") and not isinstance(raw, type):
        return raw.output, usage
    return raw, usage


def usage_of_error(error: BaseException) -> Usage:
    """Usage a failed attempt reports through an ``usage`` attribute on its exception."""
    usage = getattr(error, "usage", None)
    return usage if isinstance(usage, Usage) else NO_USAGE


def _coerce_usage(cost: Any, tokens: Any) -> Usage:
    try:
        cost_value = float(cost or 0.0)
        token_value = int(tokens or 0)
        if isinstance(tokens, float) and tokens != token_value:
            raise ValueError("fractional tokens")
        return Usage(cost_value, token_value)
    except (TypeError, ValueError, OverflowError, ConfigurationError) as error:
        raise UnusableUsage(
            f"the agent reported unusable usage (cost_usd={cost!r}, token_counts={tokens!r}): "
            "report a finite number of dollars >= 0 and an int of tokens, or return AgentResult"
        ) from error
