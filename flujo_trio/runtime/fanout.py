"""Concurrent jobs on isolated contexts: the engine under ParallelStep and MapStep.

One nursery per fan-out, one actor task per job. Each job works on its own copy of
the context snapshot taken at the fork, so branches can never see each other's
writes; the caller merges them back by diffing against that snapshot. On a resume
each job starts again from the (replayed) snapshot and its finished steps replay
their context changes, so nothing a finished step wrote is lost.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import trio

from ..context import PipelineContext
from ..copying import copy_attrs_fields
from ..dsl.pipeline import Pipeline
from ..state.journal import StepStatus
from ..usage import UsageLimits
from .errors import sole_error
from .executor import JobSession, local_jobs
from .frame import Frame
from .kernel import end_scoped
from .record import StepRecord

#: How long a failed branch may wait to report itself after cancelling its siblings.
EVENT_SHIELD_S = 5.0


class Slot:
    """A concurrency slot taken by the spawning loop and given back by the job."""

    __slots__ = ("limiter",)

    def __init__(self, limiter: trio.CapacityLimiter) -> None:
        self.limiter = limiter

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.limiter.release_on_behalf_of(self)


class Job:
    """One branch or item: its name (the result is named after it), body and input."""

    __slots__ = ("body", "data", "kind", "name")

    def __init__(self, name: str, body: Pipeline, data: Any, kind: str) -> None:
        self.name, self.body, self.data, self.kind = name, body, data, kind


class FanOut:
    """What a fan-out did: the fork snapshot, and each job's record in declared order."""

    __slots__ = ("records", "snapshot")

    def __init__(self, snapshot: PipelineContext, size: int) -> None:
        self.snapshot = snapshot
        self.records: list[StepRecord | None] = [None] * size
        """By job index; None for a job that never started (cancelled while queued)."""

    @property
    def started(self) -> list[StepRecord]:
        return [record for record in self.records if record is not None]

    @property
    def paused(self) -> list[StepRecord]:
        return [record for record in self.started if record.paused]

    @property
    def failed(self) -> list[StepRecord]:
        return [record for record in self.started if record.status is StepStatus.FAILED]


async def fan_out(
    jobs: Sequence[Job],
    frame: Frame,
    record: StepRecord,
    *,
    max_concurrency: int | None,
    fail_fast: bool,
    job_limits: UsageLimits | None = None,
    executor: Any = None,
) -> FanOut:
    """Run ``jobs`` concurrently; with ``fail_fast`` the first failure cancels the rest.

    ``job_limits`` gives every job a budget of its own (``MapStep(item_limits=)``);
    ``executor`` runs the jobs' bodies elsewhere (see :mod:`.executor`).
    """
    result = FanOut(copy_attrs_fields(frame.context, what="the context"), len(jobs))
    limiter = trio.CapacityLimiter(max_concurrency) if max_concurrency else None
    opening = local_jobs(frame) if executor is None else executor.open(frame)
    try:
        async with opening as session, trio.open_nursery() as nursery:
            cancel_on_failure = nursery.cancel_scope if fail_fast else None
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
                    result,
                    slot,
                    cancel_on_failure,
                    job_limits,
                    session,
                    name=f"{frame.task_name}/{job.name}",
                )
    except BaseExceptionGroup as group:
        raise sole_error(group) from None
    finally:
        # Children were attached in start order; report them in declared order,
        # also when a breach or the caller cancelled the fan-out.
        record.children[:] = result.started
    journal = frame.run.journal
    for job_record in result.started:
        for stopped in job_record.interrupt("cancelled because a sibling failed"):
            journal.record_stopped(stopped)
    return result


async def _run_job(
    index: int,
    job: Job,
    frame: Frame,
    result: FanOut,
    slot: Slot | None,
    cancel_on_failure: trio.CancelScope | None,
    job_limits: UsageLimits | None,
    session: JobSession,
) -> None:
    with slot if slot is not None else contextlib.nullcontext():
        await trio.lowlevel.checkpoint_if_cancelled()  # a stopped run starts nothing new
        job_frame = frame.child(job.name, index).with_context(
            copy_attrs_fields(result.snapshot, what="the context")
        )
        run = job_frame.run
        if run.bus.active:
            await run.bus.step_started(job_frame.path)
        record = StepRecord(job.name, job.kind, job_frame.address, job_frame.position)
        result.records[index] = record
        if job_limits is None:
            record.branch_context = await session.run_job(job, job_frame, record)
        else:
            await _scoped_job(job, job_frame, record, job_limits, session)
        run.journal.record_step(record)
        failed = record.status is StepStatus.FAILED
        if failed and cancel_on_failure is not None and not run.control.denied:
            cancel_on_failure.cancel(reason=f"flujo-trio: {job.name!r} failed: {record.feedback}")
        if run.bus.active:
            # A failure just cancelled this task's scope too; still say how the job ended.
            with trio.move_on_after(EVENT_SHIELD_S) as cleanup:
                cleanup.shield = True
                await run.bus.step_finished(job_frame.path, record)


async def _scoped_job(
    job: Job, frame: Frame, record: StepRecord, limits: UsageLimits, session: JobSession
) -> None:
    governor = frame.run.governor
    # Set before the job runs too: a breach of its own budget cancels it before it returns.
    record.branch_context = frame.context
    with trio.CancelScope() as cancel_scope:
        scope = governor.open_scope(job.name, limits, frame.scope, cancel_scope)
        record.branch_context = await session.run_job(job, frame.with_scope(scope), record)
    end_scoped(record, scope, job.name, frame)
