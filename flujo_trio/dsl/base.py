"""What every step kind shares: a name, and ``>>`` to build pipelines."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError

if TYPE_CHECKING:
    from .pipeline import Pipeline


class StepBase:
    """Mixin for the frozen attrs step classes; carries no state of its own."""

    __slots__ = ()
    name: str

    def __rshift__(self, other: StepBase | Pipeline) -> Pipeline:
        from .pipeline import Pipeline

        return Pipeline((self,)) >> other

    def nested(self) -> tuple[StepBase, ...]:
        """Steps declared inside this one (for validation and tree walks)."""
        return ()


def check_name(owner: str, name: object) -> None:
    if not isinstance(name, str) or not name.strip():
        raise ConfigurationError(f"{owner} needs a non-empty name, got {name!r}")


def check_callable(owner: str, what: str, value: Any) -> None:
    if not callable(value):
        raise ConfigurationError(f"{owner}: {what} must be callable, got {value!r}")
