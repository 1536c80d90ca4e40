"""ChatAgent against a real HTTP server on 127.0.0.1 (no test touches the internet)."""

from __future__ import annotations

import dataclasses
import enum
import json
from typing import Any, Literal

import attrs
import pydantic
import pytest
import trio
from genai_prices import Usage as Tokens
from genai_prices import calc_price
from typing_extensions import TypedDict

from flujo_trio import (
    AgentCallError,
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
from flujo_trio.backoff import Backoff
from tests.fake_openai import Reply, completion
from tests.openai_support import *  # noqa: F403 (fixtures)
from tests.openai_support import PRICING


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
    # prompt: "abc" estimated at 9 tokens + 4 for the message + 32 of request overhead;
    # completion: max_tokens
    bound = ChatAgent("m", pricing=Pricing(1, 1), max_tokens=10).reservation("abc")
    assert bound == Usage(cost_usd=55 / 1e6, tokens=55)
    assert Usage() + Usage(0.1, 2) + Usage(0.2, 3) == Usage(0.3, 5)


# -- output types ---------------------------------------------------------------------


class Review(pydantic.BaseModel):
    verdict: Literal["accept", "reject"]
    reasons: list[str]
    score: int = 0


@dataclasses.dataclass
class Span:
    start: int
    end: int


class Point(TypedDict):
    x: float
    y: float


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


async def test_pydantic_model_output_has_a_strict_schema_and_is_validated(server, agent):
    server.replies += [
        Reply(body=completion('{"verdict": "maybe", "reasons": [], "score": 1}', 10, 3)),
        Reply(body=completion('{"verdict": "accept", "reasons": ["clear"], "score": 4}', 12, 4)),
    ]
    result = await Runner(Step("review", agent(output_type=Review))).run("a paper")
    assert result.output == Review(verdict="accept", reasons=["clear"], score=4)
    assert result.total_tokens == 29 and result.step_history[0].attempts == 2
    response_format = server.requests[0]["response_format"]["json_schema"]
    assert response_format["name"] == "Review" and response_format["strict"] is True
    schema = response_format["schema"]
    # Strict mode: closed objects, every property required (the default never applies).
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["verdict", "reasons", "score"]
    assert schema["properties"]["verdict"]["enum"] == ["accept", "reject"]
    feedback = server.requests[1]["messages"][-1]["content"]
    assert "verdict" in feedback and "'accept' or 'reject'" in feedback


async def test_dataclass_output(server, agent):
    server.replies.append(Reply(body=completion('{"start": 3, "end": 9}')))
    result = await agent(output_type=Span).run("find it")
    assert result.output == Span(3, 9)
    schema = server.requests[0]["response_format"]["json_schema"]["schema"]
    assert schema["required"] == ["start", "end"]


async def test_tuple_output_has_one_schema_per_position(server, agent):
    server.replies += [Reply(body=completion('{"response": [1, "x"]}'))]
    result = await agent(output_type=tuple[int, str]).run("pair")
    assert result.output == (1, "x")
    json_schema = server.requests[0]["response_format"]["json_schema"]
    # Not an object at the root: asked for as {"response": ...}; prefixItems is outside
    # strict mode's subset, so the schema goes non-strict rather than being refused.
    assert json_schema["strict"] is False
    pair = json_schema["schema"]["properties"]["response"]
    assert pair["prefixItems"] == [{"type": "integer"}, {"type": "string"}]
    assert pair["minItems"] == pair["maxItems"] == 2


async def test_tuple_reply_in_the_wrong_order_is_a_parse_error(server, agent):
    server.replies.append(Reply(body=completion('{"response": ["x", 1]}')))
    with pytest.raises(OutputParseError, match=r"response\.0|0: Input should be a valid integer"):
        await agent(output_type=tuple[int, str]).run("pair")


@pytest.mark.parametrize(
    ("output_type", "reply", "expected"),
    [
        (Point, '{"x": 1, "y": 2.5}', {"x": 1.0, "y": 2.5}),
        (Colour, '{"response": "blue"}', Colour.BLUE),
        (Literal["yes", "no"], '{"response": "no"}', "no"),
        (int | list[int], '{"response": [1, 2]}', [1, 2]),
        (int, '{"response": 7}', 7),
        (list[Span], '{"response": [{"start": 0, "end": 1}]}', [Span(0, 1)]),
    ],
)
async def test_other_output_types(server, agent, output_type, reply, expected):
    server.replies.append(Reply(body=completion(reply)))
    assert (await agent(output_type=output_type).run("q")).output == expected


async def test_str_output_is_plain_text(server, agent):
    server.replies.append(Reply(body=completion("just text")))
    assert (await agent(output_type=str).run("q")).output == "just text"
    assert "response_format" not in server.requests[0]


@attrs.define
class Tagged:
    label: str
    extra: Any


async def test_attrs_output_is_strict_and_never_resolves_classes_named_in_the_reply(server, agent):
    tagged = {"label": "x", "extra": {"__flujo_type__": "enum", "class": "os.Mode", "value": 1}}
    server.replies += [
        Reply(body=completion('{"label": "x", "extra": null, "surprise": 1}')),
        Reply(body=completion('{"label": 3, "extra": null}')),
        Reply(body=completion(json.dumps(tagged))),
    ]
    chat = agent(output_type=Tagged)
    with pytest.raises(OutputParseError, match="extra fields found"):
        await chat.run("q")
    with pytest.raises(OutputParseError, match=r"expected str @ reply\.label"):
        await chat.run("q")
    # Data stays data: the tag the state converter would resolve is just a dict here.
    assert (await chat.run("q")).output == Tagged("x", tagged["extra"])


def test_types_without_a_schema_fail_at_construction():
    class Opaque:
        pass

    with pytest.raises(ConfigurationError, match="no JSON schema"):
        ChatAgent("m", output_type=Opaque)


# -- provider errors and backoff ------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([("retry-after", "30")], 30.0),
        ([("retry-after-ms", "1500"), ("retry-after", "9")], 1.5),
        ([("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")], 0.0),  # a date in the past
        ([("retry-after", "soon")], None),
        ([], None),
    ],
)
async def test_429_is_retryable_and_carries_retry_after(server, agent, headers, expected):
    server.replies.append(Reply(429, {"error": {"message": "slow down"}}, headers=headers))
    with pytest.raises(AgentCallError, match="429") as info:
        await agent().run("q")
    assert info.value.retryable is True and info.value.retry_after == expected


async def test_the_adapter_never_sleeps_the_step_does(server, agent, mock_clock):
    mock_clock.autojump_threshold = 0.05  # jump only when truly idle, not between packets
    server.replies += [
        Reply(429, {"error": {"message": "slow down"}}, headers=[("retry-after", "30")]),
        Reply(503, {"error": {"message": "overloaded"}}, headers=[("retry-after", "5")]),
    ]
    start = trio.current_time()
    with pytest.raises(AgentCallError) as info:
        await agent().run("q")
    assert info.value.retry_after == 30.0
    assert trio.current_time() - start < 1  # raised at once: waiting is the step's job
    # With no retries left, nothing waits either.
    result = await Runner(Step("chat", agent(), max_retries=0)).run("q")
    assert not result.success and "503" in result.step_history[0].feedback
    assert trio.current_time() - start < 1


def test_adapters_back_off_by_default():
    assert ChatAgent.default_backoff == Backoff()
    assert ChatAgent("m").default_backoff.initial_s > 0


# -- prices and tokens ----------------------------------------------------------------


async def test_prices_come_from_genai_prices_by_model_name(server, client):
    server.replies += [Reply(body=completion("hi", 1000, 200)) for _ in range(2)]
    known = ChatAgent("gpt-4o-mini", client=client)
    result = await Runner(Step("chat", known)).run("hello")
    price = calc_price(Tokens(input_tokens=1000, output_tokens=200), "gpt-4o-mini")
    assert result.total_cost_usd == pytest.approx(float(price.total_price))
    assert result.total_cost_usd > 0
    # A price given by the user wins.
    mine = ChatAgent("gpt-4o-mini", client=client, pricing=Pricing(1.0, 1.0))
    assert (await mine.run("hello")).usage == Usage(1200 / 1e6, 1200)


async def test_unknown_models_count_tokens_at_no_cost(server, client):
    server.replies.append(Reply(body=completion("hi", 10, 5)))
    unknown = ChatAgent("my-local-finetune-xyz", client=client)
    assert unknown.price is None
    assert (await unknown.run("hello")).usage == Usage(0.0, 15)


def test_reservations_use_tiktoken_when_its_encoding_is_on_disk(monkeypatch, tmp_path):
    import tiktoken

    from flujo_trio.agents.tokens import estimate_tokens, offline_encoding

    # No cached encoding: no network, the character estimate.
    assert offline_encoding("gpt-4o-mini") is None
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")  # caching off: every load would download
    assert offline_encoding("gpt-4o-mini") is None
    # A real tiktoken Encoding (one token per byte) in place of the downloaded one.
    per_byte = tiktoken.Encoding(
        name="per_byte",
        pat_str=r"\S+|\s+",
        mergeable_ranks={bytes([i]): i for i in range(256)},
        special_tokens={},
    )
    assert estimate_tokens("héllo", per_byte) == 7 + 8  # 6 bytes, +10% rounded up, +8
    chat = ChatAgent("m", pricing=Pricing(1, 1), max_tokens=10)
    heuristic = chat.reservation("x" * 300)
    chat.encoding = per_byte
    counted = chat.reservation("x" * 300)
    assert heuristic.tokens == 32 + 4 + 300 // 3 + 8 + 10
    assert counted.tokens == 32 + 4 + 330 + 8 + 10
