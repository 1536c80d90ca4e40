"""The explicit frame every step actor receives: nothing lives on the DSL or in globals."""

from __future__ import annotations

from typing import Any

import attrs

from ..context import PipelineContext
from .bus import EventBus
from .control import RunControl
from .governor import GovernorClient


@attrs.frozen
class Frame:
    """Per-actor view of the run: its context, the governor, resources and its path."""

    context: PipelineContext
    governor: GovernorClient
    control: RunControl
    events: EventBus
    resources: Any = None
    path: tuple[str, ...] = ()

    def enter(self, name: str) -> Frame:
        return attrs.evolve(self, path=(*self.path, name))

    def with_context(self, context: PipelineContext) -> Frame:
        return attrs.evolve(self, context=context)

    @property
    def task_name(self) -> str:
        return "flujo-step:" + "/".join(self.path)
