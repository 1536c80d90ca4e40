"""The Runner: one run nursery, one governor, the pipeline's actors, durable checkpoints."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import partial
from typing import Any

import trio

from ..context import PipelineContext, RunStatus
from ..dsl.base import StepBase
from ..dsl.pipeline import Pipeline, as_pipeline
from ..dsl.walk import scoped_agents
from ..errors import (
    ConfigurationError,
    FlujoTrioError,
    ResumeError,
    SerializationError,
    UsageLimitExceededError,
)
from ..events import Event, RunFinished, RunPaused, RunStarted
from ..results import PipelineResult
from ..state.memory import MemoryStore
from ..state.models import RunState
from ..state.protocol import StateStore
from ..usage import UsageLimits
from .bus import EventBus, Hook
from .control import Answer, RunControl
from .dispatch import run_step
from .errors import sole_error
from .frame import Frame
from .governor import Governor, GovernorClient, Ledger
from .record import StepRecord

logger = logging.getLogger("flujo_trio")

#: How long saving a cancelled run may hold up the caller's cancellation.
CANCEL_SAVE_TIMEOUT_S = 5.0

_TERMINAL = (RunStatus.COMPLETED, RunStatus.FAILED)


class Runner:
    """Runs a pipeline, from a Trio task (:meth:`run`) or from plain code (:meth:`run_sync`).

    A Runner holds only configuration, so one Runner can serve many concurrent runs.

    Args:
        pipeline: a :class:`Pipeline` or a single step.
        limits: cost and token limits for each run as a whole (across resumes too).
        context_type: the :class:`PipelineContext` subclass runs start with.
        store: where run state is checkpointed; a :class:`MemoryStore` by default.
        hooks: callables (sync or async) that receive every run event; raising
            :class:`AbortRun` stops the run, other errors are logged and ignored.
        name: recorded as the run's ``pipeline_name``; defaults to the first step's name.
        resources: passed to agents that accept a ``resources`` keyword.
        origin: recorded with each run (the CLI stores its TARGET here).
    """

    def __init__(
        self,
        pipeline: Pipeline | StepBase,
        *,
        limits: UsageLimits | None = None,
        context_type: type[PipelineContext] = PipelineContext,
        store: StateStore | None = None,
        hooks: Sequence[Any] = (),
        name: str | None = None,
        resources: Any = None,
        origin: str | None = None,
    ) -> None:
        self.pipeline = as_pipeline("Runner", pipeline)
        if limits is not None and not isinstance(limits, UsageLimits):
            raise ConfigurationError(f"limits must be a UsageLimits or None, got {limits!r}")
        if not (isinstance(context_type, type) and issubclass(context_type, PipelineContext)):
            raise ConfigurationError(
                f"context_type must be PipelineContext or a subclass of it, got {context_type!r}"
            )
        if store is not None and not isinstance(store, StateStore):
            raise ConfigurationError(
                f"store must implement StateStore (MemoryStore, SqliteStore, ...), got {store!r}"
            )
        for hook in hooks:
            if not callable(hook):
                raise ConfigurationError(f"hooks must be callables taking an event, got {hook!r}")
        self.limits = limits or UsageLimits()
        self.context_type = context_type
        self.store: StateStore = store if store is not None else MemoryStore()
        self.name = name if name is not None else self.pipeline.name
        self.resources = resources
        self.hooks: tuple[Hook, ...] = tuple(hooks)
        self.origin = origin
        self._scoped_agents = scoped_agents(self.pipeline)

    # -- starting and resuming ---------------------------------------------------------

    async def run(
        self,
        input: Any = None,
        *,
        context: PipelineContext | None = None,
        run_id: str | None = None,
    ) -> PipelineResult:
        """Run the pipeline on ``input``.

        Returns the result of a completed, failed or paused run. Raises
        :class:`UsageLimitExceededError` (with ``.result``) on a budget stop, and lets
        :class:`trio.Cancelled` through when the caller cancels: never a result then
        (the run is stored as ``cancelled`` and can be resumed).
        """
        return await self._start(input, context, run_id, stream=None)

    async def _start(
        self,
        input: Any,
        context: PipelineContext | None,
        run_id: str | None,
        stream: trio.MemorySendChannel[Event] | None,
    ) -> PipelineResult:
        if run_id is None:
            run_id = uuid.uuid4().hex
        elif await self.store.load_run(run_id) is not None:
            raise ConfigurationError(
                f"Run {run_id!r} already exists in the store: resume it, or pick a new run id"
            )
        context = self._start_context(context, run_id)
        state = RunState(run_id, self.name, RunStatus.RUNNING, input, context, origin=self.origin)
        await self._save(state, [], Ledger(self.limits), RunStatus.RUNNING)
        return await self._execute(state, stream=stream)

    @asynccontextmanager
    async def stream(
        self,
        input: Any = None,
        *,
        context: PipelineContext | None = None,
        run_id: str | None = None,
    ) -> AsyncIterator[trio.MemoryReceiveChannel[Event]]:
        """Run the pipeline and receive its events as they happen.

        ``async with runner.stream(input) as events: async for event in events: ...``
        The run is a task of a nursery this context manager owns. A slow consumer
        holds the run back (no unbounded buffering); leaving the block early cancels
        the run, which is stored as ``cancelled``. Errors the run raises (e.g.
        :class:`UsageLimitExceededError`) are raised when the block exits.
        """
        async with self._streaming(partial(self._start, input, context, run_id)) as events:
            yield events

    @asynccontextmanager
    async def stream_resume(
        self, run_or_id: PipelineResult | str, human_input: Any = None
    ) -> AsyncIterator[trio.MemoryReceiveChannel[Event]]:
        """:meth:`resume`, with events as in :meth:`stream`."""
        async with self._streaming(partial(self._resume, run_or_id, human_input)) as events:
            yield events

    @asynccontextmanager
    async def _streaming(
        self, start: Callable[[trio.MemorySendChannel[Event]], Awaitable[PipelineResult]]
    ) -> AsyncIterator[trio.MemoryReceiveChannel[Event]]:
        send, receive = trio.open_memory_channel[Event](0)

        async def produce() -> None:
            with send:
                await start(send)

        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(produce, name=f"flujo-run:{self.name}")
                try:
                    yield receive
                finally:
                    # Cancel before closing, so a run blocked on a send is cancelled
                    # (and stored as such) rather than failing on a closed channel.
                    nursery.cancel_scope.cancel(reason="flujo-trio: stream consumer left")
                    receive.close()
        except BaseExceptionGroup as group:
            raise sole_error(group) from None

    async def resume(
        self, run_or_id: PipelineResult | str, human_input: Any = None
    ) -> PipelineResult:
        """Continue a stored run where it stopped; finished steps are never re-run.

        A paused run needs ``human_input`` (the answer to its first paused human step,
        in declared order); a run that stopped between steps (a crash, a cancel, a
        budget stop with raised limits) continues without. Raises :class:`ResumeError`
        for unknown, completed or failed runs, for input sent to a run that is not
        paused, and for input that does not fit the human step (the stored run is left
        unchanged then).
        """
        return await self._resume(run_or_id, human_input, None)

    async def _resume(
        self,
        run_or_id: PipelineResult | str,
        human_input: Any,
        stream: trio.MemorySendChannel[Event] | None,
    ) -> PipelineResult:
        run_id = run_or_id.run_id if isinstance(run_or_id, PipelineResult) else run_or_id
        if not isinstance(run_id, str):
            raise ResumeError(f"resume() takes a run id or a PipelineResult, got {run_or_id!r}")
        state = await self.store.load_run(run_id)
        if state is None:
            raise ResumeError(f"No run {run_id!r} in this runner's store")
        if state.pipeline_name != self.name:
            raise ResumeError(
                f"Run {run_id!r} belongs to pipeline {state.pipeline_name!r}, but this runner "
                f"runs {self.name!r}: resume it with the runner that started it"
            )
        if state.status in _TERMINAL:
            raise ResumeError(f"Run {run_id!r} is {state.status.value}: there is nothing to resume")
        target: StepRecord | None = None
        if state.status is RunStatus.PAUSED:
            target = _first_paused(state.steps)
            if human_input is None or target is None:
                where = f" at {target.name!r}" if target is not None else ""
                raise ResumeError(
                    f"Run {run_id!r} is paused{where} waiting for a person: "
                    "pass human_input=... to resume it"
                )
        elif human_input is not None:
            raise ResumeError(
                f"Run {run_id!r} is {state.status.value}, not paused: it takes no human input; "
                "call resume(run_id) without human_input to continue it"
            )
        answer = Answer(human_input) if target is not None else None
        return await self._execute(
            state, prior=state.steps, answer_for=target, answer=answer, stream=stream
        )

    def run_sync(
        self,
        input: Any = None,
        *,
        context: PipelineContext | None = None,
        run_id: str | None = None,
    ) -> PipelineResult:
        """Run from synchronous code: starts a Trio event loop for the run."""
        return trio.run(partial(self.run, input, context=context, run_id=run_id))

    def _start_context(self, context: PipelineContext | None, run_id: str) -> PipelineContext:
        if context is None:
            context = self.context_type()
        elif not isinstance(context, self.context_type):
            raise ConfigurationError(
                f"context must be an instance of {self.context_type.__name__}, "
                f"got {type(context).__name__}"
            )
        context.run_id = run_id
        context.status = RunStatus.RUNNING
        return context

    # -- one execution (a run, or a resume replaying what was saved) -------------------------

    async def _execute(
        self,
        state: RunState,
        *,
        prior: list[StepRecord] | None = None,
        answer_for: StepRecord | None = None,
        answer: Answer | None = None,
        stream: trio.MemorySendChannel[Event] | None = None,
    ) -> PipelineResult:
        context = state.context
        context.status = RunStatus.RUNNING
        state.limits = self.limits
        root = StepRecord.start(self.name, StepRecord(self.name, children=list(prior or [])))
        ledger = Ledger(self.limits, spent_cost=state.spent_cost, spent_tokens=state.spent_tokens)
        governed = trio.CancelScope()
        governor = Governor.open(ledger, governed)
        control = RunControl(governed, answer_for=answer_for, answer=answer)
        events = EventBus(self.hooks, stream, control, self.limits, state.run_id)
        unlimited = (
            self.limits.total_cost_usd_limit is None and self.limits.total_tokens_limit is None
        )
        client = GovernorClient(governor.send_channel, unlimited=unlimited)
        frame = Frame(context, client, control, events, self.resources)
        last: StepRecord | None = None
        try:
            try:
                async with contextlib.AsyncExitStack() as scopes:
                    # Per-run agent scopes (e.g. an asyncio loop to bridge to) wrap the
                    # run's nursery, so every step task inherits them.
                    for agent in self._scoped_agents:
                        await scopes.enter_async_context(agent.run_scope())
                    async with trio.open_nursery() as nursery:
                        await nursery.start(governor.serve, name="flujo-governor")
                        try:
                            if events.active:
                                await events.emit(
                                    RunStarted(state.run_id, self.name, resumed=prior is not None)
                                )
                            with governed:
                                last = await self._drive(state, frame, root, ledger)
                        finally:
                            governor.close()
            except BaseExceptionGroup as group:
                raise sole_error(group) from None
        except trio.Cancelled:
            governor.finish()
            logger.info("run %s of %s cancelled by its caller; saving it", state.run_id, self.name)
            with trio.move_on_after(CANCEL_SAVE_TIMEOUT_S) as cleanup:
                cleanup.shield = True
                await self._save(state, root.children, ledger, RunStatus.CANCELLED)
                if self.hooks:
                    cancelled = self._result(
                        state, root, ledger, RunStatus.CANCELLED, "the caller cancelled the run"
                    )
                    await events.emit(RunFinished(cancelled), hooks_only=True)
            raise
        governor.finish()
        if control.aborted is not None and root.children:
            # Say why on the step the run stopped at (it may itself have succeeded).
            stopped = root.children[-1]
            stopped.metadata["aborted_by_hook"] = True
            if stopped.finished and control.aborted not in (stopped.feedback or ""):
                stopped.feedback = "; ".join(filter(None, [stopped.feedback, control.aborted]))
        status = self._final_status(ledger, control, last)
        logger.info(
            "run %s of %s ended %s: $%s, %d tokens",
            state.run_id,
            self.name,
            status.value,
            ledger.spent_cost,
            ledger.spent_tokens,
        )
        if status is RunStatus.PAUSED:
            leaf = _first_paused(root.children)
            context.pause_message = leaf.metadata.get("pause_message") if leaf else None
        await self._save(state, root.children, ledger, status)
        reason = ledger.stop_message or control.stop_reason or "the run stopped"
        result = self._result(state, root, ledger, status, reason)
        if events.active:
            if status is RunStatus.PAUSED:
                await events.emit(RunPaused(state.run_id, context.pause_message, result))
            await events.emit(RunFinished(result))
        if ledger.stop_message is not None:
            raise UsageLimitExceededError(ledger.stop_message, result)
        if control.error_type is not None:
            raise control.error_type(control.message or "run halted", result)
        return result

    def _result(
        self,
        state: RunState,
        root: StepRecord,
        ledger: Ledger,
        status: RunStatus,
        interrupted: str,
    ) -> PipelineResult:
        spent = ledger.spent
        return PipelineResult(
            run_id=state.run_id,
            step_history=[child.to_result(interrupted) for child in root.children],
            total_cost_usd=spent.cost_usd,
            total_tokens=spent.tokens,
            final_context=state.context,
            status=status,
        )

    async def _drive(
        self, state: RunState, frame: Frame, root: StepRecord, ledger: Ledger
    ) -> StepRecord | None:
        """Top-level steps in order, with a checkpoint after each one that ran (for a
        durable store: that is what lets a crashed process's run resume)."""
        data = state.input
        last: StepRecord | None = None
        durable = getattr(self.store, "durable", True)
        for step in self.pipeline.steps:
            saved = root.peek_claim()
            last = await run_step(step, data, frame, root)
            reused = last is saved and last.reusable
            if durable and not reused:
                await self._save(state, root.children, ledger, RunStatus.RUNNING)
            if not last.success:
                break
            frame.context.step_outputs[step.name] = last.output
            data = last.output
        return last

    @staticmethod
    def _final_status(ledger: Ledger, control: RunControl, last: StepRecord | None) -> RunStatus:
        if ledger.stop_message is not None:
            return RunStatus.BUDGET_EXCEEDED
        if control.error_type is not None or control.aborted is not None or last is None:
            return RunStatus.FAILED
        if last.paused:
            return RunStatus.PAUSED
        return RunStatus.COMPLETED if last.success else RunStatus.FAILED

    async def _save(
        self, state: RunState, steps: list[StepRecord], ledger: Ledger, status: RunStatus
    ) -> None:
        state.status = status
        state.context.status = status
        state.steps = list(steps)
        state.spent_cost, state.spent_tokens = ledger.spent_cost, ledger.spent_tokens
        state.updated_at = datetime.now(UTC)
        try:
            await self.store.save_run(state)
        except SerializationError:
            await self._mark_failed(state.run_id)
            raise

    async def _mark_failed(self, run_id: str) -> None:
        """The run cannot be checkpointed any more: keep its last good checkpoint, but
        stored as failed, so it is listed as such and not resumed into the same error."""
        with contextlib.suppress(FlujoTrioError):
            last_good = await self.store.load_run(run_id)
            if last_good is not None:
                last_good.status = last_good.context.status = RunStatus.FAILED
                await self.store.save_run(last_good)


def _first_paused(records: list[StepRecord]) -> StepRecord | None:
    for record in records:
        leaf = record.first_paused_leaf()
        if leaf is not None:
            return leaf
    return None
