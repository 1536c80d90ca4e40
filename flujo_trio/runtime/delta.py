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
from ..state.journal import FieldChange
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


def apply_changes(context: PipelineContext, changes: list[FieldChange]) -> None:
    """Replay recorded changes onto ``context`` (values are copied, so the journal's
    own values are never shared with the live run)."""
    for change in changes:
        value = deep_copy(change.value, what=f"context field {change.field!r}")
        if change.op == "append":
            getattr(context, change.field).extend(value)
        elif change.op == "update":
            current = getattr(context, change.field)
            for key in change.removed:
                current.pop(key, None)
            current.update(value)
        else:
            setattr(context, change.field, value)
