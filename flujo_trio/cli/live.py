"""The live view's state: the whole run as events describe it, drawn on demand.

A resumed run starts from what the store holds: its spend so far (not $0) and,
as the replay reports them, the steps earlier executions finished, marked as such.
Steps are drawn in declared order (from the pipeline's shape), not in the order
their tasks happened to start, and the title ends on the run's final status, also
when the run never reports one (Ctrl-C).
"""

from __future__ import annotations

import time

import attrs
from rich.console import Group, RenderableType
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
from ..governance import GovernorStatistics
from ..results import StepResult
from ..usage import Usage, UsageLimits
from .shapes import Shape, order_key
from .view import Shown, add_steps, run_title, spend_lines

Path = tuple[str, ...]


@attrs.define
class LiveModel:
    """Everything the live view shows, updated from run events."""

    limits: UsageLimits
    shape: Shape
    pipeline: str = "flujo-trio"
    verb: str = "run"
    """``run``, or ``resumed`` for a stored run taken up again."""
    run_id: str | None = None
    total: Usage = attrs.field(factory=Usage)
    """Spent so far; for a resume, the stored spend until the run reports more."""
    requests: int = 0
    governor: GovernorStatistics | None = None
    status: str = "running"
    started: float = attrs.field(factory=time.monotonic)
    ended: float | None = None
    steps: dict[Path, tuple[StepResult | None, bool]] = attrs.field(factory=dict)
    """By path, in the order first seen: the latest result (None while running) and
    whether it was taken from an earlier execution."""

    def apply(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.pipeline, self.run_id = event.pipeline_name, event.run_id
            self.verb = "resumed" if event.resumed else "run"
        elif isinstance(event, StepStarted):
            self.steps[event.path] = (None, False)
        elif isinstance(event, StepFinished):
            self.steps[event.path] = (event.result, event.reused)
        elif isinstance(event, UsageUpdated):
            self.total, self.limits = event.total, event.limits
            if event.governor is not None:
                self.governor, self.requests = event.governor, event.governor.requests
        elif isinstance(event, RunPaused):
            self.status = "paused"
        elif isinstance(event, RunFinished):
            result = event.result
            self.total = Usage(result.total_cost_usd, result.total_tokens)
            self.requests = result.total_requests
            self._settle(result.step_history, ())
            self.conclude(result.status.value)

    def _settle(self, steps: list[StepResult], parent: Path) -> None:
        """Steps the final result holds but no event finished (a budget stop cancels
        the step that breached before it reports) take their final result."""
        for step in steps:
            path = (*parent, step.name)
            seen = self.steps.get(path)
            if seen is None or seen[0] is None:
                self.steps[path] = (step, False)
            self._settle(step.step_history, path)

    def conclude(self, status: str) -> None:
        """The run is over: show ``status`` and stop the clock."""
        self.status = status
        if self.ended is None:
            self.ended = time.monotonic()

    def tree_nodes(self) -> list[Shown]:
        """The steps seen so far as a tree, each level in declared order."""
        nodes: dict[Path, Shown] = {}
        roots: list[Shown] = []

        def node_at(path: Path) -> Shown:
            found = nodes.get(path)
            if found is None:
                found = nodes[path] = Shown(path[-1], path)
                siblings = roots if len(path) == 1 else node_at(path[:-1]).children
                siblings.append(found)
            return found

        for path, (result, reused) in self.steps.items():
            if not path:
                continue
            node = node_at(path)
            node.result, node.reused = result, reused
        self._order(roots, ())
        return roots

    def _order(self, siblings: list[Shown], parent: Path) -> None:
        place = self.shape.at(parent)
        ranked = sorted(
            enumerate(siblings), key=lambda seen: order_key(place, seen[1].name, seen[0])
        )
        siblings[:] = [node for _, node in ranked]
        for node in siblings:
            self._order(node.children, node.path)

    def render(self) -> RenderableType:
        elapsed = (self.ended or time.monotonic()) - self.started
        title = run_title(self.pipeline, self.verb, self.run_id, self.status)
        title.append(f" · {elapsed:0.1f}s", style="dim")
        tree = Tree(title)
        unfinished = {"running": "running", "cancelled": "cancelled"}.get(self.status, "stopped")
        add_steps(tree, self.tree_nodes(), self.shape, unfinished)
        return Group(tree, spend_lines(self.total, self.limits, self.requests, self.governor))
