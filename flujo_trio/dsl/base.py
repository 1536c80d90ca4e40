"""Checks every step declaration shares, so a bad declaration fails before any spend."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigurationError
from ..usage import UsageLimits


def check_name(owner: str, name: object) -> None:
    if not isinstance(name, str) or not name.strip():
        raise ConfigurationError(f"{owner} needs a non-empty name, got {name!r}")


def check_callable(owner: str, what: str, value: Any) -> None:
    if not callable(value):
        raise ConfigurationError(f"{owner}: {what} must be callable, got {value!r}")


def check_limits(_: object, attribute: Any, value: Any) -> None:
    """``limits=`` (and ``item_limits=``): a :class:`UsageLimits` or None."""
    if value is not None and not isinstance(value, UsageLimits):
        raise ConfigurationError(f"{attribute.name} must be a UsageLimits or None, got {value!r}")


def check_executor(_: object, attribute: Any, value: Any) -> None:
    """``executor=``: None (run here) or an object that runs bodies elsewhere."""
    if value is not None and not callable(getattr(value, "open", None)):
        raise ConfigurationError(
            f"{attribute.name} must be None or an executor such as RayExecutor(), got {value!r}"
        )
