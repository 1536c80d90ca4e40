"""The kernel: runs one step (any kind) and sequences of steps, for every actor.

Composite actors (loop, conditional, parallel, map) run their bodies through the
kernel they find on their frame, so no actor imports the dispatcher and there is no
import cycle. Every step is an actor in the sense that matters: its own record,
attached to its parent before it starts; its own cancel scope when it has a budget;
failures turned into its result; and nothing it starts outlives it. A leaf step runs
in its parent's task (a task and nursery per call would double the cost of a step);
composites deep in a pipeline get a task of their own every few levels, so nesting
is not bounded by the interpreter's stack.

On a resume, a leaf step the journal holds as finished is taken from it (output,
spend, context changes) and not run; containers run again, and their leaves replay.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import trio

from ..dsl.human import HumanStep
from ..dsl.pipeline import StepBase
from ..dsl.shape import step_kind
from ..dsl.step import Step
from ..errors import ConfigurationError
from ..state.journal import SavedStep, StepStatus
from ..usage import Usage, dollars
from .delta import apply_changes
from .errors import sole_error
from .frame import Frame
from .ledger import BudgetScope, Stop
from .record import StepRecord

Actor = Callable[[Any, Any, Frame, StepRecord], Awaitable[None]]

#: A composite this many levels deep (and every multiple) runs in a task of its own.
TASK_EVERY_LEVELS = 48

_LEAVES = (Step, HumanStep)


class Kernel:
    """Runs steps as actors; holds the table of which actor runs which step kind."""

    __slots__ = ("_actors",)

    def __init__(self, actors: Mapping[type[StepBase], Actor]) -> None:
        self._actors = dict(actors)

    def actor_for(self, step: StepBase) -> Actor:
        actor = self._actors.get(type(step))
        if actor is not None:
            return actor
        for kind, candidate in self._actors.items():  # subclasses of the step kinds
            if isinstance(step, kind):
                self._actors[type(step)] = candidate
                return candidate
        raise ConfigurationError(f"No actor runs steps of type {type(step).__name__}")

    async def run_sequence(
        self, steps: Sequence[StepBase], data: Any, frame: Frame, parent: StepRecord
    ) -> StepRecord:
        """Run steps in order, each fed the previous output; stop at a failure or a pause.

        Returns the last record run: the sequence failed or paused if that one did.
        """
        record: StepRecord | None = None
        outputs = frame.context.step_outputs
        for index, step in enumerate(steps):
            record = await self.run_step(step, index, data, frame, parent)
            if not record.success:
                return record
            outputs[step.name] = data = record.output
        assert record is not None, "pipelines are never empty"
        return record

    async def run_step(
        self, step: StepBase, index: int, data: Any, parent_frame: Frame, parent: StepRecord
    ) -> StepRecord:
        """Run ``step`` (the ``index``-th of its siblings) as an actor; its record is
        attached to ``parent`` before it starts."""
        frame = parent_frame.child(step.name, index)
        run = frame.run
        leaf = isinstance(step, _LEAVES)
        if leaf and run.replay is not None:
            saved = run.replay.reusable(frame.address)
            if saved is not None:
                return await self._reuse(saved, frame, parent)
        # A run that was stopped (breach, abort, cancel) starts nothing new, and a step
        # is attached to its parent only once it really starts.
        await trio.lowlevel.checkpoint_if_cancelled()
        bus = run.bus
        if bus.active:
            await bus.step_started(frame.path)
        record = StepRecord(step.name, step_kind(step), frame.address, frame.position)
        if run.replay is not None and not leaf:
            earlier = run.replay.steps.get(frame.address)
            if earlier is not None:  # time spent in earlier executions still counts
                record.latency_s = earlier.latency_s
        parent.children.append(record)
        actor = self.actor_for(step)
        limits = None if leaf else getattr(step, "limits", None)
        if limits is not None:
            await self._scoped(step.name, limits, actor, step, data, frame, record)
        elif not leaf and len(frame.path) % TASK_EVERY_LEVELS == 0:
            await self._in_task(actor, step, data, frame, record)
        else:
            await actor(step, data, frame, record)
        if not leaf and record.status is not None:
            run.journal.record_step(record)
        if bus.active:
            await bus.step_finished(frame.path, record)
        return record

    async def _reuse(self, saved: SavedStep, frame: Frame, parent: StepRecord) -> StepRecord:
        """A leaf finished in an earlier execution: its result, spend and context
        changes are taken from the journal; nothing runs and nothing is paid again."""
        record = StepRecord.from_saved(saved)
        parent.children.append(record)
        apply_changes(frame.context, saved.changes)
        run = frame.run
        if frame.scope.parent is not None:
            # The run's total already holds this spend; the scopes around it rebuild.
            run.governor.charge(
                frame.scope, Usage(dollars(saved.cost_usd), saved.tokens), include_run=False
            )
            for _ in range(saved.attempts):
                run.governor.count_replayed_request(frame.scope)
        if run.bus.active:
            await run.bus.step_finished(frame.path, record)
        else:
            await trio.lowlevel.checkpoint()
        return record

    async def _in_task(
        self, actor: Actor, step: StepBase, data: Any, frame: Frame, record: StepRecord
    ) -> None:
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(actor, step, data, frame, record, name=frame.task_name)
        except BaseExceptionGroup as group:
            raise sole_error(group) from None

    async def _scoped(
        self,
        label: str,
        limits: Any,
        actor: Actor,
        step: StepBase,
        data: Any,
        frame: Frame,
        record: StepRecord,
    ) -> None:
        """Run ``actor`` under a budget of its own: a breach or denial of that budget
        fails only this step (``metadata["limit_scope"]``), cancelling only the calls
        inside it."""
        governor = frame.run.governor
        with trio.CancelScope() as cancel_scope:
            scope = governor.open_scope(label, limits, frame.scope, cancel_scope)
            inner = frame.with_scope(scope)
            if len(frame.path) % TASK_EVERY_LEVELS == 0:
                await self._in_task(actor, step, data, inner, record)
            else:
                await actor(step, data, inner, record)
        end_scoped(record, scope, label, frame)


def end_scoped(record: StepRecord, scope: BudgetScope, label: str, frame: Frame) -> None:
    """After a step ran under a budget of its own: if that budget stopped it (a breach
    cancelled it, or a reservation could never fit), the step fails, naming the scope."""
    if scope.stop is None:
        return
    record.metadata["limit_scope"] = label
    message = scope.stop_message or "usage limit reached"
    if scope.stop is Stop.BREACH or record.status is None:
        for stopped in record.interrupt(message):
            if stopped is not record:
                frame.run.journal.record_stopped(stopped)
        record.status = StepStatus.FAILED
        record.metadata.pop("cancelled", None)
        record.feedback = message
    elif not record.success:
        record.feedback = record.feedback or message
