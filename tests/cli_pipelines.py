"""Pipelines the CLI tests run through the real console script."""

from __future__ import annotations

import os
import sys

import attrs
import trio

from flujo_trio import (
    AgentResult,
    HumanStep,
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
