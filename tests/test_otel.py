"""OpenTelemetry spans, checked with the SDK's in-memory exporter."""

from __future__ import annotations

import pytest
import trio
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from flujo_trio import (
    AgentResult,
    MemoryCache,
    ParallelStep,
    Runner,
    Step,
    Usage,
    UsageLimitExceededError,
    UsageLimits,
)
from flujo_trio.telemetry.otel import OpenTelemetryHook
from flujo_trio.testing import StubAgent


@pytest.fixture
def exporter():
    return InMemorySpanExporter()


@pytest.fixture
def hook(exporter):
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return OpenTelemetryHook(tracer_provider=provider)


def by_name(exporter):
    return {span.name: span for span in exporter.get_finished_spans()}


async def test_spans_nest_as_steps_nest_with_usage_attributes(exporter, hook):
    inner = Step("summarize", StubAgent([AgentResult("s", Usage(0.25, 40))]))
    fallback = Step("backup", StubAgent([AgentResult("b", Usage(0.1, 5))]))
    flaky = Step("flaky", StubAgent([RuntimeError("down")]), max_retries=0, fallback=fallback)
    pipeline = ParallelStep("fanout", {"branch_a": inner}) >> flaky
    await Runner(pipeline, hooks=[hook]).run("x")
    spans = by_name(exporter)
    run = spans["flujo.run fanout"]
    fan, branch, step = (
        spans["flujo.step fanout"],
        spans["flujo.step branch_a"],
        spans["flujo.step summarize"],
    )
    assert fan.parent.span_id == run.context.span_id
    assert branch.parent.span_id == fan.context.span_id
    assert step.parent.span_id == branch.context.span_id
    assert step.attributes["flujo.step.cost_usd"] == 0.25
    assert step.attributes["flujo.step.tokens"] == 40
    assert step.attributes["flujo.step.attempts"] == 1
    assert spans["flujo.step flaky"].attributes["flujo.step.fallback_triggered"] is True
    assert run.attributes["flujo.run.status"] == "completed"
    assert run.attributes["flujo.run.cost_usd"] == pytest.approx(0.35)


async def test_cache_hits_and_failures_are_visible(exporter, hook):
    cache = MemoryCache()
    step = Step("cached", StubAgent(["once"]), cache=cache)
    await Runner(step, hooks=[hook]).run("q")
    await Runner(step, hooks=[hook]).run("q")
    cached = [s for s in exporter.get_finished_spans() if s.name == "flujo.step cached"]
    assert [s.attributes["flujo.step.cache_hit"] for s in cached] == [False, True]
    exporter.clear()
    await Runner(Step("bad", StubAgent([ValueError("no")]), max_retries=0), hooks=[hook]).run("q")
    bad = by_name(exporter)["flujo.step bad"]
    assert bad.status.status_code is StatusCode.ERROR and "no" in bad.status.description


async def test_budget_breach_and_cancellation_are_span_events(exporter, hook, autojump_clock):
    async def slow(data):
        await trio.sleep(10)
        return AgentResult(data, Usage(1.0))

    async def fast_agent(data):
        await trio.sleep(1)  # "slow" has started by then; the breach cancels it mid-call
        return AgentResult("f", Usage(2.0))

    fast = Step("fast", fast_agent)
    step = ParallelStep("fan", {"a": fast, "b": Step("slow", slow)})
    with pytest.raises(UsageLimitExceededError):
        await Runner(step, hooks=[hook], limits=UsageLimits(total_cost_usd_limit=1)).run("x")
    spans = by_name(exporter)
    run = spans["flujo.run fan"]
    assert [e.name for e in run.events] == ["budget_exceeded"]
    assert run.status.status_code is StatusCode.ERROR
    assert "cancelled" in [e.name for e in spans["flujo.step slow"].events]

    exporter.clear()
    with trio.move_on_after(1):
        await Runner(Step("slow", slow), hooks=[hook]).run("x")
    spans = by_name(exporter)
    assert "cancelled" in [e.name for e in spans["flujo.run slow"].events]
    assert spans["flujo.step slow"].status.status_code is StatusCode.ERROR


def test_importing_flujo_trio_does_not_import_opentelemetry():
    import subprocess
    import sys

    code = "import sys, flujo_trio; print('opentelemetry' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
