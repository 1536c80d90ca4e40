"""The governance workloads on pydantic-ai's own ``UsageLimits``, offline.

Every model is pydantic-ai's ``FunctionModel``: a function that plays the plan of
:mod:`benchmarks.governance` (the same seeds, so the same per-call usage and the
same relative latencies), sleeps each call's latency scaled to milliseconds on
asyncio's real clock, and returns the call's tokens as the response's usage. Nothing
leaves the process.

Delegation is pydantic-ai's documented pattern: a parent agent whose tool runs a
child agent with ``usage=ctx.usage`` (the child's usage counts in the parent's). Two
forms: the docs' (the child gets no ``usage_limits``: the parent's limits are checked
at the parent's next step) and the one pydantic-ai-harness#589 made the default for
sub-agents (the parent's ``usage_limits`` are forwarded, so every child request is
checked against the shared usage). The parent emits every delegation in one
response, and pydantic-ai runs the tool calls of one response concurrently.

What is counted, per run: calls made (model function invocations, planner
included), calls cancelled while in flight, real tokens (of the calls that
returned), what pydantic-ai reports (the ``RunUsage`` the caller passed in, read
after the run ended or raised), and the message.

Also here, because it needs pydantic-ai: flujo-trio running the same delegations as
``PydanticAIAgent`` steps (its adapter) under ``total_requests_limit``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import trio
from pydantic_ai import Agent, RunContext
from pydantic_ai.exceptions import UsageLimitExceeded
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.usage import RequestUsage, RunUsage, UsageLimits

from flujo_trio import AgentResult, MapStep, Runner, Step, Usage, UsageLimitExceededError
from flujo_trio import UsageLimits as FlujoLimits
from flujo_trio.agents.pydantic_ai import PydanticAIAgent

from . import budget_plans as plans
from . import governance as gov
from .budget_plans import Plan

UTIL_SCALE_S = 0.01
"""A virtual second of the plan is 10 ms here (calls of 5 to 15 ms)."""
DELEGATION_SCALE_S = 0.02
PLANNER_TOKENS = 1
"""What a parent's own request uses (a usage of zero would make FunctionModel estimate one)."""


@dataclass
class Tally:
    calls: int = 0
    """Every model call, the parent's included."""
    parent_calls: int = 0
    cancelled: int = 0
    tokens: int = 0
    per_item: dict[int, int] = field(default_factory=dict)
    calls_per_item: dict[int, int] = field(default_factory=dict)


def _returns(messages: list[ModelMessage]) -> int:
    return sum(
        1
        for message in messages
        if isinstance(message, ModelRequest)
        for part in message.parts
        if isinstance(part, ToolReturnPart)
    )


def _prompt(messages: list[ModelMessage]) -> str:
    for message in messages:
        if isinstance(message, ModelRequest):
            for part in message.parts:
                if isinstance(part, UserPromptPart) and isinstance(part.content, str):
                    return part.content
    raise ValueError("no user prompt")


async def _call(tally: Tally, item: int | None, latency_s: float, tokens: int) -> RequestUsage:
    tally.calls += 1
    if item is None:
        tally.parent_calls += 1
    else:
        tally.calls_per_item[item] = tally.calls_per_item.get(item, 0) + 1
    try:
        await asyncio.sleep(latency_s)
    except asyncio.CancelledError:
        tally.cancelled += 1
        raise
    tally.tokens += tokens
    if item is not None:
        tally.per_item[item] = tally.per_item.get(item, 0) + tokens
    return RequestUsage(input_tokens=tokens // 2, output_tokens=tokens - tokens // 2)


def child_agent(plan: Plan, tally: Tally, scale: float) -> Agent[None, str]:
    """Plays row ``int(prompt)`` of ``plan``: a tool call per request until the last."""

    async def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        row = plan[int(_prompt(messages))]
        done = _returns(messages)
        latency, tokens = row[done]
        usage = await _call(tally, int(_prompt(messages)), latency * scale, tokens)
        if done < len(row) - 1:
            return ModelResponse(parts=[ToolCallPart("next_step", {})], usage=usage)
        return ModelResponse(parts=[TextPart("done")], usage=usage)

    agent: Agent[None, str] = Agent(FunctionModel(model))

    @agent.tool_plain
    def next_step() -> str:
        """Do the next piece of the task."""
        return "ok"

    return agent


@dataclass
class Delegation:
    limits: UsageLimits | None
    """Forwarded to every child (harness#589), or None (the docs' pattern)."""
    soft: bool = False
    """Each child has a budget of its own (its own usage), and its limit error becomes
    the tool's answer instead of failing the parent."""
    concurrency: int | None = None
    usages: list[RunUsage] = field(default_factory=list)
    """The children's own usages (``soft``), read after the run."""


def parent_agent(
    rows: list[int],
    child: Agent[None, str],
    tally: Tally,
    planner: tuple[float, int],
    child_limits: Callable[[], UsageLimits | None],
) -> Agent[Delegation, str]:
    """One response delegating every row at once, then a final answer."""

    async def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        latency, tokens = planner
        usage = await _call(tally, None, latency, tokens)
        if _returns(messages) == 0:
            calls = [ToolCallPart("delegate", {"row": row}) for row in rows]
            return ModelResponse(parts=calls, usage=usage)
        return ModelResponse(parts=[TextPart("all done")], usage=usage)

    agent: Agent[Delegation, str] = Agent(FunctionModel(model), deps_type=Delegation)
    gates: dict[int, asyncio.Semaphore] = {}

    @agent.tool
    async def delegate(ctx: RunContext[Delegation], row: int) -> str:
        """Delegate one task to the child agent."""
        deps = ctx.deps
        if deps.concurrency is not None:
            gate = gates.setdefault(id(deps), asyncio.Semaphore(deps.concurrency))
            async with gate:
                return await _delegate(ctx, row)
        return await _delegate(ctx, row)

    async def _delegate(ctx: RunContext[Delegation], row: int) -> str:
        deps = ctx.deps
        limits = deps.limits if deps.limits is not None else child_limits()
        try:
            if deps.soft:  # a budget of its own, not shared
                own = RunUsage()
                deps.usages.append(own)
                result = await child.run(str(row), usage=own, usage_limits=limits)
            elif limits is None:
                result = await child.run(str(row), usage=ctx.usage)
            else:
                result = await child.run(str(row), usage=ctx.usage, usage_limits=limits)
        except UsageLimitExceeded as error:
            if not deps.soft:
                raise
            return f"budget exhausted: {error}"
        return result.output

    return agent


async def _run_parent(
    parent: Agent[Delegation, str], deps: Delegation, limits: UsageLimits
) -> tuple[str | None, RunUsage, float]:
    used = RunUsage()
    message = None
    start = time.perf_counter()
    try:
        await parent.run("go", usage_limits=limits, deps=deps, usage=used)
    except UsageLimitExceeded as error:
        message = str(error).split(". Consider")[0]
    return message, used, time.perf_counter() - start


# --- utilization: K delegations of 8 requests under a token limit ----------------------------


async def _utilization(k: int) -> dict[str, Any]:
    plan, limit = plans.utilization_plan(k)
    tally = Tally()
    child = child_agent(plan, tally, UTIL_SCALE_S)
    parent = parent_agent(list(range(k)), child, tally, (0.0, PLANNER_TOKENS), lambda: None)
    limits = UsageLimits(request_limit=None, total_tokens_limit=limit)
    message, used, seconds = await _run_parent(parent, Delegation(limits), limits)
    return {
        "calls": tally.calls - tally.parent_calls,
        "cancelled": tally.cancelled,
        "spent": tally.tokens,
        "reported": used.total_tokens,
        "denied": 0,
        "util_first_denial_pct": None,
        "util_end_pct": tally.tokens / limit * 100,
        "over_pct": max(0.0, (tally.tokens - limit) / limit * 100),
        "seconds": seconds,
        "message": message,
    }


def utilization(ks: tuple[int, ...]) -> dict[int, dict[str, Any]]:
    return {k: asyncio.run(_utilization(k)) for k in ks}


# --- the harness#696 case: 8 delegations against a request limit of 9 ------------------------


async def _delegation(trial: int, forward: bool) -> dict[str, Any]:
    plan = plans.delegation_plan(trial)
    tally = Tally()
    child = child_agent(plan, tally, DELEGATION_SCALE_S)
    planner = (plan[0][0][0] * DELEGATION_SCALE_S, plan[0][0][1])
    rows = list(range(1, plans.DELEGATIONS + 1))
    parent = parent_agent(rows, child, tally, planner, lambda: None)
    limits = UsageLimits(request_limit=plans.REQUEST_LIMIT)
    deps = Delegation(limits if forward else None)
    message, used, _ = await _run_parent(parent, deps, limits)
    return {
        "calls": tally.calls,
        "cancelled": tally.cancelled,
        "spent": tally.tokens,
        "reported": used.total_tokens,
        "requests_counted": used.requests,
        "message": message,
    }


async def _flujo_trio_adapter(trial: int) -> dict[str, Any]:
    """The same delegations as flujo-trio steps running the pydantic-ai child through
    ``PydanticAIAgent``, under ``total_requests_limit``."""
    plan = plans.delegation_plan(trial)
    tally = Tally()
    child = PydanticAIAgent(child_agent(plan, tally, DELEGATION_SCALE_S))

    async def planner(data: Any) -> AgentResult[Any]:
        latency, tokens = plan[0][0]
        tally.calls += 1
        await trio.sleep(latency * DELEGATION_SCALE_S)
        tally.tokens += tokens
        return AgentResult(
            [str(row) for row in range(1, plans.DELEGATIONS + 1)], Usage(tokens=tokens)
        )

    pipeline = Step("plan", planner) >> MapStep("delegate", Step("delegation", child))
    runner = Runner(pipeline, limits=FlujoLimits(total_requests_limit=plans.REQUEST_LIMIT))
    message = None
    try:
        result = await runner.run("task")
    except UsageLimitExceededError as error:
        message, result = str(error), error.result
    return {
        "calls": tally.calls,
        "cancelled": tally.cancelled,
        "spent": tally.tokens,
        "reported": result.total_tokens,
        "requests_counted": result.governor.requests if result.governor else None,
        "message": message,
    }


def delegation(trials: int = plans.DELEGATION_TRIALS) -> dict[str, Any]:
    docs = [asyncio.run(_delegation(t, False)) for t in range(trials)]
    forwarded = [asyncio.run(_delegation(t, True)) for t in range(trials)]
    adapter = [trio.run(_flujo_trio_adapter, t) for t in range(min(trials, 5))]
    return {
        "pydantic-ai, docs pattern (usage=ctx.usage)": gov.summarize_trials(docs),
        "pydantic-ai, limits forwarded (harness#589)": gov.summarize_trials(forwarded),
        "flujo-trio + PydanticAIAgent adapter": gov.summarize_trials(adapter),
    }


# --- per-item budgets ----------------------------------------------------------------------


async def _scoped(items: int) -> dict[str, Any]:
    plan = plans.scoped_plan(items)
    tally = Tally()
    child = child_agent(plan, tally, UTIL_SCALE_S)
    parent = parent_agent(list(range(items)), child, tally, (0.0, PLANNER_TOKENS), lambda: None)
    cap = UsageLimits(request_limit=None, total_tokens_limit=plans.SCOPED_ITEM_CAP)
    deps = Delegation(cap, soft=True, concurrency=plans.SCOPED_CONCURRENCY)
    message, _, seconds = await _run_parent(parent, deps, UsageLimits(request_limit=None))
    cut = {
        item
        for item, spent in tally.per_item.items()
        if plans.is_runaway(item) and spent > plans.SCOPED_ITEM_CAP
    }
    return {
        **gov.scoped_outcome(plan, tally.calls_per_item, tally.per_item, cut),
        "calls": sum(tally.calls_per_item.values()),
        "cancelled": tally.cancelled,
        "spent": sum(tally.per_item.values()),
        "reported": sum(usage.total_tokens for usage in deps.usages),
        "seconds": seconds,
        "outcome": message or "parent completed",
    }


def scoped(items: tuple[int, ...]) -> dict[int, dict[str, Any]]:
    return {n: asyncio.run(_scoped(n)) for n in items}


def run(
    ks: tuple[int, ...] = (10, 100, 1000), scoped_items: tuple[int, ...] = (100,)
) -> dict[str, Any]:
    return {
        "pydantic_ai_version": _version(),
        "utilization": {"pydantic-ai (limits forwarded)": utilization(ks)},
        "scoped": scoped(scoped_items),
        "delegation": delegation(),
    }


def _version() -> str:
    import importlib.metadata

    return importlib.metadata.version("pydantic-ai-slim")
