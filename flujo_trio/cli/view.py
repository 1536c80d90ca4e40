"""How the CLI draws steps on a terminal: one line per step, a tree per run.

The live view and ``runs show`` draw through the same functions, so a run looks the
same while it runs and after. Each kind says what matters for it: an agent step its
attempts, a loop its iterations, a conditional the branch it took, a parallel or map
step how many branches or items ran; a failure, denial or stop says why. A branch (or
map item) whose body is a single step is one line, ``branch/step``, not two.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
from rich.console import RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from ..governance import GovernorStatistics
from ..results import StepResult
from ..usage import Usage, UsageLimits, format_money
from .shapes import CALLING_KINDS, FAN_OUT_PARTS, Place, Shape

_MARKS = {
    "ok": "✓",
    "failed": "✗",
    "denied": "✗",
    "paused": "⏸",
    "cancelled": "⊘",
    "running": "…",
    "stopped": "⊘",
}
_STYLES = {"ok": "green", "failed": "red", "denied": "red", "paused": "yellow"}
STATUS_STYLES = {
    "completed": "green",
    "failed": "red",
    "budget_exceeded": "red",
    "paused": "yellow",
    "cancelled": "yellow",
}
#: Reasons longer than this are cut (the whole text is in ``runs show --json``).
MAX_REASON = 300


def step_state(step: StepResult | None) -> str:
    """How a step stands, in one word (``running`` before it has a result)."""
    if step is None:
        return "running"
    if step.metadata.get("paused"):
        return "paused"
    if step.metadata.get("cancelled"):
        return "cancelled"
    if step.success:
        return "ok"
    return "denied" if step.metadata.get("reservation_denied") else "failed"


@attrs.define
class Shown:
    """A step as a view draws it: its result so far (None while running) and children."""

    name: str
    path: tuple[str, ...]
    result: StepResult | None = None
    reused: bool = False
    """Finished in an earlier execution of a resumed run (taken from its journal)."""
    children: list[Shown] = attrs.field(factory=list)

    @property
    def earlier(self) -> bool:
        """Reused itself, or a container whose every step was."""
        if self.reused:
            return True
        return bool(self.children) and all(child.earlier for child in self.children)


def shown_steps(steps: Sequence[StepResult], path: tuple[str, ...] = ()) -> list[Shown]:
    """A finished step tree (a result's, or a stored run's) as views draw it."""
    return [
        Shown(
            step.name,
            (*path, step.name),
            step,
            children=shown_steps(step.step_history, (*path, step.name)),
        )
        for step in steps
    ]


def _details(place: Place, step: StepResult, children: int) -> str:
    kind = place.kind
    if step.metadata.get("reservation_denied") and not step.attempts:
        return ""  # never started: "denied" and the reason say it
    if kind in CALLING_KINDS:
        return f"attempts={step.attempts}"
    if kind == "loop":
        return f"iterations={step.attempts}"
    if kind == "conditional":
        key = step.metadata.get("executed_branch_key")
        return f"branch={key}" if key is not None else ""
    if kind == "parallel":
        return f"{children} branch{'es' if children != 1 else ''}"
    if kind == "map":
        return f"{children} item{'s' if children != 1 else ''}"
    if kind is None and step.attempts:
        return f"attempts={step.attempts}"
    return ""


def _reason(node: Shown, state: str) -> str | None:
    """Why a step failed, was denied, stopped or waits; left to the children when one of
    them says it already."""
    step = node.result
    if step is None or state == "ok" or not step.feedback:
        return None
    if any(step_state(child.result) not in ("ok", "running") for child in node.children):
        return None
    text = step.feedback
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


def step_line(label: str, node: Shown, place: Place, unfinished: str = "running") -> Text:
    """One step: mark, name, state, what matters for its kind, spend, time, reason.

    ``unfinished`` is what a step without a result is: ``running`` while the run
    runs, ``cancelled`` or ``stopped`` once it is over.
    """
    step = node.result
    state = step_state(step) if step is not None else unfinished
    line = Text(f"{_MARKS[state]} {label}  ", style=_STYLES.get(state, ""))
    if step is None:
        line.append(state, style="dim")
        return line
    parts = [state, _details(place, step, len(node.children))]
    parts += [f"${format_money(step.cost_usd)}", f"{step.token_counts} tok"]
    parts.append(f"{step.latency_s:.2f}s")
    line.append("  ".join(part for part in parts if part), style="dim")
    if node.earlier:
        line.append("  ↺ earlier", style="cyan")
    reason = _reason(node, state)
    if reason:
        line.append(f"  {reason}", style=_STYLES.get(state, "dim"))
    return line


def add_steps(
    tree: Tree, nodes: Sequence[Shown], shape: Shape, unfinished: str = "running"
) -> None:
    """Draw ``nodes`` under ``tree``, one-step branches and items on one line each."""
    for node in nodes:
        place = shape.at(node.path)
        label, drawn = node.name, node
        only = place.only_step
        if place.kind in FAN_OUT_PARTS and only is not None:
            # Decided by the shape, not by how many steps started, so a line never
            # splits in two while the run goes on.
            label = f"{node.name}/{only}"
            inner = next((child for child in node.children if child.name == only), None)
            if inner is not None:
                drawn, place = inner, shape.at(inner.path)
        branch = tree.add(step_line(label, drawn, place, unfinished))
        add_steps(branch, drawn.children, shape, unfinished)


def run_title(pipeline: str, verb: str, run_id: str | None, status: str) -> Text:
    """``demo · resumed RUN_ID · completed``, the status in its colour."""
    head = f"{pipeline} · {verb} {run_id} · " if run_id else f"{pipeline} · "
    title = Text(head, style="bold")
    title.append(status, style=f"bold {STATUS_STYLES.get(status, '')}".strip())
    return title


def result_tree(title: Text | str, steps: Sequence[StepResult], shape: Shape) -> Tree:
    tree = Tree(title)
    add_steps(tree, shown_steps(steps), shape)
    return tree


def spend_lines(
    total: Usage,
    limits: UsageLimits,
    requests: int = 0,
    governor: GovernorStatistics | None = None,
) -> RenderableType:
    """The run's spend against each limit (a bar where there is one)."""
    table = Table.grid(padding=(0, 1))
    rows: list[tuple[str, float, float | None, str, str]] = [
        (
            "spend",
            total.cost_usd,
            limits.total_cost_usd_limit,
            f"${format_money(total.cost_usd)}",
            f"${format_money(limits.total_cost_usd_limit or 0)}",
        ),
        (
            "tokens",
            float(total.tokens),
            limits.total_tokens_limit,
            f"{total.tokens}",
            f"{limits.total_tokens_limit}",
        ),
    ]
    if limits.total_requests_limit is not None or requests:
        rows.append(
            (
                "requests",
                float(requests),
                limits.total_requests_limit,
                f"{requests}",
                f"{limits.total_requests_limit}",
            )
        )
    for label, spent, limit, text, bound in rows:
        if limit is None:
            table.add_row(label, Text("no limit", style="dim"), text)
        else:
            bar = ProgressBar(total=float(limit) or 1.0, completed=spent, width=30)
            table.add_row(label, bar, f"{text} / {bound}")
    if governor is not None and (governor.waiting or governor.denied):
        table.add_row(
            "governor",
            Text(f"{governor.waiting} waiting, {governor.denied} denied", style="dim"),
            "",
        )
    return table
