"""Start a step as an actor: one task, named after its path, in a nursery of its own.

The nursery makes the structured-concurrency promise concrete: the actor cannot
outlive the caller, and cancelling the caller cancels the actor and everything the
actor started.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import trio

from ..dsl.base import StepBase
from ..dsl.step import Step
from ..errors import ConfigurationError
from .agent_step import run_agent_step
from .errors import sole_error
from .frame import Frame
from .record import StepRecord

Actor = Callable[[Any, Any, Frame, StepRecord], Awaitable[None]]


@functools.cache
def _actors() -> Mapping[type[StepBase], Actor]:
    """Step kind -> actor; built on first use because the control-flow actors run
    their bodies through this module (a module-level table would import in a cycle)."""
    from ..dsl.conditional import ConditionalStep
    from ..dsl.human import HumanStep
    from ..dsl.loop import LoopStep
    from ..dsl.map import MapStep
    from ..dsl.parallel import ParallelStep
    from .conditional import run_conditional
    from .human import run_human
    from .loop import run_loop
    from .map import run_map
    from .parallel import run_parallel

    return MappingProxyType(
        {
            Step: run_agent_step,
            LoopStep: run_loop,
            ConditionalStep: run_conditional,
            ParallelStep: run_parallel,
            MapStep: run_map,
            HumanStep: run_human,
        }
    )


def actor_for(step: StepBase) -> Actor:
    actors = _actors()
    actor = actors.get(type(step))
    if actor is not None:
        return actor
    for kind, actor in actors.items():  # subclasses of the step kinds
        if isinstance(step, kind):
            return actor
    raise ConfigurationError(f"No actor runs steps of type {type(step).__name__}")


async def run_step(step: StepBase, data: Any, frame: Frame, parent: StepRecord) -> StepRecord:
    """Run ``step`` as an actor task; its record is attached to ``parent`` before it starts.

    When replaying a resumed run, a step that finished before is reused as it was.
    """
    prior = parent.claim(step.name)
    if prior is not None and prior.reusable:
        return parent.adopt(prior)
    frame = frame.enter(step.name)
    # A run that was stopped (breach, abort, cancel) starts nothing new, and a step
    # is attached to its parent only once it really starts.
    await trio.lowlevel.checkpoint_if_cancelled()
    await frame.events.step_started(frame.path)
    record = parent.child(step.name, prior)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(actor_for(step), step, data, frame, record, name=frame.task_name)
    except BaseExceptionGroup as group:
        raise sole_error(group) from None
    finally:
        record.release_prior()
    await frame.events.step_finished(frame.path, record)
    return record


async def run_sequence(
    steps: Sequence[StepBase], data: Any, frame: Frame, parent: StepRecord
) -> StepRecord:
    """Run steps in order, each fed the previous output; stop at a failure or a pause.

    Returns the last record run: the pipeline failed or paused if that one did.
    """
    record: StepRecord | None = None
    for step in steps:
        record = await run_step(step, data, frame, parent)
        if not record.success:
            return record
        frame.context.step_outputs[step.name] = record.output
        data = record.output
    assert record is not None, "pipelines are never empty"
    return record
