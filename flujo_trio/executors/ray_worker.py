"""The Ray task that runs one job: ``trio.run`` of the job's body on a worker.

``ray.cancel`` interrupts a running task by raising ``KeyboardInterrupt`` in it. The
task runs Trio with ``restrict_keyboard_interrupt_to_checkpoints=True`` and keeps
its main task idle, so that interrupt arrives as a cancellation of the job: every
call in flight is cancelled and settled as a local one would be, the job's outcome
(its unfinished records included) is sent from a shielded, bounded cleanup, and
only then does the task return. The interrupt is Ray's message "cancel this task";
once it has been acted on, the task ends normally with ``"cancelled"``.
"""

from __future__ import annotations

import itertools
from typing import Any

import trio

from ..dsl.pipeline import Pipeline
from ..runtime.remote import JobSpec, WorkerJob
from ..runtime.wire import decode, encode

#: How long a worker long-polls the relay for answers before asking again.
RECEIVE_POLL_S = 5.0
#: How long a finished or cancelled job may take to hand its outcome to the relay.
FINISH_S = 30.0


def _only_interrupts(error: BaseException) -> bool:
    if isinstance(error, BaseExceptionGroup):
        return all(_only_interrupts(inner) for inner in error.exceptions)
    return isinstance(error, KeyboardInterrupt | trio.Cancelled)


def run_remote_job(body: Pipeline, spec: JobSpec, relay: Any, job: int) -> str:
    """Run one job (the body of the Ray task); returns ``"done"`` or ``"cancelled"``."""
    try:
        trio.run(_main, body, spec, relay, job, restrict_keyboard_interrupt_to_checkpoints=True)
    except BaseException as error:
        if _only_interrupts(error):
            return "cancelled"  # ray.cancel: acted on above, the outcome already sent
        raise
    return "done"


async def _main(body: Pipeline, spec: JobSpec, relay: Any, job: int) -> None:
    async with trio.open_nursery() as services:
        link = RayLink(relay, job, services)
        services.start_soon(link.flush_forever, name=f"flujo-remote-send:{spec.name}")
        try:
            # The main task only waits here: Ray's interrupt lands on this wait and
            # cancels the job as a whole.
            async with trio.open_nursery() as work:
                work.start_soon(_job, body, spec, link, name=f"flujo-remote-job:{spec.name}")
        finally:
            services.cancel_scope.cancel(reason="flujo-trio: the remote job is over")


async def _job(body: Pipeline, spec: JobSpec, link: RayLink) -> None:
    job = WorkerJob(spec, body, link)
    try:
        await job.run()
    finally:
        with trio.move_on_after(FINISH_S) as cleanup:
            cleanup.shield = True
            await link.finish(job.outcome())


class RayLink:
    """The worker's end of the relay: ordered messages out, answers in.

    Messages queued in one scheduling pass go out as one actor call; answers are
    received by a long poll that starts with the first question (a job that never
    asks anything, with no limits and a store that is not durable, makes no poll).
    """

    def __init__(self, relay: Any, job: int, nursery: trio.Nursery) -> None:
        self.relay, self.job = relay, job
        self._nursery = nursery
        self._pending: list[str] = []
        self._wake = trio.Event()
        self._last: Any = None
        self._answers: dict[int, list[Any]] = {}
        self._waiting: dict[int, trio.Event] = {}
        self._numbers = itertools.count(1)
        self._receiving = False

    def send(self, message: list[Any]) -> None:
        self._pending.append(encode(message, what="a message to the run's owner"))
        self._wake.set()

    async def ask(self, message: list[Any]) -> list[Any]:
        number = next(self._numbers)
        answered = self._waiting[number] = trio.Event()
        self.send(["ask", number, *message])
        if not self._receiving:
            self._receiving = True
            self._nursery.start_soon(self._receive, name=f"flujo-remote-receive:{self.job}")
        try:
            await answered.wait()
        finally:
            del self._waiting[number]
        return self._answers.pop(number)

    async def flush_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            batch, self._pending = self._pending, []
            self._last = self.relay.post.remote(self.job, batch)

    async def finish(self, outcome: str) -> None:
        """Send the outcome after everything else, and wait until the relay holds it."""
        import ray

        self._pending.append(outcome)
        self._flush()
        await trio.to_thread.run_sync(ray.get, self._last)
        self.relay.close.remote(self.job)

    async def _receive(self) -> None:
        import ray

        while True:
            texts = await trio.to_thread.run_sync(
                ray.get,
                self.relay.receive.remote(self.job, RECEIVE_POLL_S),
                abandon_on_cancel=True,
            )
            for text in texts:
                answer = decode(text, what="an answer from the run's owner")
                number = answer[1]
                waiting = self._waiting.get(number)
                if waiting is not None:
                    self._answers[number] = answer[2:]
                    waiting.set()
