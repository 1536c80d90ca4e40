"""The Runner: one run nursery, one governor, the pipeline's actors, an honest result."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from functools import partial
from typing import Any

import trio

from ..context import PipelineContext, RunStatus
from ..dsl.base import StepBase
from ..dsl.pipeline import Pipeline, as_pipeline
from ..errors import ConfigurationError, UsageLimitExceededError
from ..results import PipelineResult
from ..usage import UsageLimits
from .control import RunControl
from .dispatch import run_sequence
from .errors import sole_error
from .frame import Frame
from .governor import Governor, GovernorClient, Ledger
from .record import StepRecord


class Runner:
    """Runs a pipeline, from a Trio task (:meth:`run`) or from plain code (:meth:`run_sync`).

    A Runner holds only configuration, so one Runner can serve many concurrent runs.

    Args:
        pipeline: a :class:`Pipeline` or a single step.
        limits: cost and token limits for each run as a whole.
        context_type: the :class:`PipelineContext` subclass runs start with.
        store: where run state is kept (see the state-store docs).
        hooks: callables that receive run events.
        name: recorded as the run's ``pipeline_name``; defaults to the first step's name.
        resources: passed to agents that accept a ``resources`` keyword.
    """

    def __init__(
        self,
        pipeline: Pipeline | StepBase,
        *,
        limits: UsageLimits | None = None,
        context_type: type[PipelineContext] = PipelineContext,
        store: Any = None,
        hooks: Sequence[Any] = (),
        name: str | None = None,
        resources: Any = None,
    ) -> None:
        self.pipeline = as_pipeline("Runner", pipeline)
        if limits is not None and not isinstance(limits, UsageLimits):
            raise ConfigurationError(f"limits must be a UsageLimits or None, got {limits!r}")
        if not (isinstance(context_type, type) and issubclass(context_type, PipelineContext)):
            raise ConfigurationError(
                f"context_type must be PipelineContext or a subclass of it, got {context_type!r}"
            )
        if store is not None or tuple(hooks):
            raise ConfigurationError(
                "store= and hooks= are not supported by this version of flujo-trio yet"
            )
        self.limits = limits or UsageLimits()
        self.context_type = context_type
        self.name = name if name is not None else self.pipeline.name
        self.resources = resources

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

    async def run(
        self,
        input: Any = None,
        *,
        context: PipelineContext | None = None,
        run_id: str | None = None,
    ) -> PipelineResult:
        """Run the pipeline on ``input``.

        Returns the result of a completed or failed run. Raises
        :class:`UsageLimitExceededError` (with ``.result``) on a budget stop, and lets
        :class:`trio.Cancelled` through when the caller cancels: never a result then.
        """
        run_id = run_id or uuid.uuid4().hex
        context = self._start_context(context, run_id)
        root = StepRecord(self.name)
        ledger = Ledger(self.limits)
        governed = trio.CancelScope()
        governor = Governor.open(ledger, governed)
        control = RunControl(governed)
        frame = Frame(context, GovernorClient(governor.send_channel), control, self.resources)
        last = None
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(governor.serve, name="flujo-governor")
                try:
                    with governed:
                        last = await run_sequence(self.pipeline.steps, input, frame, root)
                finally:
                    governor.close()
        except BaseExceptionGroup as group:
            raise sole_error(group) from None
        finally:
            ledger.charge_abandoned()
        if ledger.stop_message is not None:
            status = RunStatus.BUDGET_EXCEEDED
        elif control.error_type is not None:
            status = RunStatus.FAILED
        elif last is not None and last.success:
            status = RunStatus.COMPLETED
        else:
            status = RunStatus.FAILED
        context.status = status
        interrupted = ledger.stop_message or control.message or "cancelled"
        spent = ledger.spent
        result = PipelineResult(
            run_id=run_id,
            step_history=[child.to_result(interrupted) for child in root.children],
            total_cost_usd=spent.cost_usd,
            total_tokens=spent.tokens,
            final_context=context,
            status=status,
        )
        if ledger.stop_message is not None:
            raise UsageLimitExceededError(ledger.stop_message, result)
        if control.error_type is not None:
            raise control.error_type(control.message or "run halted", result)
        return result

    def run_sync(
        self,
        input: Any = None,
        *,
        context: PipelineContext | None = None,
        run_id: str | None = None,
    ) -> PipelineResult:
        """Run from synchronous code: starts a Trio event loop for the run."""
        return trio.run(partial(self.run, input, context=context, run_id=run_id))
