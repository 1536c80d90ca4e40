"""Hostile endpoints and awkward uses against the model adapters.

Every test talks to a real HTTP server on 127.0.0.1 (``tests/hostile_openai.py``
sends raw bytes: malformed bodies, streams cut mid-event, connections closed early).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio

from flujo_trio import AgentCallError, Runner, Step, UsageLimitExceededError, UsageLimits
from tests.fake_openai import Reply, chunk, completion, tool_calls, usage
from tests.hostile_openai import HostileServer, Scripted, response, sse_head
from tests.openai_support import *  # noqa: F403 (fixtures)
from tests.openai_support import PRICING, chat_agents, sdk_client, started


@pytest.fixture
async def hostile(nursery):
    return await started(nursery, HostileServer())


@pytest.fixture
async def hostile_client(hostile):
    async with sdk_client(hostile) as client:
        yield client


@pytest.fixture
def chat(hostile_client):
    return chat_agents(hostile_client)


def body(data: Any) -> bytes:
    return json.dumps(data).encode()


def with_usage(counts: Any, text: str = "hi") -> bytes:
    reply = completion(text)
    if counts is None:
        del reply["usage"]
    else:
        reply["usage"] = counts
    return body(reply)


# -- malformed replies are AgentCallErrors (retryable), never raw parser errors ----------


MALFORMED = {
    "truncated JSON": response(200, b'{"id": "x", "choices": ['),
    "a JSON list": response(200, b"[1, 2]"),
    "an HTML page": response(200, b"<html>proxy error</html>", content_type="text/html"),
    "a choice without a message": response(
        200, body({**completion("x"), "choices": [{"index": 0, "finish_reason": "stop"}]})
    ),
    "a tool call without a function": response(
        200,
        body(
            {
                **completion(""),
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "tool_calls",
                        "message": {
                            "role": "assistant",
                            "tool_calls": [{"id": "c1", "type": "function", "function": None}],
                        },
                    }
                ],
            }
        ),
    ),
}


@pytest.mark.parametrize("reply", MALFORMED.values(), ids=MALFORMED.keys())
async def test_a_malformed_reply_is_a_retryable_agent_call_error(hostile, chat, reply):
    hostile.replies.append(Scripted(reply))
    with pytest.raises(AgentCallError, match=r"malformed reply.*chat-completions API") as caught:
        await chat(max_tokens=10).run("q")
    assert caught.value.retryable


async def test_a_malformed_reply_is_retried_by_the_step(hostile, chat):
    hostile.replies += [
        Scripted(response(200, b"{not json")),
        Scripted(response(200, body(completion("fine")))),
    ]
    result = await Runner(Step("chat", chat(), max_retries=1)).run("q")
    assert result.output == "fine" and result.step_history[0].attempts == 2


STREAM_BREAKS = {
    "cut mid-event": sse_head() + chunk("hello ") + b'data: {"id": "chatcmp',
    "an event that is not JSON": sse_head() + chunk("hello ") + b"data: {nope}\n\n",
    "an event that is not a chunk": sse_head() + chunk("hello ") + b'data: {"choices": 3}\n\n',
    "an error event": sse_head() + chunk("hello ") + b'data: {"error": {"message": "boom"}}\n\n',
    "a chunked body cut mid-chunk": (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
        b"transfer-encoding: chunked\r\n\r\n"
        + f"{len(chunk('hello ')):x}\r\n".encode()
        + chunk("hello ")
        + b"\r\nff\r\nabc"
    ),
}


@pytest.mark.parametrize("reply", STREAM_BREAKS.values(), ids=STREAM_BREAKS.keys())
async def test_a_broken_stream_fails_retryably_and_is_charged_what_it_streamed(
    hostile, chat, reply
):
    hostile.replies.append(Scripted(reply))
    agent = chat(stream=True)
    result = await Runner(Step("chat", agent, max_retries=0)).run("q")
    assert not result.success
    assert "Agent failed after 1 attempt(s)" in (result.step_history[0].feedback or "")
    # The prompt estimate and the streamed "hello " were reported, and stay charged.
    prompt = agent._prompt_guess(agent.messages("q"))
    assert result.total_tokens == prompt + 2
    assert result.total_cost_usd == pytest.approx(PRICING.usage(prompt, 2).cost_usd)


# -- token counts the provider did not (validly) report are estimated, never zero --------


@pytest.mark.parametrize(
    "counts",
    [
        None,
        {"prompt_tokens": -50, "completion_tokens": -5, "total_tokens": -55},
        {"prompt_tokens": "lots", "completion_tokens": 2.5, "total_tokens": 1},
        {"prompt_tokens": None, "completion_tokens": True, "total_tokens": 1},
    ],
    ids=["missing", "negative", "text and float", "null and bool"],
)
async def test_unusable_token_counts_are_estimated(hostile, chat, counts):
    hostile.replies.append(Scripted(response(200, with_usage(counts, "hello there friend"))))
    agent = chat()
    result = await Runner(Step("chat", agent)).run("q")
    assert result.success and result.output == "hello there friend"
    prompt = agent._prompt_guess(agent.messages("q"))
    completion_tokens = 5  # ceil(18 characters / 4)
    assert result.total_tokens == prompt + completion_tokens
    assert result.total_cost_usd == pytest.approx(PRICING.usage(prompt, completion_tokens).cost_usd)


async def test_non_finite_token_counts_are_estimated(hostile, chat):
    reply = with_usage({"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2})
    reply = reply.replace(b'"prompt_tokens": 1', b'"prompt_tokens": NaN')
    reply = reply.replace(b'"completion_tokens": 1', b'"completion_tokens": Infinity')
    hostile.replies.append(Scripted(response(200, reply)))
    agent = chat()
    result = await Runner(Step("chat", agent)).run("q")
    assert result.success
    assert result.total_tokens == agent._prompt_guess(agent.messages("q")) + 1


async def test_a_streamed_negative_usage_keeps_the_running_estimate(hostile, chat):
    hostile.replies.append(
        Scripted(sse_head() + chunk("hello ") + chunk(usage=usage(-5, -5)) + b"data: [DONE]\n\n")
    )
    agent = chat(stream=True)
    result = await Runner(Step("chat", agent)).run("q")
    assert result.success and result.output == "hello "
    assert result.total_tokens == agent._prompt_guess(agent.messages("q")) + 2


async def test_tool_arguments_sent_as_a_json_object_are_accepted(hostile, chat):
    seen: list[tuple[int, int]] = []

    def add(a: int, b: int) -> int:
        seen.append((a, b))
        return a + b

    asked = body(tool_calls(("c1", "add", {"a": 1, "b": 2})))
    asked = asked.replace(b'"{\\"a\\": 1, \\"b\\": 2}"', b'{"a": 1, "b": 2}')
    assert b'"arguments": {"a": 1' in asked
    hostile.replies += [
        Scripted(response(200, asked)),
        Scripted(response(200, body(completion("3")))),
    ]
    result = await Runner(Step("chat", chat(tools=[add]))).run("q")
    assert result.success and result.output == "3" and seen == [(1, 2)]
    assert result.total_tokens == 30  # both replies' usage


async def test_a_tool_name_repeated_in_every_stream_delta_is_one_name(hostile, chat):
    # Some servers send the whole name in each delta of a call: it became "addadd".
    seen: list[tuple[int, int]] = []

    def add(a: int, b: int) -> int:
        seen.append((a, b))
        return a + b

    def piece(arguments: str) -> bytes:
        function = {"name": "add", "arguments": arguments}
        return chunk(tool_call={"index": 0, "id": "c1", "type": "function", "function": function})

    asked = sse_head() + piece('{"a": 1, ') + piece('"b": 2}') + b"data: [DONE]\n\n"
    answered = sse_head() + chunk("3") + chunk(usage=usage(10, 1)) + b"data: [DONE]\n\n"
    hostile.replies += [Scripted(asked), Scripted(answered)]
    result = await Runner(Step("chat", chat(tools=[add], stream=True))).run("q")
    assert result.success and result.output == "3" and seen == [(1, 2)]


# -- PydanticAIAgent: a run that fails any other way still reports what it used ----------


def _tool_then_raise() -> Any:
    from pydantic_ai import Agent
    from pydantic_ai.messages import ModelResponse, ToolCallPart
    from pydantic_ai.models.function import FunctionModel
    from pydantic_ai.usage import RequestUsage

    def model(messages: Any, info: Any) -> ModelResponse:
        return ModelResponse(
            parts=[ToolCallPart("explode", {})],
            usage=RequestUsage(input_tokens=100, output_tokens=50),
        )

    inner = Agent(FunctionModel(model))

    @inner.tool_plain
    def explode() -> str:
        raise RuntimeError("tool exploded")

    return inner


async def test_pydantic_ai_run_failing_in_a_tool_is_charged_what_it_used():
    from flujo_trio.agents import Pricing
    from flujo_trio.agents.pydantic_ai import PydanticAIAgent

    agent = PydanticAIAgent(_tool_then_raise(), pricing=Pricing(1, 1))
    with pytest.raises(AgentCallError, match="RuntimeError: tool exploded") as caught:
        await agent.run("x")
    assert caught.value.retryable and caught.value.usage.tokens == 150
    result = await Runner(Step("s", agent, max_retries=1)).run("x")
    assert not result.success and result.step_history[0].attempts == 2
    assert result.total_tokens == 300  # both attempts' model requests were billed


async def test_pydantic_ai_connection_error_is_a_retryable_agent_call_error(
    hostile, hostile_client
):
    from pydantic_ai import Agent
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    from flujo_trio.agents.pydantic_ai import PydanticAIAgent

    hostile.replies.append(Scripted(b""))  # the connection closes without a reply
    model = OpenAIChatModel("gpt-4o", provider=OpenAIProvider(openai_client=hostile_client))
    with pytest.raises(AgentCallError, match="ModelConnectionError") as caught:
        await PydanticAIAgent(Agent(model)).run("x")
    assert caught.value.retryable


# -- tools --------------------------------------------------------------------------------


async def test_a_hanging_sync_tool_does_not_hold_the_step_past_its_timeout(
    server, agent, mock_clock
):
    import threading

    mock_clock.autojump_threshold = 0.05

    release = threading.Event()

    def wait_for_io() -> str:
        release.wait(10)  # a blocking call without a timeout of its own
        return "late"

    server.replies.append(Reply(body=tool_calls(("c1", "wait_for_io", {}))))
    step = Step("chat", agent(tools=[wait_for_io]), timeout_s=2, max_retries=0)
    try:
        with trio.fail_after(5):
            result = await Runner(step).run("q")
    finally:
        release.set()
    assert not result.success
    assert "timed out" in (result.step_history[0].feedback or "")
    assert result.total_tokens == 15  # the tool-asking reply was billed


# -- a stream without a single chunk is not an empty answer -------------------------------


NO_CHUNKS = {
    "a JSON completion (stream ignored)": response(200, body(completion("hi there"))),
    "an error sent with 200": response(200, b'{"error": {"message": "quota exceeded"}}'),
    "an empty event stream": sse_head(),
    "only [DONE]": sse_head() + b"data: [DONE]\n\n",
}


@pytest.mark.parametrize("reply", NO_CHUNKS.values(), ids=NO_CHUNKS.keys())
async def test_a_stream_without_chunks_is_malformed_not_an_empty_answer(hostile, chat, reply):
    hostile.replies.append(Scripted(reply))
    result = await Runner(Step("chat", chat(stream=True), max_retries=0)).run("q")
    assert not result.success and result.output is None
    assert "no chat-completion chunk" in (result.step_history[0].feedback or "")


# -- budgets across tool rounds -----------------------------------------------------------


async def test_a_later_request_reserves_at_least_what_the_provider_billed_before(server, agent):
    """A provider whose tokenizer counts far more than the estimate (code, numbers,
    other scripts): the next request of the loop holds the whole earlier prompt, so its
    bound is at least what that prompt was billed, and the budget is never overshot."""

    def add(a: int) -> int:
        return a

    server.replies += [
        Reply(body=tool_calls(("c1", "add", {"a": 1}), prompt_tokens=400, completion_tokens=50)),
        Reply(body=completion("done", 400, 50)),
    ]
    chat = agent(tools=[add], max_tokens=50)
    assert chat.reservation("q").tokens < 250  # the estimate of the first prompt is low
    step = Step("chat", chat, reserve=chat.reservation)
    with pytest.raises(UsageLimitExceededError, match="does not fit") as info:
        await Runner(step, limits=UsageLimits(total_tokens_limit=700)).run("q")
    assert len(server.requests) == 1  # the second request could not fit: never sent
    assert info.value.result.total_tokens == 450
