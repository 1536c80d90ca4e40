"""``flujo-trio run`` and ``flujo-trio resume``: start a run, or take a stored one up.

Limit flags override only their own dimension: ``--token-limit 250`` on a Runner
with a cost limit keeps the cost limit. ``resume`` starts from the run's stored
limits, so a run stopped by its budget continues, with its stored spend, once a
flag raises the limit that stopped it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, TypeVar

import attrs
import click
import trio

from ..context import RunStatus
from ..events import Event
from ..runtime.runner import Runner
from ..state.protocol import StateStore
from ..state.records import RunState, RunSummary
from ..usage import Usage, UsageLimits
from .common import INPUT_ERRORS, db_option, fail, json_option, store_call
from .drive import drive
from .inputs import answer_input, run_input
from .live import LiveModel
from .shapes import Shape
from .stores import open_store, shown
from .targets import canonical_target, load_origin, load_target

F = TypeVar("F", bound=Callable[..., Any])


def limit_options(command: F) -> F:
    """``--cost-limit``, ``--token-limit`` and ``--request-limit``."""
    for option in reversed(
        [
            click.option(
                "--cost-limit",
                type=click.FloatRange(min=0),
                metavar="USD",
                help="Cost limit in USD (the other limits stay).",
            ),
            click.option(
                "--token-limit",
                type=click.IntRange(min=0),
                metavar="N",
                help="Token limit (the other limits stay).",
            ),
            click.option(
                "--request-limit",
                type=click.IntRange(min=0),
                metavar="N",
                help="Agent call limit (the other limits stay).",
            ),
        ]
    ):
        command = option(command)
    return command


def override(cost: float | None, tokens: int | None, requests: int | None) -> UsageLimits | None:
    """The limits the flags set (None when no flag is given)."""
    if cost is None and tokens is None and requests is None:
        return None
    return UsageLimits(
        total_cost_usd_limit=cost, total_tokens_limit=tokens, total_requests_limit=requests
    )


def build_runner(loaded: Any, db: str, origin: str, limits: UsageLimits | None) -> Runner:
    """A Runner for ``loaded`` on the ``--db`` store: a Runner target keeps its limits,
    context type, hooks and name, with the flags' limits merged in."""
    base = loaded if isinstance(loaded, Runner) else Runner(loaded)
    merged = base.limits.merged(limits) if limits is not None else base.limits
    return attrs.evolve(base, limits=merged, store=open_store(db), origin=origin)


@click.command("run")
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
@limit_options
@db_option
@click.option("--run-id", help="Id for the new run (default: generated).")
@json_option
def run_command(
    target: str,
    input_text: str | None,
    input_file: Path | None,
    cost_limit: float | None,
    token_limit: int | None,
    request_limit: int | None,
    db: str,
    run_id: str | None,
    as_json: bool,
) -> None:
    """Run TARGET (package.module:attr or path/to/file.py:attr: a Pipeline or Runner)."""
    try:
        origin = canonical_target(target)
        runner = build_runner(
            load_target(origin), db, origin, override(cost_limit, token_limit, request_limit)
        )
        data = run_input(input_text, input_file)
    except INPUT_ERRORS as error:
        fail(str(error))

    # Chosen here, not by the runner: a Ctrl-C before the run's first event must still
    # print the command that resumes it.
    new_id = run_id if run_id is not None else os.urandom(16).hex()

    def open_stream() -> AbstractAsyncContextManager[trio.MemoryReceiveChannel[Event]]:
        return runner.stream(data, run_id=new_id)

    model = LiveModel(runner.limits, Shape(runner.plan.shape), pipeline=runner.name, run_id=new_id)
    sys.exit(trio.run(lambda: drive(runner, open_stream, model, as_json=as_json, db=db)))


@click.command("resume")
@click.argument("run_id")
@click.option(
    "--input",
    "input_text",
    metavar="ANSWER",
    help="The person's answer: JSON when it parses, else text; - reads standard input.",
)
@limit_options
@db_option
@json_option
def resume_command(
    run_id: str,
    input_text: str | None,
    cost_limit: float | None,
    token_limit: int | None,
    request_limit: int | None,
    db: str,
    as_json: bool,
) -> None:
    """Resume RUN_ID: answer a paused run, or continue one that was interrupted or
    stopped by its budget (raise the limit with a flag)."""

    async def locate(store: StateStore) -> RunSummary | None:
        return await store.get_summary(run_id)

    # The origin comes first: the pipeline's module defines the classes the state needs.
    summary = store_call(db, locate)
    if summary is None:
        fail(f"no run {run_id!r} in {shown(db)}")
    if summary.error is not None:
        fail(f"run {run_id!r} cannot be resumed: {summary.error}")
    if summary.origin is None:
        fail(f"run {run_id!r} was not started from the CLI; resume it from Python")
    flags = override(cost_limit, token_limit, request_limit)
    try:
        answer = answer_input(input_text)
        runner = build_runner(load_origin(run_id, summary.origin), db, summary.origin, None)
        with runner.plan.allowing():
            state: RunState | None = trio.run(runner.store.load_run, run_id)
    except INPUT_ERRORS as error:
        fail(str(error))
    assert state is not None
    _check_resumable(state.status, state.context.pause_message, run_id, answer, db)
    limits = state.limits.merged(flags) if flags is not None else state.limits
    runner = attrs.evolve(runner, limits=limits)

    def open_stream() -> AbstractAsyncContextManager[trio.MemoryReceiveChannel[Event]]:
        return runner.stream_resume(run_id, answer, limits=limits)

    model = LiveModel(
        limits,
        Shape(runner.plan.shape),
        pipeline=state.pipeline_name,
        verb="resumed",
        run_id=run_id,
        total=Usage(state.total_cost_usd, state.spent_tokens),
        requests=state.spent.requests,
    )
    sys.exit(trio.run(lambda: drive(runner, open_stream, model, as_json=as_json, db=db)))


def _check_resumable(
    status: RunStatus, pause_message: str | None, run_id: str, answer: Any, db: str
) -> None:
    """Say in CLI words what a resume needs, before the runtime says it in Python's."""
    if status is RunStatus.PAUSED and answer is None:
        asked = f" ({pause_message!r})" if pause_message else ""
        fail(
            f"run {run_id!r} is paused, waiting for a person's answer{asked}: give it with "
            f"flujo-trio resume {run_id} --input ANSWER --db {shown(db)} (JSON or text)"
        )
    if status not in (RunStatus.PAUSED, RunStatus.COMPLETED, RunStatus.FAILED) and (
        answer is not None
    ):
        fail(
            f"run {run_id!r} is {status.value}, not paused, so it takes no --input: "
            f"continue it with flujo-trio resume {run_id} --db {shown(db)}"
        )
