"""Driving a run or a resume from the command line: the live view on a terminal, one
JSON document otherwise, and Ctrl-C as a clean cancel that says how to resume."""

from __future__ import annotations

import signal
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import attrs
import click
import trio
from rich.console import Console
from rich.live import Live

from ..context import RunStatus
from ..errors import MergeConflictError, UsageLimitExceededError
from ..events import Event, RunFinished
from ..results import PipelineResult
from ..runtime.runner import Runner
from ..usage import format_money
from .common import (
    EXIT_CODES,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    EXIT_USAGE,
    INPUT_ERRORS,
    machine_output,
)
from .documents import result_document
from .live import LiveModel
from .plain import dumps, plain_json, type_name
from .stores import shown

StreamFactory = Callable[[], AbstractAsyncContextManager[trio.MemoryReceiveChannel[Event]]]

#: How often the live view redraws between events (the elapsed time keeps moving).
TICK_S = 0.25


@attrs.define
class Outcome:
    """How a driven run ended, as far as the CLI is concerned."""

    result: PipelineResult | None = None
    error: str | None = None
    """Why the run stopped early (a budget, a merge conflict)."""
    bad_input: str | None = None
    """The run was refused before it started (exit code 2)."""
    interrupted: bool = False
    signal_name: str = "SIGINT"
    """The signal that interrupted the run (Ctrl-C, or SIGTERM from a supervisor)."""


async def drive(
    runner: Runner, open_stream: StreamFactory, model: LiveModel, *, as_json: bool, db: str
) -> int:
    """Run with a live view or JSON output; returns the exit code."""
    interactive = not machine_output(as_json)
    console = Console()
    outcome = Outcome()
    # SIGTERM (timeout(1), docker stop, a CI cancel) stops the run the way Ctrl-C does:
    # killed by default, the run was left "running", owned by a dead process.
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as interrupts:
        async with trio.open_nursery() as nursery:

            async def on_interrupt() -> None:
                async for signum in interrupts:
                    outcome.interrupted = True
                    outcome.signal_name = signal.Signals(signum).name
                    nursery.cancel_scope.cancel(reason="flujo-trio: Ctrl-C")
                    return

            nursery.start_soon(on_interrupt, name="flujo-cli-interrupt")
            try:
                async with open_stream() as events:
                    if interactive:
                        await _watch_live(events, model, console, outcome)
                    else:
                        async for event in events:
                            model.apply(event)
                            if isinstance(event, RunFinished):
                                outcome.result = event.result
            except (UsageLimitExceededError, MergeConflictError) as error:
                outcome.result, outcome.error = error.result, str(error)
            except INPUT_ERRORS as error:
                outcome.bad_input = str(error)
            nursery.cancel_scope.cancel(reason="flujo-trio: run over")
    return _report(runner, model, outcome, console, interactive, db)


def _report(
    runner: Runner,
    model: LiveModel,
    outcome: Outcome,
    console: Console,
    interactive: bool,
    db: str,
) -> int:
    if outcome.bad_input is not None:
        click.echo(f"flujo-trio: error: {outcome.bad_input}", err=True)
        return EXIT_USAGE
    run_id = model.run_id or "RUN_ID"
    if outcome.interrupted:
        how = "interrupted" if outcome.signal_name == "SIGINT" else "terminated (SIGTERM)"
        click.echo(
            f"flujo-trio: {how}; the run is saved as cancelled. Resume it with:\n"
            f"  flujo-trio resume {run_id} --db {shown(db)}",
            err=True,
        )
        return EXIT_INTERRUPTED if outcome.signal_name == "SIGINT" else EXIT_TERMINATED
    result = outcome.result
    if result is None:  # the run never said how it ended: look at what is stored
        click.echo(
            f"flujo-trio: error: run {run_id} stopped without a result: see "
            f"flujo-trio runs show {run_id} --db {shown(db)}",
            err=True,
        )
        return EXIT_CODES[RunStatus.FAILED]
    if interactive:
        _print_summary(console, result, outcome.error, db)
    else:
        document = result_document(
            result, runner.limits, model.shape, pipeline_name=runner.name, error=outcome.error
        )
        click.echo(dumps(document))
    return EXIT_CODES[result.status]


async def _watch_live(
    events: trio.MemoryReceiveChannel[Event],
    model: LiveModel,
    console: Console,
    outcome: Outcome,
) -> None:
    """Draw ``model`` as events arrive. The view starts with the first event (a run
    refused before it starts draws nothing) and ends on the final status."""
    live = Live(console=console, auto_refresh=False, get_renderable=model.render)
    try:
        async with trio.open_nursery() as nursery:
            async for event in events:
                model.apply(event)
                if not live.is_started:
                    live.start()
                    nursery.start_soon(_tick, live, name="flujo-cli-tick")
                live.refresh()
                if isinstance(event, RunFinished):
                    outcome.result = event.result
            nursery.cancel_scope.cancel(reason="flujo-trio: run over")
    finally:
        if live.is_started:
            if model.status == "running":  # the run never said how it ended
                model.conclude("cancelled" if outcome.interrupted else "stopped")
            live.stop()


async def _tick(live: Live) -> None:
    """Keeps the elapsed time moving between events."""
    while True:
        await trio.sleep(TICK_S)
        live.refresh()


def _print_summary(console: Console, result: PipelineResult, error: str | None, db: str) -> None:
    console.print(f"status: {result.status.value}" + (f" ({error})" if error else ""), markup=False)
    if result.status is RunStatus.PAUSED:
        message = result.final_context.pause_message if result.final_context else None
        console.print(f"waiting for a person: {message!r}", markup=False)
        console.print(
            f"resume with: flujo-trio resume {result.run_id} --input ANSWER --db {shown(db)}",
            markup=False,
        )
    else:
        kind = type_name(result.output)
        shown_output = dumps(plain_json(result.output))
        console.print(f"output{f' ({kind})' if kind else ''}: {shown_output}", markup=False)
    console.print(f"total: ${format_money(result.total_cost_usd)}, {result.total_tokens} tokens")
    if result.status is RunStatus.BUDGET_EXCEEDED:
        console.print(
            f"continue with a higher limit: flujo-trio resume {result.run_id} "
            f"--cost-limit USD (or --token-limit, --request-limit) --db {shown(db)}",
            markup=False,
        )
