"""One execution of one run: :func:`open_run` owns its nursery, governor, journal and
event bus, and the conclusion (status, last write, events, the error to raise) is
written once here for every way a run can end.

``async with open_run(runner, opening, stream) as run: await run.drive()`` then
``run.conclude()`` returns the result or raises. Inside, the pipeline runs in the
run's governed cancel scope: a budget breach, a hook's abort, a merge conflict or a
store failure cancels it with a reason, and the run ends the way that reason says.
When the caller cancels, the run is stored as ``cancelled`` (within a bounded,
shielded save) and :class:`trio.Cancelled` goes on up.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import trio

from ..context import RunStatus
from ..errors import (
    FlujoTrioError,
    MergeConflictError,
    SerializationError,
    UsageLimitExceededError,
)
from ..events import Event, RunFinished, RunPaused, RunStarted
from ..results import PipelineResult
from ..state.protocol import Finish
from ..state.records import Spent
from ..usage import dollars
from .bus import EventBus
from .control import Halt, RunControl
from .errors import sole_error
from .frame import Frame, RunContext
from .governor import Governor
from .journal import RunJournal
from .kernel import Kernel
from .opening import Resume, Setup, Start, open_new, open_resume
from .record import StepRecord

if TYPE_CHECKING:
    from .runner import Runner

logger = logging.getLogger("flujo_trio")

#: How long saving a cancelled run may hold up the caller's cancellation.
CANCEL_SAVE_TIMEOUT_S = 5.0


class Run:
    """The live state of one execution."""

    def __init__(
        self,
        runner: Runner,
        setup: Setup,
        stream: trio.MemorySendChannel[Event] | None,
        kernel: Kernel,
    ) -> None:
        self.runner, self.setup = runner, setup
        self.run_id = setup.state.run_id
        self.context = setup.context
        self.governed = trio.CancelScope()
        self.control = RunControl(self.governed)
        spent = setup.spent
        self.governor = Governor(
            setup.limits,
            self.governed,
            spent_cost=spent.cost_usd,
            spent_tokens=spent.tokens,
            spent_requests=spent.requests,
        )
        self.bus = EventBus(runner.hooks, stream, self.control, setup.limits, self.run_id)
        self.journal = RunJournal(
            runner.store, self.run_id, setup.owner, self._spent, self._store_failed
        )
        for estimate in setup.estimates:
            self.journal.record(estimate)
        self.root = StepRecord(runner.name, "pipeline", (), ())
        self.shared = RunContext(
            run_id=self.run_id,
            kernel=kernel,
            governor=self.governor,
            control=self.control,
            bus=self.bus,
            journal=self.journal,
            replay=setup.replay,
            resources=runner.resources,
        )
        self.last: StepRecord | None = None
        self.result: PipelineResult | None = None

    def _spent(self) -> Spent:
        root = self.governor.root
        return Spent(root.spent_cost, root.spent_tokens, root.spent_requests)

    def _store_failed(self, error: FlujoTrioError) -> None:
        self.control.stop(Halt.FATAL, str(error), error)

    async def drive(self) -> None:
        """Run the pipeline's steps in order from the run's input."""
        frame = Frame(self.shared, self.context, self.governor.root)
        try:
            self.last = await self.shared.kernel.run_sequence(
                self.runner.pipeline.steps, self.setup.input, frame, self.root
            )
        except SerializationError as error:
            # A value the store cannot keep: the run fails, nothing half-written.
            self.control.stop(Halt.FATAL, str(error), error)

    # -- how it ended ---------------------------------------------------------------------

    def status(self) -> RunStatus:
        control, stop = self.control, self.governor.run_stop
        if control.halt is Halt.FATAL:
            return RunStatus.FAILED
        if stop is not None:
            return RunStatus.BUDGET_EXCEEDED
        if control.halt is not None or self.last is None:
            return RunStatus.FAILED
        if self.last.paused:
            return RunStatus.PAUSED
        return RunStatus.COMPLETED if self.last.success else RunStatus.FAILED

    def reason(self) -> str:
        stop = self.governor.run_stop
        if stop is not None:
            return stop[1]
        return self.control.message or "the run stopped"

    def _journal_interrupted(self, reason: str) -> None:
        for stopped in self.root.interrupt(reason):
            if stopped is not self.root:
                self.journal.record_stopped(stopped)

    def result_as(self, status: RunStatus, interrupted: str) -> PipelineResult:
        spent = self._spent()
        return PipelineResult(
            run_id=self.run_id,
            step_history=[child.to_result(interrupted) for child in self.root.children],
            total_cost_usd=dollars(spent.cost_usd),
            total_tokens=spent.tokens,
            final_context=self.context,
            status=status,
            total_requests=spent.requests,
            governor=self.governor.statistics(),
        )

    async def finish(self) -> None:
        """The pipeline ended (done, paused, failed or stopped): the last write."""
        status, reason = self.status(), self.reason()
        control = self.control
        if control.halt is Halt.ABORTED and self.root.children:
            # Say why on the step the run stopped at (it may itself have succeeded).
            stopped = self.root.children[-1]
            stopped.metadata["aborted_by_hook"] = True
            message = control.message or ""
            if stopped.finished and message not in (stopped.feedback or ""):
                stopped.feedback = "; ".join(filter(None, [stopped.feedback, message]))
        self._journal_interrupted(reason)
        context = self.context
        if status is RunStatus.PAUSED:
            leaf = next(
                (found for child in self.root.children if (found := child.first_paused_leaf())),
                None,
            )
            context.pause_message = leaf.pause_message if leaf is not None else None
        context.status = status
        logger.info(
            "run %s of %s ended %s: $%s, %d tokens",
            self.run_id,
            self.runner.name,
            status.value,
            self.governor.root.spent_cost,
            self.governor.root.spent_tokens,
        )
        await self._close(status)
        self.result = self.result_as(status, reason)

    async def _close(self, status: RunStatus) -> None:
        """The last write; a context that cannot be stored keeps the one stored before,
        and the run is then stored as failed (with the error raised from ``run()``)."""
        if self.journal.failure is not None:
            return
        try:
            await self.journal.close(Finish(status, self.context))
        except SerializationError as error:
            self.control.stop(Halt.FATAL, str(error), error)
            await self.journal.close(Finish(RunStatus.FAILED, None))

    async def save_cancelled(self) -> None:
        """The caller cancelled: store the run as ``cancelled``, then tell the hooks.

        The write is shielded without a deadline of the run's clock: it runs in a worker
        thread that cannot be interrupted anyway, so such a deadline would only abandon
        the save (and a mock clock in tests would fire it at once); each store bounds its
        own waits instead (SQLite's busy timeout, PostgreSQL's connect and statement
        timeouts). Hooks are user code: they get ``CANCEL_SAVE_TIMEOUT_S``.
        """
        logger.info(
            "run %s of %s cancelled by its caller; saving it", self.run_id, self.runner.name
        )
        reason = "the caller cancelled the run"
        with trio.CancelScope(shield=True):
            self._journal_interrupted(reason)
            self.context.status = RunStatus.CANCELLED
            try:
                await self._close(RunStatus.CANCELLED)
            except FlujoTrioError as error:
                logger.warning("run %s: saving it as cancelled failed: %s", self.run_id, error)
        if self.runner.hooks:
            with trio.move_on_after(CANCEL_SAVE_TIMEOUT_S) as cleanup:
                cleanup.shield = True
                cancelled = self.result_as(RunStatus.CANCELLED, reason)
                await self.bus.emit(RunFinished(cancelled), hooks_only=True)

    async def announce(self) -> None:
        """Events after the last write: a paused run says so, every run says it finished."""
        result = self.result
        assert result is not None
        if self.bus.active:
            if result.status is RunStatus.PAUSED:
                message = self.context.pause_message
                await self.bus.emit(RunPaused(self.run_id, message, result))
            await self.bus.emit(RunFinished(result))

    def conclude(self) -> PipelineResult:
        """The result, or the error this ending raises (with the result attached)."""
        result = self.result
        assert result is not None
        control, stop = self.control, self.governor.run_stop
        if control.halt is Halt.FATAL and control.error is not None:
            raise control.error
        if stop is not None:
            raise UsageLimitExceededError(stop[1], result)
        if control.halt is Halt.MERGE_CONFLICT:
            raise MergeConflictError(control.message or "merge conflict", result)
        return result


@contextlib.asynccontextmanager
async def open_run(
    runner: Runner,
    opening: Start | Resume,
    stream: trio.MemorySendChannel[Event] | None,
    kernel: Kernel,
) -> AsyncIterator[Run]:
    """Create or take over the run, then own everything it needs while it executes."""
    if isinstance(opening, Start):
        setup = await open_new(runner, opening)
    else:
        setup = await open_resume(runner, opening)
    run = Run(runner, setup, stream, kernel)
    store = runner.store
    try:
        async with contextlib.AsyncExitStack() as scopes:
            # Per-run agent scopes (e.g. an asyncio loop to bridge to) wrap the run's
            # nursery, so every step task inherits them.
            for agent in runner.plan.scoped_agents:
                await scopes.enter_async_context(agent.run_scope())
            async with trio.open_nursery() as nursery:
                if run.journal.durable:
                    await nursery.start(run.journal.serve, name=f"flujo-journal:{run.run_id}")
                await nursery.start(
                    run.journal.renew, store.lease_s / 3, name=f"flujo-lease:{run.run_id}"
                )
                try:
                    if run.bus.active:
                        await run.bus.emit(
                            RunStarted(run.run_id, runner.name, resumed=setup.resumed)
                        )
                    with run.governed:
                        yield run
                except BaseException:
                    await run.save_cancelled()
                    raise
                else:
                    await run.finish()
                finally:
                    nursery.cancel_scope.cancel(reason="flujo-trio: the run is over")
    except BaseExceptionGroup as group:
        raise sole_error(group) from None
    await run.announce()
