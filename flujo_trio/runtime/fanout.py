"""Concurrent jobs on isolated contexts: the engine under ParallelStep and MapStep.

One nursery per fan-out, one actor per job. Each job works on its own deep copy of
the context snapshot taken at the fork, so branches can never see each other's
writes; the caller merges them back by diffing against that snapshot.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Sequence
from typing import Any

import attrs
import trio

from ..context import PipelineContext
from ..dsl.pipeline import Pipeline
from .dispatch import run_sequence
from .errors import sole_error
from .frame import Frame
from .record import StepRecord

#: How long a failed branch may wait to report itself after cancelling its siblings.
EVENT_SHIELD_S = 5.0


@attrs.define(eq=False)
class Slot:
    """A concurrency slot taken by the spawning loop and given back by the job."""

    limiter: trio.CapacityLimiter

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.limiter.release_on_behalf_of(self)


@attrs.frozen
class Job:
    name: str
    body: Pipeline
    data: Any


@attrs.frozen
class FanOut:
    snapshot: PipelineContext
    records: list[StepRecord | None]
    """By job index; None for a job that never started (cancelled while queued)."""

    @property
    def started(self) -> list[StepRecord]:
        return [record for record in self.records if record is not None]

    @property
    def paused(self) -> list[StepRecord]:
        return [record for record in self.started if record.paused]

    @property
    def failed(self) -> list[StepRecord]:
        return [record for record in self.started if record.finished and not record.success]


async def fan_out(
    jobs: Sequence[Job],
    frame: Frame,
    record: StepRecord,
    *,
    max_concurrency: int | None,
    fail_fast: bool,
) -> FanOut:
    """Run ``jobs`` concurrently; with ``fail_fast`` the first failure cancels the rest."""
    snapshot = copy.deepcopy(frame.context)
    result = FanOut(snapshot, [None] * len(jobs))
    limiter = trio.CapacityLimiter(max_concurrency) if max_concurrency else None
    try:
        async with trio.open_nursery() as nursery:
            for index, job in enumerate(jobs):
                slot: Slot | None = None
                if limiter is not None:
                    # Slots are taken here, in declared order, so which job runs next
                    # never depends on how Trio happens to schedule the waiting tasks.
                    slot = Slot(limiter)
                    await limiter.acquire_on_behalf_of(slot)
                nursery.start_soon(
                    _run_job,
                    index,
                    job,
                    frame,
                    record,
                    result,
                    slot,
                    nursery.cancel_scope if fail_fast else None,
                    name=f"{frame.task_name}/{job.name}",
                )
    except BaseExceptionGroup as group:
        raise sole_error(group) from None
    finally:
        # Children were attached in start order; report them in declared order,
        # also when a breach or the caller cancelled the fan-out.
        record.children[:] = result.started
    for job_record in result.started:
        job_record.interrupt("cancelled because a sibling failed")
    return result


async def _run_job(
    index: int,
    job: Job,
    frame: Frame,
    parent: StepRecord,
    result: FanOut,
    slot: Slot | None,
    cancel_on_failure: trio.CancelScope | None,
) -> None:
    with slot if slot is not None else contextlib.nullcontext():
        await _job(index, job, frame, parent, result, cancel_on_failure)


async def _job(
    index: int,
    job: Job,
    frame: Frame,
    parent: StepRecord,
    result: FanOut,
    cancel_on_failure: trio.CancelScope | None,
) -> None:
    prior = parent.claim(job.name, anywhere=True)
    if prior is not None and prior.reusable:
        # Finished before a pause: reuse it, its context included; never re-run.
        result.records[index] = parent.adopt(prior)
        return
    saved_context = prior.branch_context if prior is not None else None
    context = copy.deepcopy(saved_context if saved_context is not None else result.snapshot)
    job_frame = frame.with_context(context).enter(job.name)
    await trio.lowlevel.checkpoint_if_cancelled()  # a stopped run starts nothing new
    await job_frame.events.step_started(job_frame.path)
    record = parent.child(job.name, prior)
    result.records[index] = record
    try:
        last = await run_sequence(job.body.steps, job.data, job_frame, record)
    finally:
        record.release_prior()
    record.branch_context = context
    if last.paused:
        record.pause(last.feedback or "Paused")
    else:
        record.finish(bool(last.success), last.output, last.feedback)
    failed = not last.success and not last.paused
    if failed and cancel_on_failure is not None and not frame.control.denied:
        cancel_on_failure.cancel(reason=f"flujo-trio: {job.name!r} failed: {last.feedback}")
    # A failure just cancelled this task's scope too; still say how the job ended.
    with trio.move_on_after(EVENT_SHIELD_S) as cleanup:
        cleanup.shield = True
        await job_frame.events.step_finished(job_frame.path, record)
