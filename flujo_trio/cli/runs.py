"""``flujo-trio runs``: list, show, export and delete stored runs, without their code.

These commands work from any directory on any store and never import the pipeline
(or any class or module a stored run names): stored values are read as plain JSON
(:func:`~flujo_trio.serialization.plain_values`), and a run is drawn from its
stored shape. A run whose stored row is damaged is listed with what is wrong.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..context import RunStatus
from ..serialization import plain_values
from ..state.protocol import StateStore
from ..state.records import RunState, RunSummary
from ..usage import format_money
from .common import (
    db_option,
    fail,
    json_option,
    machine_output,
    output_option,
    store_call,
    write_output,
)
from .documents import export_document, stored_document, stored_result
from .plain import dumps
from .shapes import Shape
from .stores import shown
from .times import json_time, shown_time, since_option
from .view import STATUS_STYLES, result_tree, run_title


@click.group("runs")
def runs_group() -> None:
    """List, show, export and delete stored runs (no pipeline code needed)."""


def _summary_row(summary: RunSummary) -> dict[str, Any]:
    damaged = summary.error is not None
    return {
        "run_id": summary.run_id,
        "status": None if damaged else summary.status.value,
        "pipeline_name": summary.pipeline_name,
        "created_at": json_time(summary.created_at),
        "updated_at": json_time(summary.updated_at),
        "total_cost_usd": None if damaged else summary.total_cost_usd,
        "total_tokens": None if damaged else summary.total_tokens,
        "total_requests": None if damaged else summary.total_requests,
        "origin": summary.origin,
        "owner": summary.owner,
        "error": summary.error,
    }


@runs_group.command("list")
@click.option(
    "--status", type=click.Choice([s.value for s in RunStatus]), help="Only runs in this status."
)
@click.option("--pipeline", metavar="NAME", help="Only runs of this pipeline (its name).")
@click.option(
    "--since",
    metavar="TIME",
    callback=since_option,
    help="Only runs updated since TIME: ISO (2026-05-01, 2026-05-01T14:30+02:00; local "
    "time without a zone) or a span back from now (30m, 2h, 3d, 1w).",
)
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="At most N runs.")
@db_option
@json_option
def runs_list(
    status: str | None,
    pipeline: str | None,
    since: datetime | None,
    limit: int | None,
    db: str,
    as_json: bool,
) -> None:
    """List runs, most recently updated first."""
    wanted = RunStatus(status) if status else None

    async def call(store: StateStore) -> list[RunSummary]:
        return await store.list_runs(wanted, pipeline=pipeline, since=since, limit=limit)

    runs = store_call(db, call)
    if machine_output(as_json):
        click.echo(dumps([_summary_row(summary) for summary in runs]))
        return
    console = Console()
    if not runs:
        console.print(f"no runs in {shown(db)} match", markup=False)
        return
    table = Table("run id", "status", "pipeline", "created", "updated", "cost", "tokens")
    for r in runs:
        if r.error is not None:
            table.add_row(r.run_id, Text("damaged", style="red"), r.pipeline_name, "?", "?", "", "")
            continue
        table.add_row(
            r.run_id,
            Text(r.status.value, style=STATUS_STYLES.get(r.status.value, "")),
            r.pipeline_name,
            shown_time(r.created_at),
            shown_time(r.updated_at),
            f"${format_money(r.total_cost_usd)}",
            str(r.total_tokens),
        )
    console.print(table)
    for r in runs:
        if r.error is not None:
            console.print(Text(f"{r.run_id}: {r.error}", style="red"))


def _load_plain(db: str, run_id: str) -> RunState:
    async def call(store: StateStore) -> RunState | None:
        # Read without the pipeline's code: stored values come back as plain JSON.
        with plain_values():
            return await store.load_run(run_id)

    state = store_call(db, call)
    if state is None:
        fail(f"no run {run_id!r} in {shown(db)}")
    return state


@runs_group.command("show")
@click.argument("run_id")
@db_option
@json_option
def runs_show(run_id: str, db: str, as_json: bool) -> None:
    """Show a run's step tree with status, attempts, cost, tokens and latency."""
    state = _load_plain(db, run_id)
    if machine_output(as_json):
        click.echo(dumps(stored_document(state)))
        return
    console = Console(width=max(Console().width, 100))
    title = run_title(state.pipeline_name, "run", state.run_id, state.status.value)
    console.print(result_tree(title, stored_result(state).step_history, Shape(state.shape)))
    limits = state.limits
    cost_limit, token_limit = limits.total_cost_usd_limit, limits.total_tokens_limit
    request_limit = limits.total_requests_limit
    line = (
        f"total: ${format_money(state.total_cost_usd)}"
        + (f" of ${format_money(cost_limit)}" if cost_limit is not None else " (no cost limit)")
        + f", {state.spent_tokens} tokens"
        + (f" of {token_limit}" if token_limit is not None else " (no token limit)")
        + f", {state.spent.requests} requests"
        + (f" of {request_limit}" if request_limit is not None else "")
    )
    console.print(line, markup=False)
    console.print(
        f"created {shown_time(state.created_at)}, updated {shown_time(state.updated_at)}"
        + (f", from {state.origin}" if state.origin else ""),
        markup=False,
    )
    if state.status is RunStatus.PAUSED:
        console.print(f"waiting for a person: {state.context.pause_message!r}", markup=False)


@runs_group.command("export")
@click.argument("run_id")
@db_option
@output_option
def runs_export(run_id: str, db: str, output: Path | None) -> None:
    """Print everything stored about a run as one JSON document: header, limits, totals,
    the step tree and the journal entries."""
    text = dumps(export_document(_load_plain(db, run_id)), indent=2) + "\n"
    write_output(text, output)


@runs_group.command("delete")
@click.argument("run_ids", metavar="RUN_ID...", nargs=-1, required=True)
@click.option("--force", is_flag=True, help="Also delete runs a process still owns.")
@db_option
def runs_delete(run_ids: tuple[str, ...], force: bool, db: str) -> None:
    """Delete stored runs (all of them, or none when one is unknown or still running)."""
    wanted = list(dict.fromkeys(run_ids))

    async def check(store: StateStore) -> list[RunSummary | None]:
        return [await store.get_summary(run_id) for run_id in wanted]

    for run_id, summary in zip(wanted, store_call(db, check), strict=True):
        if summary is None:
            fail(f"no run {run_id!r} in {shown(db)}; nothing was deleted")
        if summary.status is RunStatus.RUNNING and summary.owner and not force:
            fail(
                f"run {run_id!r} is running (owned by {summary.owner}); nothing was deleted: "
                "stop it first, or pass --force if that process is gone"
            )

    async def delete(store: StateStore) -> None:
        for run_id in wanted:
            await store.delete_run(run_id)

    store_call(db, delete)
    for run_id in wanted:
        click.echo(f"deleted {run_id}")
