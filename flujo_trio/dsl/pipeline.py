"""Steps and the ordered sequence they compose into with ``>>``.

:class:`StepBase` and :class:`Pipeline` live together because ``step >> step`` makes
a pipeline and a pipeline is made of steps: one concept, no import cycle.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from ..errors import ConfigurationError
from .mermaid import to_mermaid
from .outline import Block, Lane, Leaf


class StepBase:
    """Mixin for the frozen attrs step classes; carries no state of its own."""

    __slots__ = ()
    name: str

    def __rshift__(self, other: StepBase | Pipeline) -> Pipeline:
        return Pipeline((self,)) >> other

    def nested(self) -> tuple[StepBase, ...]:
        """Steps declared inside this one (for validation and tree walks)."""
        return ()

    def outline(self) -> Block:
        """This step as a block of a drawing (step kinds with bodies override it)."""
        return Leaf("step", self.name)


def _as_steps(value: Iterable[Any]) -> tuple[StepBase, ...]:
    if isinstance(value, StepBase):
        return (value,)
    if isinstance(value, Pipeline):
        return value.steps
    try:
        return tuple(value)
    except TypeError:
        raise ConfigurationError(
            f"Pipeline takes a sequence of steps, got {type(value).__name__}"
        ) from None


def _check_steps(_: object, __: object, steps: tuple[Any, ...]) -> None:
    if not steps:
        raise ConfigurationError("A Pipeline needs at least one step")
    seen: set[str] = set()
    for step in steps:
        if not isinstance(step, StepBase):
            raise ConfigurationError(
                f"Pipeline steps must be steps (Step, LoopStep, ...), got {step!r}"
            )
        if step.name in seen:
            raise ConfigurationError(
                f"Duplicate step name {step.name!r} in one pipeline: give each step its own name"
            )
        seen.add(step.name)


@attrs.frozen
class Pipeline:
    """Steps run one after the other, each receiving the previous step's output."""

    steps: tuple[StepBase, ...] = attrs.field(converter=_as_steps, validator=_check_steps)

    def __rshift__(self, other: StepBase | Pipeline) -> Pipeline:
        if isinstance(other, Pipeline):
            return Pipeline(self.steps + other.steps)
        if isinstance(other, StepBase):
            return Pipeline((*self.steps, other))
        return NotImplemented

    @property
    def name(self) -> str:
        return self.steps[0].name

    def __len__(self) -> int:
        return len(self.steps)

    def outline(self) -> Lane:
        """The pipeline as nested blocks, in declared order (what its drawings render)."""
        return Lane(None, tuple(step.outline() for step in self.steps))

    def to_mermaid(self) -> str:
        """Mermaid flowchart text of this pipeline's shape, for docs, reviews and issues.

        .. versionadded:: 0.2
        """
        return to_mermaid(self.outline())


def as_pipeline(owner: str, body: object) -> Pipeline:
    """A body given as one step or a pipeline, normalised to a pipeline."""
    if isinstance(body, Pipeline):
        return body
    if isinstance(body, StepBase):
        return Pipeline((body,))
    raise ConfigurationError(f"{owner}: expected a Step or Pipeline, got {body!r}")
