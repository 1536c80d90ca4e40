"""Merging branch contexts back into the parent by diffing each against the fork snapshot.

Comparing siblings with each other loses updates and invents conflicts; comparing
each branch with the snapshot taken at the fork tells exactly what that branch
changed. Then: a field changed by one branch is applied; lists that branches only
appended to are concatenated in branch order; dicts merge key by key; the same
field (or dict key) changed by two branches to different values is a conflict,
settled by the strategy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs

from ..context import PipelineContext
from ..dsl.parallel import MergeStrategy
from ..errors import FlujoTrioError

#: Fields the runtime owns; branches never merge them back.
_RUNTIME_FIELDS = frozenset({"run_id", "status"})
#: Fields the runtime writes in every branch: nested steps of the same name record
#: their outputs in each branch, which is bookkeeping, not a conflict (last wins).
_BOOKKEEPING_FIELDS = frozenset({"step_outputs"})


class Append:
    """A list that only grew: the items appended."""

    __slots__ = ("items",)

    def __init__(self, items: list[Any]) -> None:
        self.items = items


class DictUpdate:
    """A dict whose keys changed: the new values, and the keys removed."""

    __slots__ = ("removed", "updates")

    def __init__(self, updates: dict[Any, Any], removed: tuple[Any, ...]) -> None:
        self.updates, self.removed = updates, removed


class Replace:
    """Any other change: the new value."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


Change = Append | DictUpdate | Replace
#: Turns the parent's current value of a field into the merged one.
Applier = Callable[[Any], Any]


class MergeConflict(FlujoTrioError):
    """Two branches changed the same field or dict key to different values."""

    def __init__(self, key: object) -> None:
        super().__init__(f"Merge conflict for key '{key}'")
        self.key = key


def context_fields(context: PipelineContext) -> list[str]:
    names = [field.name for field in attrs.fields(type(context))]
    extra = [name for name in getattr(context, "__dict__", {}) if name not in names]
    return [name for name in [*names, *extra] if name not in _RUNTIME_FIELDS]


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:
        return a is b


def diff(before: Any, after: Any) -> Change | None:
    """What a branch did to one field, or None if it left it as it was."""
    if _same(before, after):
        return None
    if (
        isinstance(before, list)
        and isinstance(after, list)
        and len(after) > len(before)
        and _same(after[: len(before)], before)
    ):
        return Append(after[len(before) :])
    if isinstance(before, dict) and isinstance(after, dict):
        updates = {k: v for k, v in after.items() if k not in before or not _same(before[k], v)}
        removed = tuple(k for k in before if k not in after)
        return DictUpdate(updates, removed)
    return Replace(after)


def _pick(
    values: Sequence[Any], strategy: MergeStrategy, key: object
) -> Any:  # values in declared branch order, at least one
    if strategy is MergeStrategy.OVERWRITE:
        return values[-1]
    if strategy is MergeStrategy.KEEP_FIRST:
        return values[0]
    first = values[0]
    if any(not _same(first, other) for other in values[1:]):
        raise MergeConflict(key)
    return first


def _whole(before: Any, change: Change) -> Any:
    if isinstance(change, Replace):
        return change.value
    if isinstance(change, Append):
        return [*before, *change.items]
    merged = {k: v for k, v in before.items() if k not in change.removed}
    merged.update(change.updates)
    return merged


def _plan(key: object, before: Any, changes: list[Change], strategy: MergeStrategy) -> Applier:
    """Decide the merged value of one field (or dict key) changed by ``changes``.

    Returns a function applying it to the parent's current value. Appends are
    concatenated and dicts merged key by key, recursively, before the strategy is
    asked to settle what really differs.
    """
    if all(isinstance(c, Append) for c in changes):
        items = [item for c in changes if isinstance(c, Append) for item in c.items]
        return lambda current: [*current, *items]
    if all(isinstance(c, DictUpdate) for c in changes):
        return _plan_dict(before, [c for c in changes if isinstance(c, DictUpdate)], strategy)
    return _constant(_pick([_whole(before, c) for c in changes], strategy, key))


_NOTHING = object()


def _empty_like(values: list[Any]) -> Any:
    if all(isinstance(value, list) for value in values):
        return []
    if all(isinstance(value, dict) for value in values):
        return {}
    return _NOTHING


def _constant(value: Any) -> Applier:
    return lambda current: value


def _plan_dict(before: Any, changes: list[DictUpdate], strategy: MergeStrategy) -> Applier:
    updates: dict[Any, list[Any]] = {}
    removed: set[Any] = set()
    for change in changes:
        for key, value in change.updates.items():
            updates.setdefault(key, []).append(value)
        removed.update(change.removed)
    for key in removed & updates.keys():
        if strategy in (MergeStrategy.CONTEXT_UPDATE, MergeStrategy.ERROR_ON_CONFLICT):
            raise MergeConflict(key)
    plans: dict[Any, Applier] = {}
    for key, values in updates.items():
        # A key several branches created (``setdefault(k, []).append(...)``) merges
        # as if it had been there, empty, at the fork.
        base = before[key] if key in before else _empty_like(values)
        if len(values) > 1 and base is not _NOTHING:
            nested = [diff(base, value) for value in values]
            plans[key] = _plan(key, base, [c for c in nested if c is not None], strategy)
        else:
            plans[key] = _constant(_pick(values, strategy, key))

    def apply(current: dict[Any, Any]) -> dict[Any, Any]:
        for key in removed - plans.keys():
            current.pop(key, None)
        for key, plan in plans.items():
            existing = current.get(key)
            if existing is None and key not in current:
                existing = _empty_like(updates[key])
            current[key] = plan(existing)
        return current

    return apply


def merge_contexts(
    parent: PipelineContext,
    snapshot: PipelineContext,
    branches: Sequence[PipelineContext],
    strategy: MergeStrategy,
) -> None:
    """Apply the branches' changes (declared order) to ``parent``, all or nothing.

    Raises :class:`MergeConflict` before touching ``parent`` when the strategy
    does not settle a conflict.
    """
    if strategy is MergeStrategy.NO_MERGE or not branches:
        return
    plans: list[tuple[str, Applier]] = []
    for name in context_fields(snapshot):
        before = getattr(snapshot, name)
        changes = [
            change
            for branch in branches
            if (change := diff(before, getattr(branch, name, before))) is not None
        ]
        if changes:
            field_strategy = MergeStrategy.OVERWRITE if name in _BOOKKEEPING_FIELDS else strategy
            plans.append((name, _plan(name, before, changes, field_strategy)))
    for name, apply in plans:
        setattr(parent, name, apply(getattr(parent, name)))
