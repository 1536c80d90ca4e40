"""A conditional: ``condition(data, context)`` picks which branch pipeline runs."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Any

import attrs

from ..errors import ConfigurationError
from ..usage import UsageLimits
from .base import check_callable, check_limits, check_name
from .outline import Block, Group, Lane, key_label
from .pipeline import Pipeline, StepBase, as_pipeline


def _as_branches(value: Mapping[Hashable, Any]) -> dict[Hashable, Pipeline]:
    if not isinstance(value, Mapping) or not value:
        raise ConfigurationError(
            f"ConditionalStep branches must be a non-empty mapping of key -> step, got {value!r}"
        )
    return {
        key: as_pipeline(f"ConditionalStep branch {key!r}", body) for key, body in value.items()
    }


def _optional_body(value: Any) -> Pipeline | None:
    return None if value is None else as_pipeline("ConditionalStep default", value)


@attrs.frozen(hash=False)
class ConditionalStep(StepBase):
    """Run the branch whose key ``condition`` returns, else ``default``.

    ``condition`` sees the step's input; ``input_mapper(data, context)`` shapes
    what the branch receives and ``output_mapper(output, context)`` what it returns.
    """

    name: str
    condition: Callable[[Any, Any], Any] = attrs.field(kw_only=True)
    branches: dict[Hashable, Pipeline] = attrs.field(kw_only=True, converter=_as_branches)
    default: Pipeline | None = attrs.field(default=None, kw_only=True, converter=_optional_body)
    input_mapper: Callable[[Any, Any], Any] | None = attrs.field(default=None, kw_only=True)
    output_mapper: Callable[[Any, Any], Any] | None = attrs.field(default=None, kw_only=True)
    limits: UsageLimits | None = attrs.field(default=None, kw_only=True, validator=check_limits)
    """A budget for the branch that runs (see scoped budgets)."""

    def __attrs_post_init__(self) -> None:
        check_name("ConditionalStep", self.name)
        owner = f"ConditionalStep {self.name!r}"
        check_callable(owner, "condition", self.condition)
        for what in ("input_mapper", "output_mapper"):
            fn = getattr(self, what)
            if fn is not None:
                check_callable(owner, what, fn)

    def outline(self) -> Block:
        lanes = tuple(
            Lane(key_label(key), body.outline().blocks) for key, body in self.branches.items()
        )
        if self.default is not None:
            lanes += (Lane(None, self.default.outline().blocks),)
        return Group("conditional", self.name, "", lanes)

    def nested(self) -> tuple[StepBase, ...]:
        bodies = [*self.branches.values(), *([self.default] if self.default else [])]
        return tuple(step for body in bodies for step in body.steps)
