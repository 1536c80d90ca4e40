"""Map: run one body per item, concurrently, each on its own context copy."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import attrs

from ..errors import ConfigurationError
from ..usage import UsageLimits
from .base import check_executor, check_limits, check_name
from .outline import Block, Group
from .parallel import check_concurrency
from .pipeline import Pipeline, StepBase, as_pipeline


def _is_collection(value: Any) -> bool:
    return isinstance(value, Iterable) and not isinstance(value, str | bytes)


def _as_body(body: Any) -> Pipeline:
    return as_pipeline("MapStep body", body)


@attrs.frozen
class MapStep(StepBase):
    """Run ``body`` once per item of the input (or of ``items(context)``, or ``items``).

    Output is the list of outputs in input order. A failed item fails the step and
    cancels the items still running. Item contexts merge back like
    ``MergeStrategy.CONTEXT_UPDATE``.
    """

    name: str
    body: Pipeline = attrs.field(converter=_as_body)
    items: Callable[[Any], Any] | Iterable[Any] | None = attrs.field(default=None, kw_only=True)
    max_concurrency: int | None = attrs.field(
        default=None, kw_only=True, validator=check_concurrency
    )
    limits: UsageLimits | None = attrs.field(default=None, kw_only=True, validator=check_limits)
    """A budget for all items together (see scoped budgets)."""
    item_limits: UsageLimits | None = attrs.field(
        default=None, kw_only=True, validator=check_limits
    )
    """A budget for each item on its own."""
    executor: Any = attrs.field(default=None, kw_only=True, validator=check_executor)
    """Where item bodies run: None (here) or e.g. ``RayExecutor()``."""

    def __attrs_post_init__(self) -> None:
        check_name("MapStep", self.name)
        items = self.items
        if items is not None and not callable(items) and not _is_collection(items):
            raise ConfigurationError(
                f"MapStep {self.name!r}: items must be a callable taking the context "
                f"or a collection of items, got {items!r}"
            )

    def nested(self) -> tuple[StepBase, ...]:
        return self.body.steps

    def outline(self) -> Block:
        detail = "for each item" + (
            f", {self.max_concurrency} at a time" if self.max_concurrency else ""
        )
        return Group("map", self.name, detail, (self.body.outline(),))
