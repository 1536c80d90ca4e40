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

#: Fields the runtime owns; branches never merge them back.
_RUNTIME_FIELDS = frozenset({"run_id", "status"})
#: Fields the runtime writes in every branch: nested steps of the same name record
#: their outputs in each branch, which is bookkeeping, not a conflict (last wins).
_BOOKKEEPING_FIELDS = frozenset({"step_outputs"})


@attrs.frozen
class Append:
    items: list[Any]


@attrs.frozen
class DictUpdate:
    updates: dict[Any, Any]
    removed: tuple[Any, ...]


@attrs.frozen
class Replace:
    value: Any


Change = Append | DictUpdate | Replace


class MergeConflict(Exception):
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


def _plan_field(
    name: str, before: Any, changes: list[Change], strategy: MergeStrategy
) -> Callable[[Any], Any]:
    """Decide a field's merged value; returns a function applying it to the parent."""
    if all(isinstance(c, Append) for c in changes):
        items = [item for c in changes if isinstance(c, Append) for item in c.items]
        return lambda current: [*current, *items]
    if all(isinstance(c, DictUpdate) for c in changes):
        updates: dict[Any, list[Any]] = {}
        removed: set[Any] = set()
        for change in changes:
            assert isinstance(change, DictUpdate)
            for key, value in change.updates.items():
                updates.setdefault(key, []).append(value)
            removed.update(change.removed)
        for key in removed & updates.keys():
            if strategy in (MergeStrategy.CONTEXT_UPDATE, MergeStrategy.ERROR_ON_CONFLICT):
                raise MergeConflict(key)
        chosen = {key: _pick(values, strategy, key) for key, values in updates.items()}

        def apply_dict(current: dict[Any, Any]) -> dict[Any, Any]:
            for key in removed - chosen.keys():
                current.pop(key, None)
            current.update(chosen)
            return current

        return apply_dict
    value = _pick([_whole(before, c) for c in changes], strategy, name)
    return lambda current: value


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
    plans: list[tuple[str, Callable[[Any], Any]]] = []
    for name in context_fields(snapshot):
        before = getattr(snapshot, name)
        changes = [
            change
            for branch in branches
            if (change := diff(before, getattr(branch, name, before))) is not None
        ]
        if changes:
            field_strategy = MergeStrategy.OVERWRITE if name in _BOOKKEEPING_FIELDS else strategy
            plans.append((name, _plan_field(name, before, changes, field_strategy)))
    for name, apply in plans:
        setattr(parent, name, apply(getattr(parent, name)))
