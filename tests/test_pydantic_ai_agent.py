"""PydanticAIAgent with pydantic-ai's own TestModel and FunctionModel."""

from __future__ import annotations

import asyncio

import pytest
import trio
from genai_prices import calc_price
from pydantic_ai import Agent, ModelRetry, RunContext
from pydantic_ai.exceptions import ModelHTTPError
from pydantic_ai.messages import ModelMessage, ModelRequest, ModelResponse, TextPart, UserPromptPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel
from pydantic_ai.usage import RequestUsage, RunUsage

from flujo_trio import (
    AgentCallError,
    ConfigurationError,
    ParallelStep,
    Runner,
    Step,
    UsageLimitExceededError,
    UsageLimits,
)
from flujo_trio.agents import Pricing
from flujo_trio.agents.pydantic_ai import Prompt, PydanticAIAgent
from flujo_trio.backoff import Backoff


def prompts_of(messages: list[ModelMessage]) -> list[str]:
    return [
        part.content
        for message in messages
        if isinstance(message, ModelRequest)
        for part in message.parts
        if isinstance(part, UserPromptPart)
    ]


async def test_output_and_usage_are_mapped_and_priced():
    async def reply(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        usage = RequestUsage(input_tokens=100, output_tokens=20)
        return ModelResponse(parts=[TextPart("hi there")], usage=usage)

    agent = PydanticAIAgent(Agent(FunctionModel(reply)), pricing=Pricing(2.0, 10.0))
    result = await Runner(Step("chat", agent)).run("hello")
    assert result.output == "hi there"
    assert result.total_tokens == 120
    assert result.total_cost_usd == pytest.approx(100 * 2.0 / 1e6 + 20 * 10.0 / 1e6)


async def test_test_model_runs_unpriced():
    result = await Runner(Step("chat", PydanticAIAgent(Agent(TestModel())))).run("hello")
    assert result.success and result.total_cost_usd == 0 and result.total_tokens > 0


async def test_one_asyncio_loop_per_run_shared_by_all_calls():
    loops = []

    async def reply(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        loops.append(asyncio.get_running_loop())
        return ModelResponse(parts=[TextPart("ok")])

    agent = PydanticAIAgent(Agent(FunctionModel(reply)))
    pipeline = ParallelStep("fan", {f"b{i}": Step(f"s{i}", agent) for i in range(3)})
    result = await Runner(pipeline >> Step("after", agent)).run("x")
    assert result.success
    assert len(loops) == 4 and len({id(loop) for loop in loops}) == 1


async def test_retry_feedback_and_message_history_reach_the_model():
    seen: list[list[str]] = []

    def reply(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        seen.append(prompts_of(messages))
        if len(seen) == 1:
            raise ValueError("model exploded")
        return ModelResponse(parts=[TextPart("second time lucky")])

    agent = PydanticAIAgent(Agent(FunctionModel(reply)))
    history = [
        ModelRequest(parts=[UserPromptPart("earlier question")]),
        ModelResponse(parts=[TextPart("earlier answer")]),
    ]
    result = await Runner(Step("chat", agent, max_retries=1)).run(Prompt("now?", history))
    assert result.output == "second time lucky"
    assert seen[0] == ["earlier question", "now?"]
    assert seen[1][0] == "earlier question"
    assert "Earlier attempts failed" in seen[1][1] and "model exploded" in seen[1][1]


async def test_trio_cancel_cancels_the_call_in_flight():
    started, cancelled = trio.Event(), []

    async def slow(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        trio_token.run_sync_soon(started.set)
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        return ModelResponse(parts=[TextPart("never")])

    trio_token = trio.lowlevel.current_trio_token()
    agent = PydanticAIAgent(Agent(FunctionModel(function=slow)))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(Runner(Step("chat", agent)).run, "x")
        await started.wait()
        nursery.cancel_scope.cancel(reason="the caller gives up")
    assert cancelled == [True]


async def test_asyncio_side_cancellation_fails_the_step_without_retrying():
    calls = []

    async def cancelled_inside(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        calls.append(1)
        raise asyncio.CancelledError

    agent = PydanticAIAgent(Agent(FunctionModel(function=cancelled_inside)))
    result = await Runner(Step("chat", agent, max_retries=3)).run("x")
    step = result.step_history[0]
    assert not step.success and len(calls) == 1
    assert "asyncio side" in step.feedback
    with pytest.raises(AgentCallError):
        await agent.run("outside a runner")


async def test_works_outside_a_runner():
    agent = PydanticAIAgent(Agent(TestModel(custom_output_text="direct")))
    assert (await agent.run("x")).output == "direct"


def test_importing_flujo_trio_imports_no_adapter_sdk():
    import subprocess
    import sys

    code = (
        "import sys, flujo_trio, flujo_trio.agents; "
        "print([m for m in ('openai', 'pydantic_ai', 'trio_asyncio') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_works_when_anyio_asyncio_backend_was_imported_first():
    # anyio's pytest plugin (or any host) may import the backend before trio-asyncio
    # patches asyncio; its early `from asyncio import current_task` must not break the
    # bridge (on 3.12+ it failed with "no running event loop"). A fresh process pins
    # the import order, whatever pytest's plugins did in this one.
    import subprocess
    import sys

    code = (
        "import anyio._backends._asyncio, trio\n"
        "from pydantic_ai import Agent\n"
        "from pydantic_ai.models.test import TestModel\n"
        "from flujo_trio import Runner, Step\n"
        "from flujo_trio.agents.pydantic_ai import PydanticAIAgent\n"
        "agent = PydanticAIAgent(Agent(TestModel(custom_output_text='bridged')))\n"
        "result = trio.run(Runner(Step('chat', agent)).run, 'x')\n"
        "print(result.output, result.step_history[0].feedback)\n"
    )
    out = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "bridged None"


# -- deps, reservations, usage, retries --------------------------------------------------


async def test_deps_come_from_resources_or_a_callable_of_the_context():
    seen = []

    def reply(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        return ModelResponse(parts=[TextPart("ok")])

    inner = Agent(FunctionModel(reply), deps_type=str)

    @inner.instructions
    def remember(ctx: RunContext[str]) -> str:
        seen.append(ctx.deps)
        return f"deps: {ctx.deps}"

    await Runner(Step("a", PydanticAIAgent(inner)), resources="the db").run("x")
    from_context = PydanticAIAgent(inner, deps=lambda context: f"run {context.run_id}")
    await Runner(Step("b", from_context)).run("x", run_id="r-7")
    assert seen == ["the db", "run r-7"]


async def test_reservation_bounds_the_first_request_and_holds_the_budget():
    calls = []

    def reply(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        calls.append(1)
        return ModelResponse(
            parts=[TextPart("ok")], usage=RequestUsage(input_tokens=50, output_tokens=10)
        )

    agent = PydanticAIAgent(
        Agent(FunctionModel(reply), model_settings={"max_tokens": 100}),
        pricing=Pricing(2.0, 10.0),
        prompt_overhead=200,
    )
    bound = agent.reservation("hello there")
    assert bound.tokens == len("hello there") // 3 + 8 + 200 + 32 + 100
    assert bound == Pricing(2.0, 10.0).usage(bound.tokens - 100, 100)
    branches = {f"b{i}": Step(f"s{i}", agent, reserve=agent.reservation) for i in range(3)}
    limits = UsageLimits(total_cost_usd_limit=bound.cost_usd * 2)
    # Two reservations fit at once; the third waits for a settlement, then fits.
    result = await Runner(ParallelStep("fan", branches), limits=limits).run("hello there")
    assert len(calls) == 3 and result.governor.peak_waiting == 1
    assert result.total_cost_usd <= limits.total_cost_usd_limit
    tight = UsageLimits(total_cost_usd_limit=bound.cost_usd / 2)
    with pytest.raises(UsageLimitExceededError, match="does not fit") as info:
        await Runner(ParallelStep("fan", branches), limits=tight).run("hello there")
    assert len(calls) == 3  # no call could ever fit: none started
    assert info.value.result.total_cost_usd == 0
    with pytest.raises(ConfigurationError, match="max_tokens"):
        PydanticAIAgent(Agent(TestModel())).reservation("x")


async def test_usage_is_mapped_exactly_and_priced_by_genai_prices():
    def reply(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        usage = RequestUsage(input_tokens=1000, output_tokens=200, cache_read_tokens=600)
        return ModelResponse(parts=[TextPart("ok")], usage=usage)

    agent = PydanticAIAgent(Agent(FunctionModel(reply, model_name="gpt-4o-mini")))
    result = await Runner(Step("chat", agent)).run("x")
    expected = calc_price(
        RunUsage(input_tokens=1000, output_tokens=200, cache_read_tokens=600), "gpt-4o-mini"
    )
    assert result.total_tokens == 1200
    # Cache reads are priced as the provider prices them (cheaper than fresh input).
    assert result.total_cost_usd == pytest.approx(float(expected.total_price))
    assert result.total_cost_usd < float(
        calc_price(RunUsage(input_tokens=1000, output_tokens=200), "gpt-4o-mini").total_price
    )


async def test_output_retries_are_step_attempts_not_a_second_retry_layer():
    replies = iter(["not a number", "still not", "42"])
    calls = []

    def reply(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        calls.append(prompts_of(messages)[-1])
        return ModelResponse(
            parts=[TextPart(next(replies))], usage=RequestUsage(input_tokens=10, output_tokens=2)
        )

    inner = Agent(FunctionModel(reply))

    @inner.output_validator
    def digits_only(output: str) -> int:
        if not output.isdigit():
            raise ModelRetry("answer with digits only")
        return int(output)

    agent = PydanticAIAgent(inner, pricing=Pricing(1, 1))
    result = await Runner(Step("count", agent, max_retries=2)).run("how many?")
    step = result.step_history[0]
    assert result.output == 42 and step.attempts == 3
    assert len(calls) == 3  # one request per attempt, never 3 x (1 + pydantic-ai's retries)
    assert "Earlier attempts failed" in calls[1] and "answer with digits only" in calls[1]
    assert result.total_tokens == 36  # the failed attempts' tokens count too


async def test_http_errors_map_to_retryable_with_retry_after():
    def rate_limited(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        raise ModelHTTPError(429, "m", headers={"Retry-After": "7"})

    def forbidden(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        raise ModelHTTPError(403, "m")

    with pytest.raises(AgentCallError) as info:
        await PydanticAIAgent(Agent(FunctionModel(rate_limited))).run("x")
    assert info.value.retryable is True and info.value.retry_after == 7.0
    with pytest.raises(AgentCallError) as info:
        await PydanticAIAgent(Agent(FunctionModel(forbidden))).run("x")
    assert info.value.retryable is False
    assert PydanticAIAgent.default_backoff == Backoff()
