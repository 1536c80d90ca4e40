"""ChatAgent against a real HTTP server on 127.0.0.1 (no test touches the internet)."""

from __future__ import annotations

import attrs
import openai
import pytest
import trio

from flujo_trio import (
    ConfigurationError,
    OutputParseError,
    ParallelStep,
    Runner,
    Step,
    Usage,
    UsageLimitExceededError,
    UsageLimits,
)
from flujo_trio.agents import Pricing
from flujo_trio.agents.openai import ChatAgent
from tests.fake_openai import FakeOpenAI, Reply, chunk, completion

PRICING = Pricing(input_per_mtok=2.0, output_per_mtok=8.0)


@pytest.fixture
async def server(nursery):
    fake = FakeOpenAI()
    await nursery.start(fake.serve)
    return fake


@pytest.fixture
async def client(server):
    client = openai.AsyncOpenAI(api_key="test-key", base_url=server.base_url, max_retries=0)
    yield client
    await client.close()


@pytest.fixture
def agent(client):
    def make(server, **options) -> ChatAgent:
        return ChatAgent("test-model", client=client, pricing=PRICING, **options)

    return make


@attrs.define
class Verdict:
    label: str
    score: int


async def test_completion_is_priced_and_prompt_is_built(server, agent):
    server.replies.append(Reply(body=completion("hello back", 1000, 500)))
    step = Step("chat", agent(server, system_prompt="Be brief.", max_tokens=50))
    result = await Runner(step).run("hello")
    assert result.output == "hello back"
    assert result.total_tokens == 1500
    assert result.total_cost_usd == pytest.approx(1000 * 2 / 1e6 + 500 * 8 / 1e6)
    [request] = server.requests
    assert request["model"] == "test-model" and request["max_tokens"] == 50
    assert request["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hello"},
    ]


async def test_context_prompt_and_structured_input(server, agent):
    server.replies.append(Reply(body=completion("ok")))
    chat = agent(server, context_prompt=lambda ctx: f"Run {ctx.run_id}.")
    await Runner(Step("chat", chat)).run({"question": "why"}, run_id="r-42")
    messages = server.requests[0]["messages"]
    assert messages[0] == {"role": "system", "content": "Run r-42."}
    assert messages[1] == {"role": "user", "content": '{"question": "why"}'}


async def test_server_errors_are_retried_with_feedback(server, agent):
    server.replies += [
        Reply(500, {"error": {"message": "overloaded"}}),
        Reply(body=completion("fine")),
    ]
    result = await Runner(Step("chat", agent(server), max_retries=1)).run("q")
    assert result.output == "fine" and result.step_history[0].attempts == 2
    retry_messages = server.requests[1]["messages"]
    assert retry_messages[-1]["role"] == "user"
    assert "Earlier attempts failed" in retry_messages[-1]["content"]
    assert "500" in retry_messages[-1]["content"]


@pytest.mark.parametrize("status", [400, 401, 403, 404])
async def test_client_errors_are_not_retried(server, status, agent):
    server.replies += [Reply(status, {"error": {"message": "nope"}}), Reply(body=completion("x"))]
    result = await Runner(Step("chat", agent(server), max_retries=3)).run("q")
    step = result.step_history[0]
    assert not step.success and step.attempts == 1 and len(server.requests) == 1
    assert str(status) in step.feedback


async def test_retry_after_is_honoured(server, mock_clock, agent):
    mock_clock.autojump_threshold = 0.05  # jump only when truly idle, not between packets
    server.replies += [
        Reply(429, {"error": {"message": "slow down"}}, headers=[("retry-after", "30")]),
        Reply(body=completion("after waiting")),
    ]
    start = trio.current_time()
    result = await Runner(Step("chat", agent(server), max_retries=1, timeout_s=60)).run("q")
    assert result.output == "after waiting"
    assert trio.current_time() - start >= 30


async def test_retry_after_longer_than_the_timeout_times_out(server, mock_clock, agent):
    mock_clock.autojump_threshold = 0.05
    server.replies += [
        Reply(429, {"error": {"message": "slow down"}}, headers=[("retry-after", "45")]),
        Reply(body=completion("second try")),
    ]
    start = trio.current_time()
    result = await Runner(Step("chat", agent(server), max_retries=1, timeout_s=10)).run("q")
    assert result.output == "second try"
    assert 10 <= trio.current_time() - start < 45


async def test_structured_output_is_parsed_and_bad_replies_are_retried(server, agent):
    server.replies += [
        Reply(body=completion('{"label": "spam"}', 10, 3)),  # missing "score"
        Reply(body=completion('{"label": "spam", "score": 3}', 12, 4)),
    ]
    result = await Runner(Step("classify", agent(server, output_type=Verdict))).run("buy now")
    assert result.output == Verdict("spam", 3)
    assert result.total_tokens == 29  # the bad reply's tokens count too
    schema = server.requests[0]["response_format"]["json_schema"]["schema"]
    assert schema["required"] == ["label", "score"]
    assert schema["properties"]["score"] == {"type": "integer"}
    feedback = server.requests[1]["messages"][-1]["content"]
    assert "score" in feedback


async def test_unparseable_reply_is_an_output_parse_error(server, agent):
    server.replies.append(Reply(body=completion("not json")))
    with pytest.raises(OutputParseError, match="not JSON") as info:
        await agent(server, output_type=Verdict).run("x")
    assert info.value.usage == PRICING.usage(10, 5)


async def test_streaming_assembles_text_and_usage(server, agent):
    server.replies.append(
        Reply(
            chunks=[
                chunk("Hel"),
                chunk("lo"),
                chunk(usage={"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}),
            ]
        )
    )
    result = await Runner(Step("chat", agent(server, stream=True))).run("hi")
    assert result.output == "Hello" and result.total_tokens == 9
    assert server.requests[0]["stream"] is True


async def test_cancel_mid_stream_closes_the_connection(server, agent):
    server.replies.append(Reply(chunks=[chunk("partial")], hang_after_chunks=True))
    runner = Runner(Step("chat", agent(server, stream=True, max_tokens=100)))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(runner.run, "tell me a long story")
        await server.first_chunk_sent.wait()
        nursery.cancel_scope.cancel(reason="the caller gives up mid-stream")
    with trio.fail_after(10):  # a guard, not a timing: the disconnect is immediate
        await server.disconnected.wait()
    assert server.disconnects == 1


async def test_reservation_bounds_the_call_and_holds_the_budget(server, agent):
    chat = agent(server, max_tokens=100, system_prompt="Summarize.")
    bound = chat.reservation("a short text")
    assert bound.tokens > 100 and bound.cost_usd > 0
    server.replies += [Reply(body=completion("s", 20, 30)) for _ in range(3)]
    branches = {f"b{i}": Step(f"s{i}", chat, reserve=chat.reservation) for i in range(3)}
    limit = UsageLimits(total_cost_usd_limit=bound.cost_usd * 2)
    # Two reservations fit; the third waits until a settlement frees room, then runs.
    result = await Runner(ParallelStep("fan", branches), limits=limit).run("a short text")
    assert result.success and len(server.requests) == 3
    assert result.governor is not None and result.governor.peak_waiting == 1
    assert result.total_cost_usd <= limit.total_cost_usd_limit
    # A budget no reservation can ever fit: nothing is sent at all.
    tight = UsageLimits(total_cost_usd_limit=bound.cost_usd / 2)
    with pytest.raises(UsageLimitExceededError, match="does not fit") as info:
        await Runner(ParallelStep("fan", branches), limits=tight).run("a short text")
    assert len(server.requests) == 3
    assert info.value.result.total_cost_usd == 0


def test_reservation_needs_max_tokens_and_client_needs_configuration(monkeypatch):
    with pytest.raises(ConfigurationError, match="max_tokens"):
        ChatAgent("m").reservation("x")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        _ = ChatAgent("m").client
    # prompt: "abc" estimated at 9 tokens + 32 of request overhead; completion: max_tokens
    bound = ChatAgent("m", pricing=Pricing(1, 1), max_tokens=10).reservation("abc")
    assert bound == Usage(cost_usd=51 / 1e6, tokens=51)
    assert Usage() + Usage(0.1, 2) + Usage(0.2, 3) == Usage(0.3, 5)
