"""Delivering run events to hooks and to a stream consumer."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import trio

from ..callables import call_maybe_async
from ..errors import AbortRun
from ..events import Event, StepFinished, StepStarted, UsageUpdated
from ..governance import GovernorStatistics
from ..usage import Usage, UsageLimits
from .control import Halt, RunControl
from .record import StepRecord

logger = logging.getLogger("flujo_trio")

Hook = Callable[[Event], Any]


def hook_name(hook: Hook) -> str:
    return getattr(hook, "__qualname__", None) or type(hook).__qualname__


@attrs.define(eq=False)
class EventBus:
    """Hooks first (in order), then the stream; a slow stream consumer holds the run back.

    A hook raising :class:`AbortRun` stops the run; any other hook error is logged
    with the hook's name and the run goes on.
    """

    hooks: Sequence[Hook]
    stream: trio.MemorySendChannel[Event] | None
    control: RunControl
    limits: UsageLimits
    run_id: str
    active: bool = attrs.field(init=False)
    """Whether anybody listens; checked before building any event (most runs: nobody)."""

    def __attrs_post_init__(self) -> None:
        self.active = bool(self.hooks) or self.stream is not None

    async def emit(self, event: Event, *, hooks_only: bool = False) -> None:
        for hook in self.hooks:
            try:
                await call_maybe_async(hook, event)
            except AbortRun as abort:
                self.control.stop(Halt.ABORTED, f"Aborted by hook {hook_name(hook)}: {abort}")
            except Exception:
                logger.exception(
                    "flujo-trio hook %s raised on %s; the run goes on",
                    hook_name(hook),
                    type(event).__name__,
                )
        if self.stream is not None and not hooks_only:
            try:
                await self.stream.send(event)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                # The consumer left the stream; it is cancelling this run, which must
                # end as cancelled, not fail on the closed channel.
                self.stream = None
                self.active = bool(self.hooks)

    async def step_started(self, path: tuple[str, ...]) -> None:
        if self.active:
            await self.emit(StepStarted(path, run_id=self.run_id))

    async def step_finished(self, path: tuple[str, ...], record: StepRecord) -> None:
        if self.active:
            result = record.to_result()
            await self.emit(StepFinished(path, result, run_id=self.run_id, reused=record.reused))

    async def usage(self, total: Usage, statistics: GovernorStatistics) -> None:
        if self.active:
            await self.emit(
                UsageUpdated(total, self.limits, run_id=self.run_id, governor=statistics)
            )
