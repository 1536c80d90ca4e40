"""Where the bodies of a fan-out's jobs run: here (the default), or elsewhere.

``MapStep(executor=...)`` and ``ParallelStep(executor=...)`` take an object with an
``open(frame)`` async context manager that yields a :class:`JobSession` for one
fan-out. Whatever runs the body, the job must look the same to the rest of the run
as a local one: the same records and results, the same journal entries, every call
reserved and settled against the run's one governor, and cancellation reaching
every call it started.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Protocol

from ..context import PipelineContext
from .frame import Frame
from .record import StepRecord

if TYPE_CHECKING:
    from .fanout import Job


class JobSession(Protocol):
    """Runs the jobs of one fan-out."""

    async def run_job(self, job: Job, frame: Frame, record: StepRecord) -> PipelineContext:
        """Run ``job.body`` on ``job.data``, starting from ``frame.context`` (this job's
        own copy of the context at the fork), as a local job would: nested records go
        under ``record``, which ends like the job's last step (``record.end_like``);
        finished work is recorded in ``frame.run.journal``; every call is admitted and
        settled in ``frame.scope`` of ``frame.run.governor``. Returns the context the
        job ended with (merged back by the fan-out's owner)."""
        ...


class LocalJobs:
    """The default: each job's body runs in this process, in its job's task."""

    async def run_job(self, job: Job, frame: Frame, record: StepRecord) -> PipelineContext:
        last = await frame.run.kernel.run_sequence(job.body.steps, job.data, frame, record)
        record.end_like(last, last.output)
        return frame.context


@asynccontextmanager
async def local_jobs(frame: Frame) -> AsyncIterator[JobSession]:
    yield LocalJobs()
