"""The ``flujo-trio`` command line: run, resume, inspect and draw pipelines, on a SQLite
or PostgreSQL store.

Exit codes: 0 completed, 1 failed, 2 bad usage or input, 3 budget exceeded,
4 paused, 130 interrupted (Ctrl-C; the run is saved and can be resumed).
Every error is one line, ``flujo-trio: error: ...``, on standard error.
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, NoReturn

import attrs
import click
import trio
from rich.console import Console
from rich.live import Live
from rich.table import Table

from .. import __version__
from ..context import RunStatus
from ..errors import (
    ConfigurationError,
    MergeConflictError,
    ResumeError,
    SerializationError,
    StoreError,
    UsageLimitExceededError,
)
from ..events import Event, RunFinished
from ..results import PipelineResult
from ..runtime.runner import Runner
from ..serialization import plain_values
from ..state.protocol import StateStore
from ..usage import UsageLimits, format_money
from .graph_page import page
from .inputs import InputError, answer_input, run_input
from .stores import missing, open_store, shown
from .targets import TargetError, canonical_target, load_origin, load_target, pipeline_of
from .view import LiveModel, result_document, result_tree

EXIT_CODES = {
    RunStatus.COMPLETED: 0,
    RunStatus.FAILED: 1,
    RunStatus.BUDGET_EXCEEDED: 3,
    RunStatus.PAUSED: 4,
    RunStatus.CANCELLED: 130,
}
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

#: Errors that mean "your input is wrong": one line on stderr, exit code 2.
_INPUT_ERRORS = (
    TargetError,
    InputError,
    StoreError,
    SerializationError,
    ResumeError,
    ConfigurationError,
)

db_option = click.option(
    "--db",
    default="flujo_trio.db",
    show_default=True,
    envvar="FLUJO_TRIO_DB",
    help="SQLite store file, or a postgresql:// DSN (env FLUJO_TRIO_DB).",
)


def fail(message: str) -> NoReturn:
    click.echo(f"flujo-trio: error: {message}", err=True)
    sys.exit(EXIT_USAGE)


def build_runner(target: str, db: str, limits: UsageLimits | None, run_id: str = "") -> Runner:
    loaded = load_origin(run_id, target) if run_id else load_target(target)
    store = open_store(db)
    if isinstance(loaded, Runner):
        merged = loaded.limits.merged(limits) if limits is not None else loaded.limits
        return attrs.evolve(loaded, limits=merged, store=store, origin=target)
    return Runner(loaded, limits=limits, store=store, origin=target)


StreamFactory = Callable[[], AbstractAsyncContextManager[trio.MemoryReceiveChannel[Event]]]


async def drive(runner: Runner, open_stream: StreamFactory, *, as_json: bool, db: str) -> int:
    """Run with a live view or JSON output; Ctrl-C cancels cleanly and says how to resume."""
    interactive = sys.stdout.isatty() and not as_json
    console = Console()
    model = LiveModel(runner.limits)
    outcome: dict[str, Any] = {}
    interrupted = False
    with trio.open_signal_receiver(signal.SIGINT) as interrupts:
        async with trio.open_nursery() as nursery:

            async def on_interrupt() -> None:
                nonlocal interrupted
                async for _ in interrupts:
                    interrupted = True
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
                                outcome["result"] = event.result
            except (UsageLimitExceededError, MergeConflictError) as error:
                outcome["result"], outcome["error"] = error.result, str(error)
            except _INPUT_ERRORS as error:
                outcome["bad_input"] = str(error)
            nursery.cancel_scope.cancel(reason="flujo-trio: run over")
    if "bad_input" in outcome:
        click.echo(f"flujo-trio: error: {outcome['bad_input']}", err=True)
        return EXIT_USAGE
    if interrupted:
        run_id = model.run_id or "RUN_ID"
        click.echo(
            f"flujo-trio: interrupted; the run is saved as cancelled. Resume it with:\n"
            f"  flujo-trio resume {run_id} --db {shown(db)}",
            err=True,
        )
        return EXIT_INTERRUPTED
    result: PipelineResult = outcome["result"]
    if interactive:
        _print_summary(console, result, outcome.get("error"), db)
    else:
        click.echo(json.dumps(result_document(result, runner.limits, outcome.get("error"))))
    return EXIT_CODES[result.status]


async def _watch_live(
    events: trio.MemoryReceiveChannel[Event],
    model: LiveModel,
    console: Console,
    outcome: dict[str, Any],
) -> None:
    with Live(model.render(), console=console, auto_refresh=False) as live:
        async with trio.open_nursery() as nursery:

            async def tick() -> None:  # keeps the elapsed time moving between events
                while True:
                    await trio.sleep(0.25)
                    live.update(model.render(), refresh=True)

            nursery.start_soon(tick, name="flujo-cli-tick")
            async for event in events:
                model.apply(event)
                live.update(model.render(), refresh=True)
                if isinstance(event, RunFinished):
                    outcome["result"] = event.result
            nursery.cancel_scope.cancel(reason="flujo-trio: run over")


def _print_summary(console: Console, result: PipelineResult, error: str | None, db: str) -> None:
    console.print(f"status: {result.status.value}" + (f" ({error})" if error else ""))
    if result.status is RunStatus.PAUSED:
        message = result.final_context.pause_message if result.final_context else None
        console.print(f"waiting for a person: {message!r}")
        console.print(
            f"resume with: flujo-trio resume {result.run_id} --input ANSWER --db {shown(db)}"
        )
    else:
        console.print(f"output: {result.output!r}")
    console.print(f"total: ${format_money(result.total_cost_usd)}, {result.total_tokens} tokens")


#: Raised (click >= 8.2) for a group called without a command; older clicks print help.
_NO_ARGS_IS_HELP: tuple[type[Exception], ...] = tuple(
    cls for cls in [getattr(click.exceptions, "NoArgsIsHelpError", None)] if cls is not None
)


class _OneLineErrors(click.Group):
    """Click's usage errors as one ``flujo-trio: error:`` line with exit code 2, like ours."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            return super().main(*args, **kwargs)
        except click.ClickException as error:
            if isinstance(error, _NO_ARGS_IS_HELP):  # a bare group: its help is the answer
                error.show()
                sys.exit(error.exit_code)
            hint = ""
            if isinstance(error, click.UsageError) and error.ctx is not None:
                hint = f" (see: {error.ctx.command_path} --help)"
            click.echo(f"flujo-trio: error: {error.format_message()}{hint}", err=True)
            sys.exit(error.exit_code)
        except click.Abort:
            click.echo("flujo-trio: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)


@click.group(cls=_OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(
    __version__, "--version", prog_name="flujo-trio", message="%(prog)s %(version)s"
)
def main() -> None:
    """Run, resume, inspect and draw flujo-trio pipelines."""


@main.command("run")
@click.argument("target")
@click.option(
    "--input",
    "input_text",
    metavar="TEXT",
    help="The first step's input: JSON when it parses, else text; - reads standard input.",
)
@click.option(
    "--input-file",
    type=click.Path(path_type=Path),
    help="Read the input from a file (a .json file is parsed).",
)
@click.option("--cost-limit", type=click.FloatRange(min=0), help="Cost limit in USD.")
@click.option("--token-limit", type=click.IntRange(min=0), help="Token limit.")
@db_option
@click.option("--run-id", help="Id for the new run (default: generated).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document, no live view.")
def run_command(
    target: str,
    input_text: str | None,
    input_file: Path | None,
    cost_limit: float | None,
    token_limit: int | None,
    db: str,
    run_id: str | None,
    as_json: bool,
) -> None:
    """Run TARGET (package.module:attr or path/to/file.py:attr: a Pipeline or Runner)."""
    limits = None
    if cost_limit is not None or token_limit is not None:
        limits = UsageLimits(total_cost_usd_limit=cost_limit, total_tokens_limit=token_limit)
    try:
        runner = build_runner(canonical_target(target), db, limits)
        data = run_input(input_text, input_file)
    except _INPUT_ERRORS as error:
        fail(str(error))

    def open_stream() -> AbstractAsyncContextManager[trio.MemoryReceiveChannel[Event]]:
        return runner.stream(data, run_id=run_id)

    sys.exit(trio.run(lambda: drive(runner, open_stream, as_json=as_json, db=db)))


@main.command("resume")
@click.argument("run_id")
@click.option(
    "--input",
    "input_text",
    metavar="ANSWER",
    help="The person's answer: JSON when it parses, else text; - reads standard input.",
)
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document, no live view.")
def resume_command(run_id: str, input_text: str | None, db: str, as_json: bool) -> None:
    """Resume RUN_ID: answer a paused run, or continue one that was interrupted."""

    async def locate(store: StateStore) -> Any:
        return await store.get_summary(run_id)

    # The origin comes first: the pipeline's module defines the classes the state needs.
    summary = _store_call(db, locate)
    if summary is None:
        fail(f"no run {run_id!r} in {shown(db)}")
    if summary.origin is None:
        fail(f"run {run_id!r} was not started from the CLI; resume it from Python")
    try:
        answer = answer_input(input_text)
        runner = build_runner(summary.origin, db, None, run_id)
        with runner.plan.allowing():
            state = trio.run(runner.store.load_run, run_id)
    except _INPUT_ERRORS as error:
        fail(str(error))
    assert state is not None
    _check_resumable(state.status, state.context.pause_message, run_id, answer, db)
    runner = attrs.evolve(runner, limits=state.limits)

    def open_stream() -> AbstractAsyncContextManager[trio.MemoryReceiveChannel[Event]]:
        return runner.stream_resume(run_id, answer)

    sys.exit(trio.run(lambda: drive(runner, open_stream, as_json=as_json, db=db)))


def _check_resumable(
    status: RunStatus, pause_message: str | None, run_id: str, answer: Any, db: str
) -> None:
    """Say in CLI words what a resume needs, before the runtime says it in Python's."""
    if status is RunStatus.PAUSED and answer is None:
        asked = f" ({pause_message!r})" if pause_message else ""
        fail(
            f"run {run_id!r} is paused, waiting for a person's answer{asked}: give it with "
            f"flujo-trio resume {run_id} --input ANSWER --db {db} (JSON or text)"
        )
    if status not in (RunStatus.PAUSED, RunStatus.COMPLETED, RunStatus.FAILED) and (
        answer is not None
    ):
        fail(
            f"run {run_id!r} is {status.value}, not paused, so it takes no --input: "
            f"continue it with flujo-trio resume {run_id} --db {db}"
        )


@main.command("graph")
@click.argument("target")
@click.option("--html", "as_html", is_flag=True, help="A self-contained HTML page, not Mermaid.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of standard output.",
)
def graph_command(target: str, as_html: bool, output: Path | None) -> None:
    """Draw TARGET's shape: Mermaid flowchart text, or with --html a page that draws it."""
    try:
        loaded = load_target(target)
    except _INPUT_ERRORS as error:
        fail(str(error))
    pipeline = pipeline_of(loaded)
    if as_html:
        name = loaded.name if isinstance(loaded, Runner) else pipeline.name
        text = page(pipeline, name)
    else:
        text = pipeline.to_mermaid()
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text)
    except OSError as error:
        fail(f"cannot write {output}: {error.strerror or error}")
    click.echo(f"wrote {output}", err=True)


@main.group("runs")
def runs_group() -> None:
    """List, show and delete stored runs."""


def _store_call(db: str, call: Callable[[StateStore], Any]) -> Any:
    if missing(db):
        fail(f"no store at {db}")
    try:
        return trio.run(call, open_store(db))
    except _INPUT_ERRORS as error:
        fail(str(error))


@runs_group.command("list")
@click.option(
    "--status", type=click.Choice([s.value for s in RunStatus]), help="Only runs in this status."
)
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def runs_list(status: str | None, db: str, as_json: bool) -> None:
    """List runs, newest first."""
    wanted = RunStatus(status) if status else None

    async def call(store: StateStore) -> Any:
        return await store.list_runs(wanted)

    runs = _store_call(db, call)
    if as_json or not sys.stdout.isatty():
        rows = [
            {
                "run_id": r.run_id,
                "status": r.status.value,
                "pipeline_name": r.pipeline_name,
                "created_at": r.created_at.isoformat(),
                "updated_at": r.updated_at.isoformat(),
                "total_cost_usd": r.total_cost_usd,
                "total_tokens": r.total_tokens,
            }
            for r in runs
        ]
        click.echo(json.dumps(rows))
        return
    table = Table("run id", "status", "pipeline", "updated", "cost", "tokens")
    for r in runs:
        table.add_row(
            r.run_id,
            r.status.value,
            r.pipeline_name,
            r.updated_at.strftime("%Y-%m-%d %H:%M:%S"),
            f"${format_money(r.total_cost_usd)}",
            str(r.total_tokens),
        )
    Console().print(table)


@runs_group.command("show")
@click.argument("run_id")
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def runs_show(run_id: str, db: str, as_json: bool) -> None:
    """Show a run's step tree with status, attempts, cost, tokens and latency."""

    async def call(store: StateStore) -> Any:
        # Shown without the pipeline's code: stored values come back as plain JSON.
        with plain_values():
            return await store.load_run(run_id)

    state = _store_call(db, call)
    if state is None:
        fail(f"no run {run_id!r} in {shown(db)}")
    result = PipelineResult(
        run_id=state.run_id,
        step_history=state.steps,
        total_cost_usd=state.total_cost_usd,
        total_tokens=state.spent_tokens,
        final_context=state.context,
        status=state.status,
    )
    if as_json:
        click.echo(json.dumps(result_document(result, state.limits)))
        return
    console = Console(width=max(Console().width, 100))
    title = f"{state.pipeline_name} · run {state.run_id} · {state.status.value}"
    console.print(result_tree(title, result.step_history))
    limits = state.limits
    cost_limit = limits.total_cost_usd_limit
    token_limit = limits.total_tokens_limit
    console.print(
        f"total: ${format_money(state.total_cost_usd)}"
        + (f" of ${format_money(cost_limit)}" if cost_limit is not None else " (no cost limit)")
        + f", {state.spent_tokens} tokens"
        + (f" of {token_limit}" if token_limit is not None else " (no token limit)")
    )
    if state.status is RunStatus.PAUSED:
        console.print(f"waiting for a person: {state.context.pause_message!r}")


@runs_group.command("delete")
@click.argument("run_id")
@db_option
def runs_delete(run_id: str, db: str) -> None:
    """Delete a stored run."""

    async def call(store: StateStore) -> Any:
        return await store.delete_run(run_id)

    if not _store_call(db, call):
        fail(f"no run {run_id!r} in {shown(db)}")
    click.echo(f"deleted {run_id}")
