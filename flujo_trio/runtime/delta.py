"""What a step changed in its branch's context, and replaying those changes.

A leaf step that can reach the context (its agent accepts ``context``, or it has
processors, plugins or validators; a human step always) has the context's fields
copied when it starts. When it ends, each field is compared with its copy: lists
that only grew record the appended items, dicts record the keys that changed, other
fields their new value. A resumed run applies these changes where the step would
have run, so the context is what it was, without running the step again.

``run_id`` and ``status`` belong to the runtime, and ``step_outputs`` is rebuilt on
replay from the journaled outputs; none of them is recorded.
"""

from __future__ import annotations

from typing import Any

import attrs

from ..context import PipelineContext
from ..copying import deep_copy
from ..errors import SerializationError
from ..state.journal import Entry, FieldChange, SavedStep
from .merge import Append, DictUpdate, Replace, diff

_NOT_RECORDED = frozenset({"run_id", "status", "step_outputs"})


def _fields(context: PipelineContext) -> list[str]:
    return [field.name for field in attrs.fields(type(context)) if field.name not in _NOT_RECORDED]


def snapshot(context: PipelineContext) -> dict[str, Any]:
    """Copies of the recorded fields, as they are now."""
    return {
        name: deep_copy(getattr(context, name), what=f"context field {name!r}")
        for name in _fields(context)
    }


def changes_since(before: dict[str, Any], context: PipelineContext) -> list[FieldChange]:
    """What changed in ``context`` since ``before`` was taken (values are copies)."""
    found: list[FieldChange] = []
    for name, old in before.items():
        change = diff(old, getattr(context, name))
        if change is None:
            continue
        what = f"context field {name!r}"
        if isinstance(change, Append):
            found.append(FieldChange(name, "append", deep_copy(change.items, what=what)))
        elif isinstance(change, DictUpdate):
            found.append(
                FieldChange(
                    name,
                    "update",
                    deep_copy(change.updates, what=what),
                    list(change.removed),
                )
            )
        elif isinstance(change, Replace):
            found.append(FieldChange(name, "set", deep_copy(change.value, what=what)))
    return found


def check_changes(context: PipelineContext, journal: tuple[Entry, ...], run_id: str) -> None:
    """Refuse a journal whose context changes this context cannot take (a field it does
    not record, an append that is not a list, an update that is not a dict): checked
    before a resume claims the run, so a damaged journal leaves the run as it was."""
    recorded = set(_fields(context))
    saved = [entry for entry in journal if isinstance(entry, SavedStep)]
    # A field no step replaces keeps the type it started with (a set may change it).
    kept = {name: type(getattr(context, name)) for name in recorded}
    for entry in saved:
        for change in entry.changes:
            if change.op == "set":
                kept.pop(change.field, None)
    for entry in saved:
        for change in entry.changes:
            _check_change(change, recorded, kept, type(context).__name__, entry, run_id)


def _check_change(
    change: FieldChange,
    recorded: set[str],
    kept: dict[str, type],
    context_name: str,
    entry: SavedStep,
    run_id: str,
) -> None:
    problem = None
    holds = kept.get(change.field)
    wants = {"append": list, "update": dict}.get(change.op)
    if change.field not in recorded:
        problem = f"it changes context field {change.field!r}, which {context_name} does not record"
    elif change.op == "append" and not isinstance(change.value, list):
        problem = f"it appends {type(change.value).__name__} to field {change.field!r}"
    elif change.op == "update" and not (
        isinstance(change.value, dict) and isinstance(change.removed, list)
    ):
        problem = f"its update of field {change.field!r} is not a dict of changed keys"
    elif wants is not None and holds is not None and not issubclass(holds, wants):
        problem = f"it {change.op}s field {change.field!r}, which holds {holds.__name__}"
    if problem is not None:
        step = "/".join(map(str, entry.address))
        raise SerializationError(
            f"Cannot load the journal entry for {step!r} of run {run_id!r}: {problem}"
        )


def apply_changes(context: PipelineContext, changes: list[FieldChange]) -> None:
    """Replay recorded changes onto ``context`` (values are copied, so the journal's
    own values are never shared with the live run)."""
    for change in changes:
        value = deep_copy(change.value, what=f"context field {change.field!r}")
        if change.op == "set":
            setattr(context, change.field, value)
            continue
        current = getattr(context, change.field)
        if change.op == "append" and isinstance(current, list):
            current.extend(value)
        elif change.op == "update" and isinstance(current, dict):
            for key in change.removed:
                current.pop(key, None)
            current.update(value)
        else:
            raise SerializationError(
                f"Cannot replay a stored {change.op} of context field {change.field!r}: the "
                f"field holds {type(current).__name__} (the journal was damaged)"
            )
