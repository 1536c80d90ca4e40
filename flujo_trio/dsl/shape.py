"""A pipeline's shape: step kinds, names and nesting, without any code.

A run stores the shape it was started with. Resuming with a pipeline of another
shape would replay journaled results into the wrong steps, so the runner refuses
it and names the first difference; changing an agent's code keeps the shape and
is allowed. The shape is plain JSON, so a stored run can be inspected (and its
tree ordered) without importing the pipeline.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .conditional import ConditionalStep
from .human import HumanStep
from .loop import LoopStep
from .map import MapStep
from .outline import key_label
from .parallel import ParallelStep
from .pipeline import Pipeline, StepBase
from .step import Step

Shape = list[dict[str, Any]]

_KIND_NAMES = {
    "step": "a Step",
    "human": "a HumanStep",
    "loop": "a LoopStep",
    "conditional": "a ConditionalStep",
    "parallel": "a ParallelStep",
    "map": "a MapStep",
}


def step_kind(step: StepBase) -> str:
    """The kind name of a step (its DSL class, or the step kind it subclasses)."""
    kind = _KIND_BY_TYPE.get(type(step))
    if kind is not None:
        return kind
    for cls, kind in (
        (Step, "step"),
        (HumanStep, "human"),
        (LoopStep, "loop"),
        (ConditionalStep, "conditional"),
        (ParallelStep, "parallel"),
        (MapStep, "map"),
    ):
        if isinstance(step, cls):
            return kind
    return type(step).__name__


_KIND_BY_TYPE: dict[type, str] = {
    Step: "step",
    HumanStep: "human",
    LoopStep: "loop",
    ConditionalStep: "conditional",
    ParallelStep: "parallel",
    MapStep: "map",
}


def pipeline_shape(pipeline: Pipeline) -> Shape:
    """The shape of ``pipeline`` (iterative, so nesting depth is not limited by recursion)."""
    root: Shape = []
    stack: list[tuple[Sequence[StepBase], Shape]] = [(pipeline.steps, root)]
    while stack:
        steps, out = stack.pop()
        for step in steps:
            node: dict[str, Any] = {"kind": step_kind(step), "name": step.name}
            out.append(node)
            if isinstance(step, Step):
                if step.fallback is not None:
                    node["fallback"] = []
                    stack.append(((step.fallback,), node["fallback"]))
            elif isinstance(step, LoopStep | MapStep):
                node["body"] = []
                stack.append((step.body.steps, node["body"]))
            elif isinstance(step, ParallelStep | ConditionalStep):
                node["branches"] = []
                for key, body in step.branches.items():
                    inner: Shape = []
                    node["branches"].append([key_label(key), inner])
                    stack.append((body.steps, inner))
                if isinstance(step, ConditionalStep) and step.default is not None:
                    node["default"] = []
                    stack.append((step.default.steps, node["default"]))
    return root


def fingerprint(shape: Shape) -> str:
    """A short stable hash of a shape (the same in every process)."""
    import hashlib  # loads OpenSSL: only when a runner is built, not on import

    return hashlib.sha256(_compact_json(shape).encode()).hexdigest()[:32]


def _compact_json(value: Any) -> str:
    """``json.dumps(value, sort_keys=True, separators=(",", ":"))``, character for
    character, but iterative: the json module recurses once per list or dict, so a
    pipeline nested a few hundred containers deep would raise RecursionError (and the
    text must stay the same, or runs stored before could no longer be resumed)."""
    parts: list[str] = []
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _Text):
            parts.append(item.text)
        elif isinstance(item, dict):
            parts.append("{")
            pending: list[Any] = []
            for index, key in enumerate(sorted(item)):
                prefix = "," if index else ""
                pending += [_Text(f"{prefix}{json.dumps(key)}:"), item[key]]
            stack.append(_Text("}"))
            stack.extend(reversed(pending))
        elif isinstance(item, list | tuple):
            parts.append("[")
            pending = []
            for index, element in enumerate(item):
                if index:
                    pending.append(_Text(","))
                pending.append(element)
            stack.append(_Text("]"))
            stack.extend(reversed(pending))
        else:
            parts.append(json.dumps(item))
    return "".join(parts)


class _Text:
    """Already-encoded JSON text on :func:`_compact_json`'s stack."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def first_difference(old: Any, new: Any) -> str | None:
    """How ``new`` differs from ``old``, in words, at the first place it does; None if equal."""
    stack: list[tuple[Any, Any, str]] = [(old, new, "")]
    while stack:
        before, after, where = stack.pop(0)
        found = _sequence_difference(before, after, where)
        if found is not None:
            if isinstance(found, str):
                return found
            stack[0:0] = found
    return None


def _in(where: str) -> str:
    return f" in '{where}'" if where else ""


def _names(shape: Any) -> list[str]:
    return [node.get("name") for node in shape] if isinstance(shape, list) else []


def _sequence_difference(before: Any, after: Any, where: str) -> str | list[Any] | None:
    """A message, or the nested pairs still to compare, or None when equal."""
    if not isinstance(before, list) or not isinstance(after, list):
        return None if before == after else f"the pipeline's shape changed{_in(where)}"
    old_names, new_names = _names(before), _names(after)
    if old_names != new_names:
        return _name_change(old_names, new_names, where)
    nested: list[Any] = []
    for old_node, new_node in zip(before, after, strict=True):
        name = old_node.get("name")
        path = f"{where}/{name}" if where else str(name)
        if old_node.get("kind") != new_node.get("kind"):
            old_kind = _KIND_NAMES.get(old_node.get("kind"), old_node.get("kind"))
            new_kind = _KIND_NAMES.get(new_node.get("kind"), new_node.get("kind"))
            return f"'{path}' was {old_kind} and is now {new_kind}"
        for part in ("fallback", "body", "default"):
            old_part, new_part = old_node.get(part), new_node.get(part)
            if (old_part is None) != (new_part is None):
                what = {"fallback": "a fallback", "body": "a body", "default": "a default branch"}
                verb = "gained" if old_part is None else "lost"
                return f"'{path}' {verb} {what[part]}"
            if old_part is not None:
                nested.append((old_part, new_part, path))
        old_branches = old_node.get("branches")
        new_branches = new_node.get("branches")
        if old_branches is not None or new_branches is not None:
            old_keys = [key for key, _ in old_branches or []]
            new_keys = [key for key, _ in new_branches or []]
            if old_keys != new_keys:
                return _branch_change(old_keys, new_keys, path)
            for (key, old_body), (_, new_body) in zip(
                old_branches or [], new_branches or [], strict=True
            ):
                nested.append((old_body, new_body, f"{path}/{key}"))
    return nested or None


def _name_change(old: list[str], new: list[str], where: str) -> str:
    added = [name for name in new if name not in old]
    removed = [name for name in old if name not in new]
    if len(old) == len(new) and added and removed:
        for before, after in zip(old, new, strict=True):
            if before != after:
                return f"'{before}' is now '{after}'{_in(where)}"
    if removed:
        return f"step '{removed[0]}' was removed{_in(where)}"
    if added:
        return f"step '{added[0]}' was inserted{_in(where)}"
    return f"the steps{_in(where)} were reordered: {old} is now {new}"


def _branch_change(old: list[str], new: list[str], where: str) -> str:
    added = [key for key in new if key not in old]
    removed = [key for key in old if key not in new]
    if len(old) == len(new) and added and removed:
        for before, after in zip(old, new, strict=True):
            if before != after:
                return f"branch '{before}' of '{where}' is now '{after}'"
    if removed:
        return f"branch '{removed[0]}' of '{where}' was removed"
    if added:
        return f"branch '{added[0]}' of '{where}' was added"
    return f"the branches of '{where}' were reordered: {old} is now {new}"
