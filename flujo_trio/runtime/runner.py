"""The Runner: configuration for runs of one pipeline, and the ways to start them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, final

import attrs
import trio

from ..context import PipelineContext
from ..dsl.pipeline import Pipeline, StepBase, as_pipeline
from ..errors import ConfigurationError, ResumeError
from ..events import Event
from ..results import PipelineResult
from ..state.memory import MemoryStore
from ..state.protocol import StateStore
from ..usage import UsageLimits
from .actors import ACTORS
from .bus import Hook
from .errors import sole_error
from .kernel import Kernel
from .opening import Resume, Start
from .plan import RunPlan
from .run import open_run


def _pipeline(value: Pipeline | StepBase) -> Pipeline:
    return as_pipeline("Runner", value)


def _limits(value: UsageLimits | None) -> UsageLimits:
    if value is None:
        return UsageLimits()
    if not isinstance(value, UsageLimits):
        raise ConfigurationError(f"limits must be a UsageLimits or None, got {value!r}")
    return value


def _store(value: StateStore | None) -> StateStore:
    if value is None:
        return MemoryStore()
    if not isinstance(value, StateStore):
        raise ConfigurationError(
            f"store must implement StateStore (MemoryStore, SqliteStore, ...), got {value!r}"
        )
    return value


def _hooks(value: Sequence[Any]) -> tuple[Hook, ...]:
    hooks = tuple(value)
    for hook in hooks:
        if not callable(hook):
            raise ConfigurationError(f"hooks must be callables taking an event, got {hook!r}")
    return hooks


def _check_context_type(_: object, __: object, value: Any) -> None:
    if not (isinstance(value, type) and issubclass(value, PipelineContext)):
        raise ConfigurationError(
            f"context_type must be PipelineContext or a subclass of it, got {value!r}"
        )


def _run_id(run_or_id: PipelineResult | str) -> str:
    run_id = run_or_id.run_id if isinstance(run_or_id, PipelineResult) else run_or_id
    if not isinstance(run_id, str):
        raise ResumeError(f"resume() takes a run id or a PipelineResult, got {run_or_id!r}")
    return run_id


@final
@attrs.frozen
class Runner:
    """Runs a pipeline, from a Trio task (:meth:`run`) or from plain code (:meth:`run_sync`).

    A Runner holds only configuration, so one Runner can serve many concurrent runs;
    vary it with ``attrs.evolve(runner, store=...)``.

    Args:
        pipeline: a :class:`Pipeline` or a single step.
        limits: cost, token and request limits for each run as a whole (across
            resumes too); ``run(..., limits=)`` overrides them for one run.
        context_type: the :class:`PipelineContext` subclass runs start with.
        store: where run state is kept; a :class:`MemoryStore` by default.
        hooks: callables (sync or async) that receive every run event; raising
            :class:`AbortRun` stops the run, other errors are logged and ignored.
        name: recorded as the run's ``pipeline_name``; defaults to the first step's name.
        resources: passed to agents that accept a ``resources`` keyword.
        origin: recorded with each run (the CLI stores its TARGET here).
    """

    pipeline: Pipeline = attrs.field(converter=_pipeline)
    limits: UsageLimits = attrs.field(default=None, converter=_limits, kw_only=True)
    context_type: type[PipelineContext] = attrs.field(
        default=PipelineContext, validator=_check_context_type, kw_only=True
    )
    store: StateStore = attrs.field(default=None, converter=_store, kw_only=True)
    hooks: tuple[Hook, ...] = attrs.field(default=(), converter=_hooks, kw_only=True)
    name: str = attrs.field(default=None, kw_only=True)
    resources: Any = attrs.field(default=None, kw_only=True)
    origin: str | None = attrs.field(default=None, kw_only=True)
    plan: RunPlan = attrs.field(init=False, eq=False, repr=False)
    _kernel: Kernel = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.name is None:
            object.__setattr__(self, "name", self.pipeline.name)
        elif not isinstance(self.name, str) or not self.name:
            raise ConfigurationError(f"name must be a non-empty string, got {self.name!r}")
        if self.origin is not None and not isinstance(self.origin, str):
            raise ConfigurationError(f"origin must be a string or None, got {self.origin!r}")
        object.__setattr__(self, "plan", RunPlan.of(self.pipeline, self.context_type))
        object.__setattr__(self, "_kernel", Kernel(ACTORS))

    # -- starting and resuming ---------------------------------------------------------

    async def run(
        self,
        input: Any = None,
        *,
        context: PipelineContext | None = None,
        run_id: str | None = None,
        limits: UsageLimits | None = None,
    ) -> PipelineResult:
        """Run the pipeline on ``input``.

        Returns the result of a completed, failed or paused run. Raises
        :class:`ConfigurationError` when ``run_id`` is already stored,
        :class:`UsageLimitExceededError` (with ``.result``) on a budget stop, and lets
        :class:`trio.Cancelled` through when the caller cancels: never a result then
        (the run is stored as ``cancelled`` and can be resumed). ``limits``
        replaces the runner's limits for this run.
        """
        return await self._execute(Start(input, context, run_id, limits), None)

    async def resume(
        self,
        run_or_id: PipelineResult | str,
        human_input: Any = None,
        *,
        limits: UsageLimits | None = None,
    ) -> PipelineResult:
        """Continue a stored run where it stopped; finished work is never redone.

        A paused run needs ``human_input`` (the answer to its first paused human step,
        in declared order); a run that stopped between steps (a crash, a cancel, a
        budget stop resumed with higher ``limits``) continues without. Raises
        :class:`ResumeError` for unknown, completed or failed runs, for a run another
        live process is executing, for a pipeline whose shape changed, for input sent
        to a run that is not paused, and for input that does not fit the human step
        (the stored run is left unchanged then).
        """
        return await self._execute(self._resume_of(run_or_id, human_input, limits), None)

    def run_sync(
        self,
        input: Any = None,
        *,
        context: PipelineContext | None = None,
        run_id: str | None = None,
        limits: UsageLimits | None = None,
    ) -> PipelineResult:
        """Run from synchronous code: starts a Trio event loop for the run."""
        return trio.run(partial(self.run, input, context=context, run_id=run_id, limits=limits))

    @asynccontextmanager
    async def stream(
        self,
        input: Any = None,
        *,
        context: PipelineContext | None = None,
        run_id: str | None = None,
        limits: UsageLimits | None = None,
    ) -> AsyncIterator[trio.MemoryReceiveChannel[Event]]:
        """Run the pipeline and receive its events as they happen.

        ``async with runner.stream(input) as events: async for event in events: ...``
        The run is a task of a nursery this context manager owns. A slow consumer
        holds the run back (no unbounded buffering); leaving the block early cancels
        the run, which is stored as ``cancelled``. Errors the run raises (e.g.
        :class:`UsageLimitExceededError`) are raised when the block exits.
        """
        start = Start(input, context, run_id, limits)
        async with self._streaming(partial(self._execute, start)) as events:
            yield events

    @asynccontextmanager
    async def stream_resume(
        self,
        run_or_id: PipelineResult | str,
        human_input: Any = None,
        *,
        limits: UsageLimits | None = None,
    ) -> AsyncIterator[trio.MemoryReceiveChannel[Event]]:
        """:meth:`resume`, with events as in :meth:`stream`."""
        resume = self._resume_of(run_or_id, human_input, limits)
        async with self._streaming(partial(self._execute, resume)) as events:
            yield events

    @staticmethod
    def _resume_of(
        run_or_id: PipelineResult | str, human_input: Any, limits: UsageLimits | None
    ) -> Resume:
        return Resume(_run_id(run_or_id), human_input, human_input is not None, limits)

    async def _execute(
        self, opening: Start | Resume, stream: trio.MemorySendChannel[Event] | None
    ) -> PipelineResult:
        async with open_run(self, opening, stream, self._kernel) as run:
            await run.drive()
        return run.conclude()

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
