"""Pipelines the CLI tests run through the real console script."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import os
import sys
from typing import Any

import attrs
import pydantic
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

# A reservation that can never fit the run's token limit: every branch is denied.
denied = Runner(
    ParallelStep(
        "fanout",
        {f"branch_{c}": Step(f"work_{c}", spend(f"work_{c}"), reserve=Usage(0, 500)) for c in "ab"},
    ),
    limits=UsageLimits(total_tokens_limit=100),
)
# Two limits, for flags that must override only their own.
two_limits = Runner(costly, limits=UsageLimits(total_cost_usd_limit=10.0, total_tokens_limit=1000))


def twice(out, ctx):
    return len(ctx.step_outputs.get("edit", "").split(">")) >= 3


# Every container kind, no person: a loop of two iterations, a conditional, a
# parallel step with two-step branches and a map over three items.
containers = (
    LoopStep("refine", Step("edit", spend("edit")), exit_condition=twice)
    >> ConditionalStep(
        "route",
        condition=lambda data, ctx: "long",
        branches={"long": Step("summarize", spend("summarize"))},
    )
    >> ParallelStep(
        "reviews",
        {
            "style": Step("check_style", spend("check_style")) >> Step("fix", spend("fix")),
            "facts": Step("check_facts", spend("check_facts")),
        },
    )
    >> Step("split", lambda data: ["a", "b", "c"])
    >> MapStep("per_item", Step("classify", spend("classify")))
)


class Mood(enum.Enum):
    CALM = "calm"


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Verdict(pydantic.BaseModel):
    score: float
    tags: list[str]


@attrs.define
class Report:
    title: str
    mood: Mood
    corner: Point
    verdict: Any  # a pydantic model (cattrs needs Any to store one inside attrs)
    pair: tuple[int, str]
    labels: frozenset[str]
    when: datetime.datetime
    extra: Any = None


def build_report(data):
    return Report(
        title=str(data),
        mood=Mood.CALM,
        corner=Point(1, 2),
        verdict=Verdict(score=0.5, tags=["a"]),
        pair=(1, "one"),
        labels=frozenset({"y", "x"}),
        when=datetime.datetime(2026, 5, 1, 12, 0, tzinfo=datetime.UTC),
        extra={"anything": (Mood.CALM, {3, 1}), 7: "int key"},
    )


# Outputs of every kind the JSON output turns into plain JSON.
typed = Step("report", build_report)
