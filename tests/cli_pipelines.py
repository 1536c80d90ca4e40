"""Pipelines the CLI tests run through the real console script."""

from __future__ import annotations

import json
import os
import sys

import attrs
import trio

from flujo_trio import (
    AgentResult,
    ConditionalStep,
    HumanStep,
    LoopStep,
    MapStep,
    ParallelStep,
    Runner,
    Step,
    Usage,
    UsageLimits,
)


@attrs.define
class Decision:
    approved: bool


def spend(name: str, cost: float = 0.01, tokens: int = 10, delay: float = 0.0):
    async def agent(data):
        await trio.sleep(delay)
        return AgentResult(f"{data}>{name}", Usage(cost, tokens))

    agent.__name__ = name
    return agent


async def broken(data):
    raise RuntimeError("the model is down")


async def hang_when_asked(data):
    """Hangs (after saying READY on stderr) when FLUJO_TEST_HANG is set, else finishes."""
    if os.environ.get("FLUJO_TEST_HANG"):
        print("READY", file=sys.stderr, flush=True)
        await trio.sleep_forever()
    return f"{data}>finished"


pipeline = Step("first", spend("first")) >> Step("second", spend("second"))
failing = Step("first", spend("first")) >> Step("broken", broken, max_retries=0)
costly = Step("big", spend("big", cost=2.0)) >> Step("after", spend("after"))
human = (
    Step("draft", spend("draft"))
    >> HumanStep("approve", input_type=Decision)
    >> Step("publish", spend("publish"))
)
fanout = ParallelStep(
    "fanout",
    {f"branch_{c}": Step(f"work_{c}", spend(f"work_{c}", delay=0.05)) for c in "abc"},
) >> Step("summary", spend("summary", delay=0.05))
limited = Runner(fanout, limits=UsageLimits(total_cost_usd_limit=1.0))
interruptible = Step("first", spend("first")) >> Step("slow", hang_when_asked)
not_a_pipeline = 42


async def describe(data):
    """The input's Python type and JSON form, so a test sees how the CLI parsed it."""
    return f"{type(data).__name__} {json.dumps(data)}"


echo = Step("describe", describe)
ask = HumanStep("ask", message="anything?") >> Step("describe", describe)
hostile_name = 'say "hi" <b>&amp;</b> #1; a|b'
everything = (
    Step("draft", spend("draft"), fallback=Step("cheap draft", spend("cheap")))
    >> LoopStep("refine", Step("edit", spend("edit")), exit_condition=lambda out, ctx: True)
    >> ConditionalStep(
        "route",
        condition=lambda data, ctx: "long",
        branches={"long": Step("summarize", spend("summarize"))},
        default=Step(hostile_name, spend("other")),
    )
    >> ParallelStep("reviews", {"style": Step("review_style", spend("style"))})
    >> MapStep("per_item", Step("classify", spend("classify")))
    >> HumanStep("approve")
)
