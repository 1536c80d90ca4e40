"""PydanticAIAgent with pydantic-ai's own TestModel and FunctionModel."""

from __future__ import annotations

import asyncio

import pytest
import trio
from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelRequest, ModelResponse, TextPart, UserPromptPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel
from pydantic_ai.usage import RequestUsage

from flujo_trio import AgentCallError, ParallelStep, Runner, Step
from flujo_trio.agents import Pricing
from flujo_trio.agents.pydantic_ai import Prompt, PydanticAIAgent


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
