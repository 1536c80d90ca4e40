"""A demanding user's attacks on the budget, cancellation and input-validation promises:
hostile numbers, deep nesting, large fan-outs under nested scopes."""

from __future__ import annotations

from typing import Any

import pytest

from flujo_trio import (
    Backoff,
    ConfigurationError,
    Step,
    Usage,
    UsageLimits,
)


async def echo(data: Any) -> Any:
    return data


# -- hostile configuration values: a ConfigurationError that says what is wrong --------


@pytest.mark.parametrize("timeout", ["5", [1], b"1", object()])
def test_a_timeout_that_is_not_a_number_is_a_configuration_error(timeout: Any) -> None:
    with pytest.raises(ConfigurationError, match="timeout_s must be > 0 seconds"):
        Step("s", echo, timeout_s=timeout)


@pytest.mark.parametrize(
    "build",
    [
        lambda: Usage(cost_usd=10**400),
        lambda: UsageLimits(total_cost_usd_limit=10**400),
        lambda: Backoff(initial_s=10**400),
        lambda: Backoff(max_s=-(10**400)),
        lambda: Backoff(multiplier=10**400),
    ],
    ids=["usage", "limits", "backoff-initial", "backoff-max", "backoff-multiplier"],
)
def test_an_int_too_large_for_a_float_is_a_configuration_error(build: Any) -> None:
    with pytest.raises(ConfigurationError, match="finite"):
        build()
