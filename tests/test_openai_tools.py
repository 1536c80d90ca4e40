"""ChatAgent's tool loop against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import pytest
import trio

from flujo_trio import ConfigurationError, Runner, Step
from flujo_trio.agent_api import RequestDenied, UsageMeter
from flujo_trio.agents.openai import ChatAgent
from flujo_trio.events import ToolCalled, ToolReturned
from tests.fake_openai import Reply, chunk, completion, tool_calls
from tests.openai_support import *  # noqa: F403 (fixtures)
from tests.openai_support import PRICING, Gate


def forecast(city: str, days: int = 1) -> str:
    """The weather forecast for a city.

    Args:
        city: the city's name, in English.
        days: how many days ahead.
    """
    return f"sunny in {city} for {days} day(s)"


async def convert(celsius: float) -> dict[str, float]:
    """Celsius to Fahrenheit.

    :param celsius: the temperature in degrees Celsius.
    """
    return {"fahrenheit": celsius * 9 / 5 + 32}


def test_tool_schemas_come_from_signatures_and_docstrings():
    chat = ChatAgent("m", tools=[forecast, convert])
    weather = chat.tools["forecast"].definition()["function"]
    assert weather["description"] == "The weather forecast for a city."
    assert weather["parameters"]["required"] == ["city"]
    city, days = (
        weather["parameters"]["properties"]["city"],
        weather["parameters"]["properties"]["days"],
    )
    assert city["type"] == "string" and city["description"] == "the city's name, in English."
    assert days["type"] == "integer" and days["description"] == "how many days ahead."
    celsius = chat.tools["convert"].definition()["function"]["parameters"]["properties"]["celsius"]
    assert celsius["type"] == "number"
    assert celsius["description"] == "the temperature in degrees Celsius."
    with pytest.raises(ConfigurationError, match="two tools are named"):
        ChatAgent("m", tools=[forecast, forecast])
    with pytest.raises(ConfigurationError, match="not a valid tool name"):
        ChatAgent("m", tools=[lambda city: None])

    def spread(*cities: str) -> None:
        pass

    with pytest.raises(ConfigurationError, match="cannot be passed by keyword"):
        ChatAgent("m", tools=[spread])


async def test_two_round_tool_loop_sums_usage_and_reports_events(server, agent, emitter, events):
    server.replies += [
        Reply(
            body=tool_calls(
                ("c1", "forecast", {"city": "Lima"}),
                ("c2", "convert", {"celsius": 20}),
                prompt_tokens=100,
                completion_tokens=10,
            )
        ),
        Reply(
            body=tool_calls(
                ("c3", "forecast", {"city": "Oslo", "days": 2}),
                prompt_tokens=150,
                completion_tokens=8,
            )
        ),
        Reply(body=completion("Lima is sunny, 68F; Oslo too.", 200, 12)),
    ]
    chat = agent(tools=[forecast, convert], max_tokens=50)
    meter = UsageMeter(Gate())
    result = await chat.run("weather?", emit=emitter, meter=meter)
    assert result.output == "Lima is sunny, 68F; Oslo too."
    # The honest sum of the three requests, each priced on its own.
    assert result.usage == PRICING.usage(100, 10) + PRICING.usage(150, 8) + PRICING.usage(200, 12)
    # The first request is the step's; the later two were admitted and settled on their own.
    assert meter.used == PRICING.usage(100, 10)
    assert meter.extra == PRICING.usage(150, 8) + PRICING.usage(200, 12)
    second, third = server.requests[1]["messages"], server.requests[2]["messages"]
    assert second[-3]["role"] == "assistant" and [c["id"] for c in second[-3]["tool_calls"]] == [
        "c1",
        "c2",
    ]
    assert second[-2:] == [
        {"role": "tool", "tool_call_id": "c1", "content": "sunny in Lima for 1 day(s)"},
        {"role": "tool", "tool_call_id": "c2", "content": '{"fahrenheit":68.0}'},
    ]
    assert third[-1] == {
        "role": "tool",
        "tool_call_id": "c3",
        "content": "sunny in Oslo for 2 day(s)",
    }
    assert [t["function"]["name"] for t in server.requests[0]["tools"]] == ["forecast", "convert"]
    called = [e for e in events if isinstance(e, ToolCalled)]
    returned = [e for e in events if isinstance(e, ToolReturned)]
    assert {(e.tool, e.call_id) for e in called} == {
        ("forecast", "c1"),
        ("convert", "c2"),
        ("forecast", "c3"),
    }
    assert ToolCalled("run-1", "chat", "forecast", {"city": "Lima"}, "c1") in called
    assert ToolReturned("run-1", "chat", "convert", {"fahrenheit": 68.0}, None, "c2") in returned


async def test_each_later_request_reserves_its_own_bound(server, agent):
    server.replies += [
        Reply(
            body=tool_calls(
                ("c1", "forecast", {"city": "Lima"}), prompt_tokens=100, completion_tokens=10
            )
        ),
        Reply(body=completion("done", 150, 5)),
    ]
    chat = agent(tools=[forecast], max_tokens=50)
    gate = Gate()
    await chat.run("weather?", meter=UsageMeter(gate))
    [reserved] = gate.admitted  # the first request is the step's reservation, never reserved twice
    first_bound = chat.reservation("weather?")
    # The later request's prompt holds the first exchange too: a larger bound, same cap.
    assert reserved.tokens > first_bound.tokens
    assert gate.settled == [(reserved, PRICING.usage(150, 5), False)]


async def test_a_denied_later_request_is_never_sent(server, agent):
    server.replies += [
        Reply(
            body=tool_calls(
                ("c1", "forecast", {"city": "Lima"}), prompt_tokens=100, completion_tokens=10
            )
        ),
        Reply(body=completion("never sent")),
    ]
    chat = agent(tools=[forecast], max_tokens=50)
    with pytest.raises(RequestDenied) as info:
        await chat.run("weather?", meter=UsageMeter(Gate(room=0.0)))
    assert info.value.retryable is False
    assert len(server.requests) == 1


async def test_tool_calls_run_concurrently(server, agent):
    both = {"a": trio.Event(), "b": trio.Event()}

    async def wait_for(me: str, other: str) -> str:
        both[me].set()
        await both[other].wait()  # sequential calls would never get past this
        return me

    async def first() -> str:
        return await wait_for("a", "b")

    async def second() -> str:
        return await wait_for("b", "a")

    server.replies += [
        Reply(body=tool_calls(("c1", "first", {}), ("c2", "second", {}))),
        Reply(body=completion("both returned")),
    ]
    with trio.fail_after(10):  # a guard against a hang, not a timing
        result = await agent(tools=[first, second]).run("go")
    assert result.output == "both returned"
    assert [m["content"] for m in server.requests[1]["messages"][-2:]] == ["a", "b"]


async def test_tool_errors_go_back_to_the_model(server, agent, emitter, events):
    def explode(reason: str) -> str:
        """Always fails."""
        raise ValueError(reason)

    server.replies += [
        Reply(
            body=tool_calls(
                ("c1", "explode", {"reason": "disk full"}),
                ("c2", "forecast", {"days": "many"}),
                ("c3", "teleport", {}),
                ("c4", "forecast", "{not json"),
            )
        ),
        Reply(body=completion("sorry")),
    ]
    result = await agent(tools=[explode, forecast]).run("go", emit=emitter)
    assert result.output == "sorry"
    contents = [m["content"] for m in server.requests[1]["messages"][-4:]]
    assert contents[0] == "Error: explode raised ValueError: disk full"
    assert contents[1].startswith("Error: invalid arguments for forecast: ")
    assert (
        "city: Field required" in contents[1]
        and "days: Input should be a valid integer" in contents[1]
    )
    assert (
        contents[2] == "Error: there is no tool named 'teleport'; the tools are: explode, forecast"
    )
    assert "Invalid JSON" in contents[3]
    errors = {e.call_id: e.error for e in events if isinstance(e, ToolReturned)}
    assert errors["c1"] == "explode raised ValueError: disk full"
    assert ToolCalled("run-1", "chat", "forecast", "{not json", "c4") in events


async def test_too_many_tool_rounds_fail_the_step_without_retrying(server, agent):
    server.replies += [
        Reply(
            body=tool_calls(
                (f"c{i}", "forecast", {"city": "Lima"}), prompt_tokens=10, completion_tokens=1
            )
        )
        for i in range(3)
    ]
    step = Step("chat", agent(tools=[forecast], max_tool_rounds=2), max_retries=3)
    result = await Runner(step).run("go")
    record = result.step_history[0]
    assert not record.success and record.attempts == 1 and len(server.requests) == 3
    assert "still asked for tools after 2 round(s) (max_tool_rounds=2)" in record.feedback
    assert result.total_tokens == 33  # every request counted, the failed call's too


async def test_streamed_tool_calls_are_assembled(server, agent):
    server.replies += [
        Reply(
            chunks=[
                chunk(
                    tool_call={
                        "index": 0,
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "forecast", "arguments": ""},
                    }
                ),
                chunk(tool_call={"index": 0, "function": {"arguments": '{"city": '}}),
                chunk(tool_call={"index": 0, "function": {"arguments": '"Lima"}'}}),
                chunk(usage={"prompt_tokens": 20, "completion_tokens": 6, "total_tokens": 26}),
            ]
        ),
        Reply(
            chunks=[
                chunk("Sunny."),
                chunk(usage={"prompt_tokens": 40, "completion_tokens": 2, "total_tokens": 42}),
            ]
        ),
    ]
    result = await agent(tools=[forecast], stream=True).run("weather?")
    assert result.output == "Sunny." and result.usage == PRICING.usage(20, 6) + PRICING.usage(40, 2)
    assert server.requests[1]["messages"][-1]["content"] == "sunny in Lima for 1 day(s)"


async def test_without_a_meter_the_loop_still_counts_every_request(server, agent):
    server.replies += [
        Reply(
            body=tool_calls(
                ("c1", "forecast", {"city": "Lima"}), prompt_tokens=7, completion_tokens=3
            )
        ),
        Reply(body=completion("ok", 11, 2)),
    ]
    result = await Runner(Step("chat", agent(tools=[forecast], pricing=None))).run("go")
    assert result.output == "ok" and result.total_tokens == 23
