"""Walking a pipeline's declaration: every step, every agent (fallbacks included)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .pipeline import Pipeline, StepBase
from .step import Step


def iter_steps(pipeline: Pipeline) -> Iterator[StepBase]:
    """Every step, depth first in declared order (a step, its fallback chain, then what
    it nests). Iterative: nesting depth is not limited by the interpreter's stack."""
    stack: list[Iterator[StepBase]] = [iter(pipeline.steps)]
    while stack:
        step = next(stack[-1], None)
        if step is None:
            stack.pop()
            continue
        yield step
        inner: list[StepBase] = []
        if isinstance(step, Step) and step.fallback is not None:
            inner.append(step.fallback)
        inner.extend(step.nested())
        if inner:
            stack.append(iter(inner))


def scoped_agents(pipeline: Pipeline) -> list[Any]:
    """Distinct agents that want a per-run scope (``run_scope()``), in declared order.

    An adapter that needs something for the whole run, e.g. an asyncio loop to bridge
    to, defines ``run_scope()`` (an async context manager); the runner enters it once
    around the run, so every call of the run shares it.
    """
    seen: dict[int, Any] = {}
    for step in iter_steps(pipeline):
        agent = getattr(step, "agent", None)
        if agent is not None and callable(getattr(agent, "run_scope", None)):
            seen.setdefault(id(agent), agent)
    return list(seen.values())
