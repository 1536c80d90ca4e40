"""The Ray task that runs one job: ``trio.run`` of the job's body on a worker.

The task returns the job's outcome as JSON text, with the messages not sent yet and
the number sent through the relay before it (the owner applies those first).

``ray.cancel`` interrupts a running task by raising ``KeyboardInterrupt`` in it. The
task runs Trio with ``restrict_keyboard_interrupt_to_checkpoints=True`` and keeps
its main task idle, so that interrupt arrives as a cancellation of the job: every
call in flight is cancelled and settled as a local one would be, and the job's
outcome (its unfinished records included) is still returned. The interrupt is Ray's
message "cancel this task"; once it has been acted on, the task ends normally.
"""

from __future__ import annotations

import concurrent.futures
import itertools
from collections.abc import Callable
from functools import partial
from typing import Any

import trio

from ..dsl.pipeline import Pipeline
from ..runtime.remote import JobSpec, WorkerJob
from ..runtime.wire import decode, encode
from .ray_refs import on_ready, result_of

#: The task's result when it was cancelled before its job started.
NOT_STARTED = "not started"


def _nothing() -> None:
    pass


def _only_interrupts(error: BaseException) -> bool:
    if isinstance(error, BaseExceptionGroup):
        return all(_only_interrupts(inner) for inner in error.exceptions)
    return isinstance(error, KeyboardInterrupt | trio.Cancelled)


def run_remote_job(body: Pipeline, spec: JobSpec, relay: Any, job: int) -> str:
    """Run one job (the body of the Ray task); returns its outcome as JSON text."""
    outcome: list[str] = []
    try:
        trio.run(
            _main, body, spec, relay, job, outcome, restrict_keyboard_interrupt_to_checkpoints=True
        )
    except BaseException as error:
        if not _only_interrupts(error):
            raise
        # ray.cancel: the job was cancelled as a whole and said how it ended.
    return outcome[0] if outcome else NOT_STARTED


async def _main(body: Pipeline, spec: JobSpec, relay: Any, job: int, outcome: list[str]) -> None:
    async with trio.open_nursery() as services:
        link = RayLink(relay, job)
        services.start_soon(link.flush_forever, name=f"flujo-remote-send:{spec.name}")
        try:
            # The main task only waits here: Ray's interrupt lands on this wait and
            # cancels the job as a whole. The relay may say so too (see RayLink).
            async with trio.open_nursery() as work:
                link.on_given_up = partial(
                    work.cancel_scope.cancel,
                    reason="flujo-trio: the run's owner cancelled this job",
                )
                work.start_soon(
                    _job, body, spec, link, outcome, name=f"flujo-remote-job:{spec.name}"
                )
        finally:
            services.cancel_scope.cancel(reason="flujo-trio: the remote job is over")


async def _job(body: Pipeline, spec: JobSpec, link: RayLink, outcome: list[str]) -> None:
    job = WorkerJob(spec, body, link)
    try:
        await job.run()
    finally:  # also when cancelled: the outcome is the task's result
        outcome.append(link.finish(job.outcome()))


class RayLink:
    """The worker's end of the relay: ordered messages out, answers back.

    Messages queued in one scheduling pass go out as one actor call; a question goes
    out with the messages queued before it, in a call that returns its answer. No
    thread waits on Ray: answers wake this run through Ray's callbacks.

    The relay also says when the owner gave the job up: a question gets no answer,
    and every post returns it. That stops a job whose ``ray.cancel`` was lost (Ray
    cannot interrupt a task in the instant it starts), within one call of starting.
    """

    def __init__(self, relay: Any, job: int) -> None:
        self.relay, self.job = relay, job
        self._pending: list[str] = []
        self._wake = trio.Event()
        self.on_given_up: Callable[[], None] = _nothing
        self._sent = 0
        self._numbers = itertools.count(1)

    def send(self, message: list[Any]) -> None:
        self._pending.append(encode(message, what="a message to the run's owner"))
        self._wake.set()

    async def ask(self, message: list[Any]) -> list[Any]:
        number = next(self._numbers)
        self._pending.append(encode(["ask", number, *message], what="a question"))
        batch, self._pending = self._pending, []
        self._sent += len(batch)
        answer = await result_of(self.relay.ask.remote(self.job, number, batch))
        if answer is None:  # the owner gave the job up
            self.on_given_up()
            await trio.lowlevel.checkpoint()  # raises Cancelled now
        return decode(answer, what="an answer from the run's owner")[2:]

    async def flush_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            batch, self._pending = self._pending, []
            self._sent += len(batch)
            on_ready(self.relay.post.remote(self.job, batch), self._check_given_up)

    def _check_given_up(self, posted: concurrent.futures.Future[Any]) -> None:
        if posted.exception() is None and posted.result() is True:
            self.on_given_up()

    def finish(self, outcome: Any) -> str:
        """The task's result: the outcome, the messages still queued (they travel with
        it, saving an actor call), and how many went through the relay before them
        (the owner applies those first; Ray delivers every call already made)."""
        pending, self._pending = self._pending, []
        return encode(["done", self._sent, pending, outcome], what="the outcome")
