"""What a Runner works out once from its pipeline: shape, the per-run agent scopes,
the classes stored runs may name, and where each human step sits."""

from __future__ import annotations

import contextlib
import sys
import typing
from collections.abc import Iterator
from typing import Any

import attrs

from ..context import PipelineContext
from ..dsl.conditional import ConditionalStep
from ..dsl.human import HumanStep
from ..dsl.loop import LoopStep
from ..dsl.map import MapStep
from ..dsl.parallel import ParallelStep
from ..dsl.pipeline import Pipeline, StepBase
from ..dsl.shape import Shape, fingerprint, pipeline_shape
from ..dsl.step import Step
from ..dsl.walk import iter_steps, scoped_agents
from ..state.journal import Address

#: Modules whose classes stored data may never name, whatever the pipeline imports.
_NEVER = ("builtins", "os", "sys", "subprocess", "importlib", "shutil", "socket", "pickle")


def _module_of(value: Any) -> str | None:
    target = value if isinstance(value, type) else getattr(value, "__func__", value)
    module = getattr(target, "__module__", None)
    if module is None and not isinstance(value, type):
        module = getattr(type(value), "__module__", None)
    return module if isinstance(module, str) else None


def _callables(step: StepBase) -> Iterator[Any]:
    if isinstance(step, Step):
        yield step.agent
        yield step.call.fn
        yield from step.validators
        yield from step.plugins
        yield from step.processors.input
        yield from step.processors.output
        if callable(step.reserve):
            yield step.reserve
    for name in (
        "condition",
        "exit_condition",
        "initial_input_mapper",
        "iteration_input_mapper",
        "input_mapper",
        "output_mapper",
        "merge_strategy",
        "items",
    ):
        value = getattr(step, name, None)
        if callable(value):
            yield value


def _types_in(annotation: Any) -> Iterator[type]:
    """Classes named by a type annotation (``list[Foo] | None`` -> ``Foo``)."""
    if isinstance(annotation, type):
        yield annotation
    for argument in typing.get_args(annotation):
        yield from _types_in(argument)


def _return_types(fn: Any) -> Iterator[type]:
    with contextlib.suppress(Exception):
        hints = typing.get_type_hints(fn)
        yield from _types_in(hints.get("return"))


@attrs.frozen
class RunPlan:
    """A pipeline's facts, computed once per Runner."""

    shape: Shape
    fingerprint: str
    scoped_agents: list[Any]
    classes: tuple[type, ...]
    modules: frozenset[str]
    humans: dict[tuple[str, ...], HumanStep]
    """Human steps by their names' path (loop iteration numbers left out)."""

    @classmethod
    def of(cls, pipeline: Pipeline, context_type: type[PipelineContext]) -> RunPlan:
        shape = pipeline_shape(pipeline)
        classes: list[type] = [context_type]
        modules: set[str] = set()
        agents_seen: set[int] = set()
        for cls_ in context_type.__mro__:
            module = _module_of(cls_)
            if module is not None:
                modules.add(module)
        for step in iter_steps(pipeline):
            if isinstance(step, HumanStep) and step.input_type is not None:
                classes.extend(_types_in(step.input_type))
            for fn in _callables(step):
                module = _module_of(fn)
                if module is not None:
                    modules.add(module)
            if isinstance(step, Step) and id(step.call.fn) not in agents_seen:
                # What agents return is what gets stored; resolving annotations is
                # costly, so each agent is looked at once (a fan-out shares agents).
                agents_seen.add(id(step.call.fn))
                classes.extend(_return_types(step.call.fn))
        allowed_modules = frozenset(
            m for m in modules if m.split(".")[0] not in _NEVER and m != "flujo_trio.testing"
        )
        return cls(
            shape=shape,
            fingerprint=fingerprint(shape),
            scoped_agents=scoped_agents(pipeline),
            classes=tuple(dict.fromkeys(c for c in classes if c.__module__ not in _NEVER)),
            modules=allowed_modules,
            humans=_humans(pipeline),
        )

    def allowing(self) -> contextlib.AbstractContextManager[None]:
        """Loads inside may resolve this pipeline's own classes (see serialization).

        Nothing can be loaded before the converter is imported (the SQL stores import
        it; the memory store never needs it), so until then this costs nothing.
        """
        serialization = sys.modules.get("flujo_trio.serialization")
        if serialization is None:
            return contextlib.nullcontext()
        return serialization.allowing(self.classes, self.modules)  # type: ignore[no-any-return]

    def human_at(self, address: Address) -> HumanStep | None:
        names = tuple(part for part in address if isinstance(part, str))
        return self.humans.get(_without_items(names))


def _without_items(names: tuple[str, ...]) -> tuple[str, ...]:
    """Map item segments (``"m[3]"``) stand for the map's body."""
    return tuple(name for name in names if not (name.endswith("]") and "[" in name))


def _humans(pipeline: Pipeline) -> dict[tuple[str, ...], HumanStep]:
    found: dict[tuple[str, ...], HumanStep] = {}
    stack: list[tuple[tuple[str, ...], tuple[StepBase, ...]]] = [((), pipeline.steps)]
    while stack:
        prefix, steps = stack.pop()
        for step in steps:
            here = (*prefix, step.name)
            if isinstance(step, HumanStep):
                found[here] = step
            elif isinstance(step, LoopStep | MapStep):
                stack.append((here, step.body.steps))
            elif isinstance(step, ConditionalStep):
                bodies = [*step.branches.values(), *([step.default] if step.default else [])]
                for body in bodies:
                    stack.append((here, body.steps))
            elif isinstance(step, ParallelStep):
                for key, body in step.branches.items():
                    stack.append(((*here, key), body.steps))
    return found
