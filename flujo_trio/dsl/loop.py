"""A loop: run a body until an exit condition holds or ``max_loops`` is reached."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from ..errors import ConfigurationError
from ..usage import UsageLimits
from .base import check_callable, check_limits, check_name
from .outline import Block, Group
from .pipeline import Pipeline, StepBase, as_pipeline


def _check_max_loops(_: object, __: object, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigurationError(f"LoopStep max_loops must be an int >= 1, got {value!r}")


def _as_body(body: Any) -> Pipeline:
    return as_pipeline("LoopStep body", body)


@attrs.frozen
class LoopStep(StepBase):
    """Repeat ``body``; iterations share the context, so each sees the last one's updates.

    ``exit_condition(output, context)`` sees the body's raw output (before
    ``output_mapper``). ``iteration_input_mapper(output, context, iteration)`` gets
    the 1-based number of the iteration that just finished.
    """

    name: str
    body: Pipeline = attrs.field(converter=_as_body)
    exit_condition: Callable[[Any, Any], Any] = attrs.field(kw_only=True)
    max_loops: int = attrs.field(default=5, kw_only=True, validator=_check_max_loops)
    initial_input_mapper: Callable[[Any, Any], Any] | None = attrs.field(default=None, kw_only=True)
    iteration_input_mapper: Callable[[Any, Any, int], Any] | None = attrs.field(
        default=None, kw_only=True
    )
    output_mapper: Callable[[Any, Any], Any] | None = attrs.field(default=None, kw_only=True)
    limits: UsageLimits | None = attrs.field(default=None, kw_only=True, validator=check_limits)
    """A budget for all iterations together (see scoped budgets)."""

    def __attrs_post_init__(self) -> None:
        check_name("LoopStep", self.name)
        owner = f"LoopStep {self.name!r}"
        check_callable(owner, "exit_condition", self.exit_condition)
        for what in ("initial_input_mapper", "iteration_input_mapper", "output_mapper"):
            fn = getattr(self, what)
            if fn is not None:
                check_callable(owner, what, fn)

    def nested(self) -> tuple[StepBase, ...]:
        return self.body.steps

    def outline(self) -> Block:
        return Group("loop", self.name, f"max {self.max_loops}", (self.body.outline(),))
