"""What the CLI shows: the live view on a terminal, trees and JSON documents."""

from __future__ import annotations

import json
import time
from typing import Any

import attrs
from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from ..events import (
    Event,
    RunFinished,
    RunPaused,
    RunStarted,
    StepFinished,
    StepStarted,
    UsageUpdated,
)
from ..results import PipelineResult, StepResult
from ..serialization import converter
from ..usage import Usage, UsageLimits, format_money


def step_state(step: StepResult) -> str:
    if step.metadata.get("paused"):
        return "paused"
    if step.metadata.get("cancelled"):
        return "cancelled"
    return "ok" if step.success else "failed"


_MARKS = {"ok": "✓", "failed": "✗", "paused": "⏸", "cancelled": "⊘", "running": "…"}


def step_line(name: str, state: str, step: StepResult | None) -> Text:
    line = Text(f"{_MARKS[state]} {name}  ", style={"failed": "red", "ok": "green"}.get(state, ""))
    if step is not None:
        line.append(
            f"{state}  attempts={step.attempts}  ${format_money(step.cost_usd)}  "
            f"{step.token_counts} tok  {step.latency_s:.2f}s",
            style="dim",
        )
    else:
        line.append(state, style="dim")
    return line


def result_tree(title: str, steps: list[StepResult]) -> Tree:
    tree = Tree(title)

    def add(node: Tree, children: list[StepResult]) -> None:
        for step in children:
            add(node.add(step_line(step.name, step_state(step), step)), step.step_history)

    add(tree, steps)
    return tree


def spend_lines(total: Usage, limits: UsageLimits) -> RenderableType:
    table = Table.grid(padding=(0, 1))
    cost_limit, token_limit = limits.total_cost_usd_limit, limits.total_tokens_limit
    for label, spent, limit, text in (
        ("spend", total.cost_usd, cost_limit, f"${format_money(total.cost_usd)}"),
        ("tokens", float(total.tokens), token_limit, f"{total.tokens}"),
    ):
        if limit is None:
            table.add_row(label, Text("no limit", style="dim"), text)
            continue
        bound = f"${format_money(limit)}" if label == "spend" else f"{limit}"
        table.add_row(
            label,
            ProgressBar(total=float(limit) or 1.0, completed=spent, width=30),
            f"{text} / {bound}",
        )
    return table


@attrs.define
class LiveModel:
    """The live view's state, updated from run events."""

    limits: UsageLimits
    title: str = "flujo-trio"
    run_id: str | None = None
    started: float = attrs.field(factory=time.monotonic)
    total: Usage = attrs.field(factory=Usage)
    steps: dict[tuple[str, ...], StepResult | None] = attrs.field(factory=dict)
    status: str = "running"

    def apply(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            verb = "resumed" if event.resumed else "run"
            self.title = f"{event.pipeline_name} · {verb} {event.run_id}"
            self.run_id = event.run_id
        elif isinstance(event, StepStarted):
            self.steps[event.path] = None
        elif isinstance(event, StepFinished):
            self.steps[event.path] = event.result
        elif isinstance(event, UsageUpdated):
            self.total = event.total
        elif isinstance(event, RunPaused):
            self.status = "paused"
        elif isinstance(event, RunFinished):
            self.status = event.result.status.value
            self.total = Usage(event.result.total_cost_usd, event.result.total_tokens)

    def render(self) -> RenderableType:
        elapsed = time.monotonic() - self.started
        tree = Tree(Text(f"{self.title} · {self.status} · {elapsed:0.1f}s", style="bold"))
        nodes: dict[tuple[str, ...], Tree] = {(): tree}
        for path, result in self.steps.items():
            parent = nodes.get(path[:-1], tree)
            state = step_state(result) if result is not None else "running"
            nodes[path] = parent.add(step_line(path[-1], state, result))
        return Group(tree, spend_lines(self.total, self.limits))


def jsonable(value: Any) -> Any:
    """A JSON form of an output for ``--json`` (tagged like the store, else its repr)."""
    try:
        data = converter.unstructure(value, unstructure_as=object)
        json.dumps(data)
        return data
    except Exception:
        return repr(value)


def step_document(step: StepResult) -> dict[str, Any]:
    return {
        "name": step.name,
        "status": step_state(step),
        "attempts": step.attempts,
        "cost_usd": step.cost_usd,
        "tokens": step.token_counts,
        "latency_s": round(step.latency_s, 6),
        "feedback": step.feedback,
        "output": jsonable(step.output),
        "steps": [step_document(child) for child in step.step_history],
    }


def result_document(
    result: PipelineResult, limits: UsageLimits, error: str | None = None
) -> dict[str, Any]:
    context = result.final_context
    return {
        "run_id": result.run_id,
        "status": result.status.value,
        "success": result.success,
        "error": error,
        "output": jsonable(result.output),
        "pause_message": context.pause_message if context is not None else None,
        "total_cost_usd": result.total_cost_usd,
        "total_tokens": result.total_tokens,
        "limits": {
            "total_cost_usd_limit": limits.total_cost_usd_limit,
            "total_tokens_limit": limits.total_tokens_limit,
        },
        "steps": [step_document(step) for step in result.step_history],
    }
