"""OpenTelemetry tracing as a run hook: a span per run and per step, nested as steps nest.

``Runner(pipeline, hooks=[OpenTelemetryHook()])``. Needs the ``otel`` extra
(``pip install flujo-trio[otel]``). Spans are parented explicitly from the step path,
so they nest correctly across Trio tasks without relying on context propagation.
"""

from __future__ import annotations

from typing import Any

import attrs
from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode, TracerProvider

from ..context import RunStatus
from ..events import (
    Event,
    RunFinished,
    RunPaused,
    RunStarted,
    StepFinished,
    StepStarted,
    UsageUpdated,
)
from ..results import StepResult


@attrs.define
class _RunSpans:
    root: Span
    steps: dict[tuple[str, ...], Span] = attrs.field(factory=dict)


def _step_attributes(result: StepResult) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "flujo.step.name": result.name,
        "flujo.step.success": result.success,
        "flujo.step.attempts": result.attempts,
        "flujo.step.cost_usd": result.cost_usd,
        "flujo.step.tokens": result.token_counts,
        "flujo.step.latency_s": result.latency_s,
    }
    for key in ("fallback_triggered", "cache_hit", "cancelled", "paused", "reservation_denied"):
        if key in result.metadata:
            attributes[f"flujo.step.{key}"] = bool(result.metadata[key])
    return attributes


class OpenTelemetryHook:
    """Turns run events into spans; one instance can serve many concurrent runs."""

    def __init__(self, tracer_provider: TracerProvider | None = None) -> None:
        self._tracer = trace.get_tracer("flujo_trio", tracer_provider=tracer_provider)
        self._runs: dict[str, _RunSpans] = {}

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            span = self._tracer.start_span(
                f"flujo.run {event.pipeline_name}",
                attributes={
                    "flujo.run.id": event.run_id,
                    "flujo.pipeline": event.pipeline_name,
                    "flujo.run.resumed": event.resumed,
                },
            )
            self._runs[event.run_id] = _RunSpans(span)
        elif isinstance(event, StepStarted):
            self._start_step(event)
        elif isinstance(event, StepFinished):
            self._finish_step(event)
        elif isinstance(event, UsageUpdated):
            run = self._runs.get(event.run_id or "")
            if run is not None:
                run.root.set_attribute("flujo.run.cost_usd", event.total.cost_usd)
                run.root.set_attribute("flujo.run.tokens", event.total.tokens)
        elif isinstance(event, RunPaused):
            run = self._runs.get(event.run_id)
            if run is not None:
                run.root.add_event("paused", {"flujo.pause_message": event.message or ""})
        elif isinstance(event, RunFinished):
            self._finish_run(event)

    def _start_step(self, event: StepStarted) -> None:
        run = self._runs.get(event.run_id or "")
        if run is None:
            return
        parent = run.root
        for depth in range(len(event.path) - 1, 0, -1):
            parent = run.steps.get(event.path[:depth], parent)
            if event.path[:depth] in run.steps:
                break
        context = trace.set_span_in_context(parent)
        run.steps[event.path] = self._tracer.start_span(
            f"flujo.step {event.path[-1]}",
            context=context,
            attributes={"flujo.step.path": "/".join(event.path)},
        )

    def _finish_step(self, event: StepFinished) -> None:
        run = self._runs.get(event.run_id or "")
        span = run.steps.pop(event.path, None) if run is not None else None
        if span is None:
            return
        result = event.result
        span.set_attributes(_step_attributes(result))
        if result.metadata.get("cancelled"):
            span.add_event("cancelled", {"flujo.feedback": result.feedback or ""})
        if not result.success and not result.metadata.get("paused"):
            span.set_status(Status(StatusCode.ERROR, result.feedback or "step failed"))
        span.end()

    def _finish_run(self, event: RunFinished) -> None:
        result = event.result
        run = self._runs.pop(result.run_id, None)
        if run is None:
            return
        for path, span in sorted(run.steps.items(), key=lambda item: -len(item[0])):
            span.add_event("cancelled", {"flujo.step.path": "/".join(path)})
            span.set_status(Status(StatusCode.ERROR, "the run stopped before this step ended"))
            span.end()
        root = run.root
        root.set_attributes(
            {
                "flujo.run.status": result.status.value,
                "flujo.run.cost_usd": result.total_cost_usd,
                "flujo.run.tokens": result.total_tokens,
            }
        )
        if result.status is RunStatus.BUDGET_EXCEEDED:
            root.add_event("budget_exceeded", {"flujo.run.cost_usd": result.total_cost_usd})
        if result.status is RunStatus.CANCELLED:
            root.add_event("cancelled")
        if result.status in (RunStatus.FAILED, RunStatus.BUDGET_EXCEEDED, RunStatus.CANCELLED):
            root.set_status(Status(StatusCode.ERROR, result.status.value))
        root.end()
