"""Map: run one body per item, concurrently, each on its own context copy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from .base import StepBase, check_callable, check_name
from .parallel import check_concurrency
from .pipeline import Pipeline, as_pipeline


def _as_body(body: Any) -> Pipeline:
    return as_pipeline("MapStep body", body)


@attrs.frozen
class MapStep(StepBase):
    """Run ``body`` once per item of the input (or of ``items(context)``).

    Output is the list of outputs in input order. A failed item fails the step and
    cancels the items still running. Item contexts merge back like
    ``MergeStrategy.CONTEXT_UPDATE``.
    """

    name: str
    body: Pipeline = attrs.field(converter=_as_body)
    items: Callable[[Any], Any] | None = attrs.field(default=None, kw_only=True)
    max_concurrency: int | None = attrs.field(
        default=None, kw_only=True, validator=check_concurrency
    )

    def __attrs_post_init__(self) -> None:
        check_name("MapStep", self.name)
        if self.items is not None:
            check_callable(f"MapStep {self.name!r}", "items", self.items)

    def nested(self) -> tuple[StepBase, ...]:
        return self.body.steps
