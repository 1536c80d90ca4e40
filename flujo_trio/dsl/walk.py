"""Walking a pipeline's declaration: every step, every agent (fallbacks included)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .pipeline import Pipeline, StepBase
from .step import Step


def iter_steps(pipeline: Pipeline) -> Iterator[StepBase]:
    def walk(step: StepBase) -> Iterator[StepBase]:
        yield step
        if isinstance(step, Step) and step.fallback is not None:
            yield from walk(step.fallback)
        for inner in step.nested():
            yield from walk(inner)

    for step in pipeline.steps:
        yield from walk(step)


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
