"""One fan-out on Ray: submitting its jobs, carrying their messages, cancelling them.

:func:`open_ray_jobs` owns, for the duration of one fan-out, a relay actor and a
service task, the *pump*, that hands every worker message to that job's
:class:`~flujo_trio.runtime.bridge.JobBridge` (ledger and journal of the run). Each
task's result (the job's outcome) comes through Ray's callback when the task ends,
which also tells a task that ended without one (a worker that died, a task cancelled
before it started). The pump is shielded from the
run's cancellation until every job has ended, because a cancelled job still reports
through it what it spent; each job's wait for that is bounded by ``cancel_grace_s``.
No thread ever blocks on Ray (see :mod:`.ray_refs`).

A job ends when its outcome arrived, or when its task ended without one. The run
cancelling a job (a breach, a failing sibling, the caller) ``ray.cancel``-s its task:
one still queued never starts, a running one is interrupted and reports; one that
does not report within ``cancel_grace_s`` is killed (``force=True``) and its open
calls are charged their reservations. The session ends only once every task it
submitted has ended, so no Ray task outlives the run.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import trio

from ..context import PipelineContext
from ..dsl.pipeline import Pipeline
from ..errors import ConfigurationError, FlujoTrioError
from ..runtime.bridge import JobBridge, RemoteJobError
from ..runtime.executor import JobSession
from ..runtime.frame import Frame
from ..runtime.plan import RunPlan
from ..runtime.record import StepRecord
from ..runtime.remote import Chain, JobSpec
from ..runtime.wire import encode
from ..state.journal import Decision, Entry
from ..usage import NO_USAGE
from .ray_connect import connect
from .ray_refs import on_ready, result_of
from .ray_relay import Relay
from .ray_worker import NOT_STARTED, run_remote_job

if TYPE_CHECKING:
    from ..runtime.fanout import Job
    from .ray import RayExecutor

logger = logging.getLogger("flujo_trio")

#: How long one long poll of the relay by the pump waits.
TAKE_POLL_S = 1.0
#: Pump rounds a job whose worker died waits for messages it sent to come through.
DRAIN_ROUNDS = 2
CANCELLED_BEFORE_START = "cancelled before it started"


@asynccontextmanager
async def open_ray_jobs(executor: RayExecutor, frame: Frame) -> AsyncIterator[JobSession]:
    import ray

    connect(executor)
    options: dict[str, Any] = {"num_cpus": 0}
    if executor.runtime_env is not None:
        options["runtime_env"] = dict(executor.runtime_env)
    relay: Any = ray.remote(Relay).options(**options).remote()
    session = RaySession(executor, frame, relay)
    try:
        async with trio.open_nursery() as services:
            session.services = services
            services.start_soon(session.pump, name=f"flujo-ray-pump:{frame.step_label}")
            try:
                yield session
            finally:
                await session.close()
                services.cancel_scope.cancel(reason="flujo-trio: the fan-out is over")
    finally:
        ray.kill(relay)


class _Attempt:
    """One submission of one job: its bridge, its task, and how the task ended."""

    __slots__ = ("bridge", "ended", "ref")

    def __init__(self, bridge: JobBridge, ref: Any) -> None:
        self.bridge, self.ref = bridge, ref
        self.ended: str | None = None
        """Why the task ended without an outcome (None: it runs, or returned one)."""


class RaySession:
    """Runs the jobs of one fan-out as Ray tasks (a :class:`JobSession`)."""

    def __init__(self, executor: RayExecutor, frame: Frame, relay: Any) -> None:
        import ray

        self.executor, self.frame, self.relay = executor, frame, relay
        self.services: trio.Nursery | None = None
        self._task_options: dict[str, Any] = {"num_cpus": executor.cpus_per_job, "max_retries": 0}
        if executor.runtime_env is not None:
            self._task_options["runtime_env"] = dict(executor.runtime_env)
        self._task = ray.remote(run_remote_job)
        in_flight = executor.max_in_flight
        if in_flight is None:
            resources: Any = ray.cluster_resources  # untyped in Ray
            cpus = float(resources().get("CPU", 1))
            in_flight = max(1, int(cpus // executor.cpus_per_job)) * 2
        self._slots = trio.CapacityLimiter(in_flight)
        self._numbers = itertools.count(1)
        self._attempts: dict[int, _Attempt] = {}
        self._running: dict[int, Any] = {}
        """Tasks submitted and not seen ending, by job number."""
        self._bodies: dict[int, tuple[Pipeline, Any, RunPlan]] = {}
        self._replay = _replay_index(frame)
        self._answers: list[tuple[int, int, str]] = []
        self._batching = False
        self._task_ended = trio.Event()
        self._rounds = 0
        self._draining: dict[int, tuple[_Attempt, int]] = {}
        self._pump_scope = trio.CancelScope(shield=True)

    # -- the JobSession hook -------------------------------------------------------------

    async def run_job(self, job: Job, frame: Frame, record: StepRecord) -> PipelineContext:
        async with self._slots:
            prior: list[Entry] = []
            retried = 0
            while True:
                attempt = await self._run_attempt(job, frame, record, prior)
                bridge = attempt.bridge
                if bridge.outcome is not None or bridge.failure is not None:
                    break
                if attempt.ended is None or retried >= self.executor.retries:
                    break
                retried += 1
                record.metadata["ray_retries"] = retried
                prior.extend(attempt.bridge.entries)
            context = attempt.bridge.attach(trio.current_time())
            if context is not None:
                return context
            # The worker died (and retries are used up): the job fails, saying so.
            record.finish(False, None, _died(job.name, attempt.ended, retried))
            return frame.context

    async def _run_attempt(
        self, job: Job, frame: Frame, record: StepRecord, prior: list[Entry]
    ) -> _Attempt:
        body_ref, plan = self._body(job)
        number = next(self._numbers)
        bridge = JobBridge(
            frame,
            record,
            allowing=plan.allowing,
            spawn=self._spawn,
            reply=lambda question, message: self._answer(number, question, message),
        )
        spec = self._spec(job, frame, prior)
        name = f"flujo:{frame.run.run_id}:{frame.step_label}"
        ref = self._task.options(name=name, **self._task_options).remote(
            body_ref, spec, self.relay, number
        )
        attempt = self._attempts[number] = _Attempt(bridge, ref)
        self._running[number] = ref
        on_ready(ref, lambda future: self._ended(number, future))
        try:
            await bridge.done.wait()
        except BaseException:
            # The relay first: a task Ray cannot interrupt (it is just starting) learns
            # from it that its job was given up.
            self.relay.close.remote([number])
            await self._stop(attempt)
            self._settle_open(attempt, record)
            if bridge.outcome is not None and bridge.failure is None:
                try:  # what it did, before the cancellation goes on
                    bridge.attach(trio.current_time())
                except FlujoTrioError as error:
                    logger.warning("flujo-trio: %s (while cancelling it)", error)
            raise
        finally:
            del self._attempts[number]
        if attempt.ended is not None:
            self.relay.close.remote([number])
        self._settle_open(attempt, record)
        return attempt

    async def _stop(self, attempt: _Attempt) -> None:
        """Cancel the job's task: a queued one never starts, a running one reports what
        it did; one that does not within ``cancel_grace_s`` is killed."""
        import ray

        with trio.move_on_after(self.executor.cancel_grace_s) as cleanup:
            cleanup.shield = True
            ray.cancel(attempt.ref, recursive=False)  # its relay calls must get through
            await attempt.bridge.done.wait()
        if not attempt.bridge.done.is_set():
            ray.cancel(attempt.ref, force=True, recursive=False)

    def _settle_open(self, attempt: _Attempt, record: StepRecord) -> None:
        charged = attempt.bridge.close()
        if charged != NO_USAGE:
            record.charge(charged)
            record.metadata["usage_estimated"] = True

    # -- what a job needs ----------------------------------------------------------------

    def _body(self, job: Job) -> tuple[Any, RunPlan]:
        import ray

        found = self._bodies.get(id(job.body))
        if found is None:
            try:
                ref = ray.put(job.body)
            except Exception as error:
                raise ConfigurationError(
                    f"The body of {job.name!r} cannot be sent to Ray workers ({error}): its "
                    "agents and callables must pickle (module-level functions, or objects "
                    "without locks, clients or open files)"
                ) from error
            found = (job.body, ref, RunPlan.of(job.body, type(self.frame.context)))
            self._bodies[id(job.body)] = found
        return found[1], found[2]

    def _spec(self, job: Job, frame: Frame, prior: list[Entry]) -> JobSpec:
        run, scope = frame.run, frame.scope
        chain = scope.chain()
        replay = self._replay.get(job.name)
        if prior:
            replay = (*(replay or ()), *prior)
        answer_for = run.replay.answer_for if run.replay is not None else None
        if answer_for is not None and answer_for[: len(frame.address)] != frame.address:
            answer_for = None
        return JobSpec(
            run_id=run.run_id,
            name=job.name,
            kind=job.kind,
            data=job.data,
            context=frame.context,
            path=frame.path,
            address=frame.address,
            position=frame.position,
            chain=Chain(
                run_level=scope.parent is None,
                label=scope.label,
                limited=any(not s.limits.unlimited for s in chain),
                limited_cost=any(s.limits.total_cost_usd_limit is not None for s in chain),
                limited_tokens=any(s.limits.total_tokens_limit is not None for s in chain),
            ),
            durable=run.journal.durable,
            replay=replay if run.replay is not None or prior else None,
            answer_for=answer_for,
            answer=run.replay.answer if answer_for is not None and run.replay else None,
            resources=run.resources,
        )

    # -- messages ------------------------------------------------------------------------

    def _spawn(self, fn: Callable[..., Any], *args: Any, name: str) -> None:
        assert self.services is not None
        self.services.start_soon(fn, *args, name=name)

    def _answer(self, number: int, question: int, message: list[Any]) -> None:
        self._answers.append((number, question, encode(message, what="an answer to a worker")))
        if not self._batching:
            self._flush_answers()

    def _flush_answers(self) -> None:
        if self._answers:
            answers, self._answers = self._answers, []
            self.relay.give.remote(answers)

    async def pump(self) -> None:
        """Hand every worker message to its job's bridge, in the order it was sent."""
        import ray

        with self._pump_scope:
            while True:
                try:
                    batches = await result_of(self.relay.take.remote(TAKE_POLL_S))
                except ray.exceptions.RayError as error:
                    self._relay_lost(error)
                    return
                self._batching = True
                try:
                    for number, texts in batches:
                        attempt = self._attempts.get(number)
                        if attempt is not None:
                            for text in texts:
                                attempt.bridge.handle(text)
                finally:
                    self._batching = False
                    self._flush_answers()
                self._rounds += 1
                for number, (attempt, after) in list(self._draining.items()):
                    if attempt.bridge.done.is_set() or after <= self._rounds:
                        del self._draining[number]
                        attempt.bridge.done.set()

    def _relay_lost(self, error: BaseException) -> None:
        failure = RemoteJobError(
            f"The relay actor of {self.frame.step_label!r} stopped ({error}); its jobs "
            "cannot report. Check the Ray cluster (ray status) and run again"
        )
        for attempt in self._attempts.values():
            attempt.bridge.failure = attempt.bridge.failure or failure
            attempt.bridge.done.set()

    def _ended(self, number: int, future: concurrent.futures.Future[Any]) -> None:
        """Ray says the task of ``number`` ended: with the job's outcome (applied once
        the messages sent before it are), or without one."""
        self._running.pop(number, None)
        self._task_ended.set()
        self._task_ended = trio.Event()
        attempt = self._attempts.get(number)
        if attempt is None or attempt.bridge.done.is_set():
            return
        value = None if future.exception() is not None else future.result()
        if isinstance(value, str) and value != NOT_STARTED:  # the worker's encoded outcome
            attempt.bridge.finish(value)
            return
        attempt.ended = _how_it_ended(future)
        failed = _failed_task(future, attempt.bridge.record.name)
        if failed is not None:  # the task itself raised: running it again cannot help
            attempt.bridge.failure = failed
            attempt.bridge.done.set()
        elif attempt.ended in (NOT_STARTED, CANCELLED_BEFORE_START):
            attempt.bridge.done.set()  # it sent nothing
        else:
            # Its worker died: messages it sent may still be in the relay, so its job
            # ends (without an outcome) after a few more pump rounds.
            self._draining[number] = (attempt, self._rounds + DRAIN_ROUNDS)

    async def close(self) -> None:
        """Every job has ended: wait (bounded) until their tasks have too, then stop."""
        import ray

        with trio.move_on_after(self.executor.cancel_grace_s) as cleanup:
            cleanup.shield = True
            while self._running:
                await self._task_ended.wait()
        for ref in self._running.values():
            ray.cancel(ref, force=True, recursive=False)
        self._pump_scope.cancel(reason="flujo-trio: the fan-out is over")


def _how_it_ended(future: concurrent.futures.Future[Any]) -> str:
    """Why a task ended without an outcome: not started (cancelled first), or Ray's
    own error (e.g. a dead worker)."""
    import ray

    error = future.exception()
    if error is None:
        value = future.result()
        return value if value == NOT_STARTED else f"returned {str(value)[:200]!r}"
    if isinstance(error, ray.exceptions.TaskCancelledError):
        return CANCELLED_BEFORE_START
    text = str(error).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(error).__name__}: {first}"[:500]


def _failed_task(future: concurrent.futures.Future[Any], name: str) -> RemoteJobError | None:
    """The error for a task that raised on its worker instead of running its job (the
    job's own failures come back in its outcome): most often a module of the pipeline
    the worker cannot import."""
    import ray

    error = future.exception()
    if not isinstance(error, ray.exceptions.RayTaskError):
        return None
    cause = getattr(error, "cause", None)
    what = f"{type(cause).__name__}: {cause}" if cause is not None else str(error)
    return RemoteJobError(
        f"The Ray task of {name!r} failed on its worker before it could run the job "
        f"({what[:500]}). The pipeline's modules must be importable on every worker: "
        "install them there, or ship them with RayExecutor(runtime_env={'working_dir': ...})"
    )


def _died(name: str, how: str | None, retried: int) -> str:
    again = f", and again on {retried} retr{'y' if retried == 1 else 'ies'}" if retried else ""
    return (
        f"The Ray worker running {name!r} died before it finished ({how}){again}. Look at "
        "the worker's log (ray logs) for why; RayExecutor(retries=...) runs a job again "
        "after a worker dies"
    )


def _replay_index(frame: Frame) -> dict[str, tuple[Entry, ...]]:
    """The journal entries of an earlier execution under each job of this fan-out."""
    replay = frame.run.replay
    if replay is None:
        return {}
    depth = len(frame.address)
    prefix = frame.address
    found: dict[str, list[Entry]] = defaultdict(list)

    def job_of(address: tuple[Any, ...]) -> str | None:
        if len(address) > depth and address[:depth] == prefix:
            name = address[depth]
            return name if isinstance(name, str) else None
        return None

    for address, saved in replay.steps.items():
        if (name := job_of(address)) is not None:
            found[name].append(saved)
    for address, calls in replay.calls.items():
        if (name := job_of(address)) is not None:
            found[name].extend(calls.values())
    for address, value in replay.decisions.items():
        if (name := job_of(address)) is not None:
            found[name].append(Decision(address, value))
    return {name: tuple(entries) for name, entries in found.items()}
