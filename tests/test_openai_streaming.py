"""ChatAgent(stream=True): typed chunks, deltas to the emitter, partial usage on cancel."""

from __future__ import annotations

import math
from functools import partial

import trio

from flujo_trio import Runner, Step
from flujo_trio.agent_api import Emitter, UsageMeter
from flujo_trio.events import AgentDelta
from tests.fake_openai import Reply, chunk, completion, usage
from tests.openai_support import *  # noqa: F403 (fixtures)
from tests.openai_support import PRICING, Gate


def forecast(city: str) -> str:
    """The weather forecast for a city."""
    return f"sunny in {city}"


async def test_streaming_assembles_text_and_usage(server, agent):
    server.replies.append(Reply(chunks=[chunk("Hel"), chunk("lo"), chunk(usage=usage(7, 2))]))
    result = await Runner(Step("chat", agent(stream=True))).run("hi")
    assert result.output == "Hello" and result.total_tokens == 9
    assert server.requests[0]["stream"] is True
    assert server.requests[0]["stream_options"] == {"include_usage": True}


async def test_deltas_reach_the_emitter_in_order(server, agent, emitter, events):
    pieces = ["Once", " upon", " a", " time"]
    server.replies.append(Reply(chunks=[*(chunk(p) for p in pieces), chunk(usage=usage(5, 4))]))
    meter = UsageMeter()
    result = await agent(stream=True).run("story", emit=emitter, meter=meter)
    assert events == [AgentDelta("run-1", "chat", piece) for piece in pieces]
    assert result.output == "Once upon a time"
    # The final chunk's exact count: the running estimate is topped up to it, never past.
    assert result.usage == PRICING.usage(5, 4) and meter.reported


def emitter_until(count: int, arrived: trio.Event) -> Emitter:
    """An emitter that signals once ``count`` deltas went through (usage is reported
    before each delta is emitted, so the meter is up to date by then)."""
    seen: list[str] = []

    async def send(event) -> None:
        if isinstance(event, AgentDelta):
            seen.append(event.text)
        if len(seen) == count and not arrived.is_set():
            arrived.set()

    return Emitter(send, "run-1", "chat")


async def test_cancel_mid_stream_closes_the_connection(server, agent):
    server.replies.append(Reply(chunks=[chunk("partial")], hang_after_chunks=True))
    runner = Runner(Step("chat", agent(stream=True, max_tokens=100)))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(runner.run, "tell me a long story")
        await server.first_chunk_sent.wait()
        nursery.cancel_scope.cancel(reason="the caller gives up mid-stream")
    with trio.fail_after(10):  # a guard, not a timing: the disconnect is immediate
        await server.disconnected.wait()
    assert server.disconnects == 1


async def test_a_cancelled_stream_reports_its_real_partial_usage(server, agent):
    pieces = ["The first part ", "of a very long story"]
    server.replies.append(Reply(chunks=[chunk(p) for p in pieces], hang_after_chunks=True))
    chat = agent(stream=True, max_tokens=1000)
    meter, arrived = UsageMeter(), trio.Event()
    call = partial(chat.run, "tell me a long story", emit=emitter_until(2, arrived), meter=meter)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(call)
        await arrived.wait()
        nursery.cancel_scope.cancel(reason="the caller gives up mid-stream")
    prompt = chat._prompt_guess(chat.messages("tell me a long story"))
    completion_tokens = sum(math.ceil(len(p) / 4) for p in pieces)
    # Not the reservation (1000 completion tokens), not zero: what the stream used.
    assert meter.reported and meter.used == PRICING.usage(prompt, completion_tokens)
    with trio.fail_after(10):  # a guard: the connection closes at once
        await server.disconnected.wait()


async def test_a_cancelled_later_request_settles_what_it_streamed(server, agent):
    lima = {
        "index": 0,
        "id": "c1",
        "function": {"name": "forecast", "arguments": '{"city": "Lima"}'},
    }
    server.replies += [
        Reply(chunks=[chunk(tool_call=lima), chunk(usage=usage(30, 5))]),
        Reply(chunks=[chunk("Sunny"), chunk(" all week")], hang_after_chunks=True),
    ]
    chat = agent(tools=[forecast], stream=True, max_tokens=500)
    gate, arrived = Gate(), trio.Event()
    meter = UsageMeter(gate)
    call = partial(chat.run, "weather?", emit=emitter_until(2, arrived), meter=meter)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(call)
        await arrived.wait()
        nursery.cancel_scope.cancel(reason="the caller gives up mid-stream")
    [(reserved, settled, estimated)] = gate.settled
    assert estimated is False  # it reported as it went: not charged its reservation
    messages = server.requests[1]["messages"]
    prompt = chat._prompt_guess(messages)
    assert settled == PRICING.usage(prompt, 2 + 3)  # "Sunny", " all week"
    assert settled.tokens < reserved.tokens
    # The first request reported its prompt guess as it started; the exact count (30 + 5)
    # came in lower, and reports only add, so the guess stands (an over- never an
    # under-charge).
    guess = chat._prompt_guess(server.requests[0]["messages"])
    assert guess > 35 and meter.used == PRICING.usage(guess, 0)


async def test_a_server_that_never_reports_usage_keeps_the_estimate(server, agent):
    server.replies.append(Reply(chunks=[chunk("abcdefgh")]))
    result = await agent(stream=True, max_tokens=10).run("hi")
    prompt = agent()._prompt_guess(agent().messages("hi"))
    assert result.usage == PRICING.usage(prompt, 2)


async def test_streaming_is_off_by_default(server, agent):
    server.replies.append(Reply(body=completion("whole")))
    assert (await agent().run("hi")).output == "whole"
    assert "stream" not in server.requests[0]
