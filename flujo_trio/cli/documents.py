"""The JSON documents the CLI prints: a run's result, a stored run, a full export.

One schema for all three, so ``run --json``, ``runs show --json`` and ``runs export``
read the same with ``jq``: a stored run adds its header, an export adds the input,
context, shape and journal. Every value goes through :func:`plain_json`: no internal
tags, and nothing a stored run names is imported to print it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from ..context import PipelineContext
from ..results import PipelineResult, StepResult
from ..serialization import PlainContext
from ..state.journal import CallRecord, Decision, Entry, SavedStep
from ..state.records import RunState
from ..usage import UsageLimits
from .plain import plain_json, type_name
from .shapes import CALLING_KINDS, Shape
from .view import step_state

#: Bumped when the export's layout changes in a way a reader must know about.
EXPORT_FORMAT = 1

_ENTRY_KINDS: dict[type, str] = {SavedStep: "step", CallRecord: "call", Decision: "decision"}


def limits_document(limits: UsageLimits) -> dict[str, Any]:
    return {
        "total_cost_usd_limit": limits.total_cost_usd_limit,
        "total_tokens_limit": limits.total_tokens_limit,
        "total_requests_limit": limits.total_requests_limit,
    }


def _with_output(document: dict[str, Any], output: Any) -> None:
    document["output"] = plain_json(output)
    kind = type_name(output)
    if kind is not None:
        document["output_type"] = kind


def step_document(step: StepResult, shape: Shape, path: tuple[str, ...] = ()) -> dict[str, Any]:
    """A step and the steps inside it. ``attempts`` for agent steps, ``iterations``
    for loops; containers have neither (their calls are their children's)."""
    path = (*path, step.name)
    kind = shape.at(path).kind
    document: dict[str, Any] = {
        "name": step.name,
        "kind": kind,
        "status": step_state(step),
    }
    if kind in CALLING_KINDS or (kind is None and step.attempts):
        document["attempts"] = step.attempts
    elif kind == "loop":
        document["iterations"] = step.attempts
    document |= {
        "cost_usd": step.cost_usd,
        "tokens": step.token_counts,
        "latency_s": round(step.latency_s, 6),
        "feedback": step.feedback,
    }
    _with_output(document, step.output)
    document["metadata"] = plain_json(step.metadata)
    document["steps"] = [step_document(child, shape, path) for child in step.step_history]
    return document


def result_document(
    result: PipelineResult,
    limits: UsageLimits,
    shape: Shape,
    *,
    pipeline_name: str,
    error: str | None = None,
) -> dict[str, Any]:
    """What ``run`` and ``resume`` print: how the run ended, its totals and step tree."""
    context = result.final_context
    document: dict[str, Any] = {
        "run_id": result.run_id,
        "pipeline_name": pipeline_name,
        "status": result.status.value,
        "success": result.success,
        "error": error,
    }
    _with_output(document, result.output)
    document |= {
        "pause_message": context.pause_message if context is not None else None,
        "total_cost_usd": result.total_cost_usd,
        "total_tokens": result.total_tokens,
        "total_requests": result.total_requests,
        "limits": limits_document(limits),
        "steps": [step_document(step, shape) for step in result.step_history],
    }
    return document


def stored_result(state: RunState) -> PipelineResult:
    """A stored run as a result (its step tree rebuilt from the journal)."""
    return PipelineResult(
        run_id=state.run_id,
        step_history=state.steps,
        total_cost_usd=state.total_cost_usd,
        total_tokens=state.spent_tokens,
        final_context=state.context,
        status=state.status,
        total_requests=state.spent.requests,
    )


def stored_document(state: RunState) -> dict[str, Any]:
    """What ``runs show --json`` prints: the result document, with the run's header."""
    document = result_document(
        stored_result(state), state.limits, Shape(state.shape), pipeline_name=state.pipeline_name
    )
    del document["error"]  # the reason a run stopped is not stored, only its status
    document |= {
        "created_at": state.created_at.isoformat(),
        "updated_at": state.updated_at.isoformat(),
        "origin": state.origin,
        "owner": state.owner,
    }
    return document


def context_document(context: PipelineContext | None) -> dict[str, Any] | None:
    """A stored context: its fields, its own class's fields too, and that class's name
    as ``context_type`` (read as text, never imported)."""
    if context is None:
        return None
    if not isinstance(context, PlainContext):
        return {**plain_json(context), "context_type": type(context).__qualname__}
    base = {f.name: plain_json(getattr(context, f.name)) for f in attrs.fields(PipelineContext)}
    others = plain_json(context.other_fields)
    return {**base, **others, "context_type": context.class_name.rpartition(".")[2]}


def entry_document(entry: Entry) -> dict[str, Any]:
    """A journal entry: ``entry`` says which kind (step, call, decision)."""
    return {"entry": _ENTRY_KINDS[type(entry)], **plain_json(entry)}


def export_document(state: RunState) -> dict[str, Any]:
    """Everything stored about a run, as plain JSON (``runs export``)."""
    document = {"export_format": EXPORT_FORMAT, **stored_document(state)}
    document |= {
        "fingerprint": state.fingerprint,
        "owner_since": plain_json(state.owner_since),
        "lease_expires_at": plain_json(state.lease_expires_at),
        "version": state.version,
        "input": plain_json(state.input),
        "context": context_document(state.context),
        "initial_context": context_document(state.initial_context),
        "shape": plain_json(state.shape),
        "journal": entries_document(state.journal),
    }
    return document


def entries_document(journal: Sequence[Entry]) -> list[dict[str, Any]]:
    return [entry_document(entry) for entry in journal]
