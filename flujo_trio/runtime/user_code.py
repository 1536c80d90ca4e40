"""Calling a control-flow step's own callables (conditions, mappers) with clear failures."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..callables import call_maybe_async
from ..errors import FlujoTrioError


class UserCodeFailed(FlujoTrioError):
    """A condition or mapper raised; the message names the step and the callable."""


async def call_user(owner: str, what: str, fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return await call_maybe_async(fn, *args)
    except Exception as error:
        raise UserCodeFailed(f"{owner}: {what} raised {error!r}") from error


async def map_optional(
    owner: str, what: str, fn: Callable[..., Any] | None, value: Any, *args: Any
) -> Any:
    """``fn(value, *args)``, or ``value`` unchanged when there is no mapper."""
    if fn is None:
        return value
    return await call_user(owner, what, fn, value, *args)
