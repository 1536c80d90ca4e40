"""Turning token counts into dollars, and bounding a call's tokens before it starts.

Prices come from the user (:class:`Pricing`, which always wins) or, by model name,
from ``genai-prices`` (:func:`known_price`), the price table pydantic-ai uses, kept
up to date by its maintainers instead of typed in by every user.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Protocol

import attrs

from ..errors import ConfigurationError
from ..usage import Usage, money
from .tokens import estimate_tokens as estimate_tokens


class Price(Protocol):
    """Anything that prices a request's prompt and completion tokens."""

    def usage(self, prompt_tokens: int, completion_tokens: int) -> Usage: ...


def priced(price: Price | None, prompt_tokens: int, completion_tokens: int) -> Usage:
    """The tokens priced by ``price``; an unknown price (None) costs 0, tokens still count."""
    if price is None:
        return Usage(0.0, prompt_tokens + completion_tokens)
    return price.usage(prompt_tokens, completion_tokens)


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


@attrs.frozen
class KnownPrice:
    """A model's price from ``genai-prices`` (tiers and all), found by :func:`known_price`.

    .. versionadded:: 0.2
    """

    model: str
    provider_id: str

    def usage(self, prompt_tokens: int, completion_tokens: int) -> Usage:
        from genai_prices import Usage as Tokens
        from genai_prices import calc_price

        price = calc_price(
            Tokens(input_tokens=prompt_tokens, output_tokens=completion_tokens),
            self.model,
            provider_id=self.provider_id,
        )
        return Usage(float(price.total_price), prompt_tokens + completion_tokens)


def known_price(model: str, api_url: str | None = None) -> KnownPrice | None:
    """The ``genai-prices`` price of ``model``, or None when it is not installed or
    does not know the model.

    The provider is recognised from ``api_url`` when it is a known provider's
    endpoint; for any other endpoint (a proxy, a local server) the model name alone
    decides, so a local server that serves ``gpt-4o-mini`` is priced like OpenAI's.
    Pass ``pricing=Pricing(0, 0)`` for a model that really costs nothing.
    """
    try:
        from genai_prices import Usage as Tokens
        from genai_prices import calc_price
    except ImportError:
        return None
    nothing = Tokens(input_tokens=0, output_tokens=0)
    if api_url:
        try:
            return KnownPrice(
                model, calc_price(nothing, model, provider_api_url=api_url).provider.id
            )
        except LookupError:
            pass  # not a provider genai-prices knows by URL: try the model name alone
    try:
        return KnownPrice(model, calc_price(nothing, model).provider.id)
    except LookupError:
        return None
