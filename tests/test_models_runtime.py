"""Model adapters under the runner: what needs the runtime core's side of agent_api.

These use only the public API. They wait for the core to (1) offer ``emit`` and
``meter`` to agents that accept them, (2) route AgentDelta / ToolCalled /
ToolReturned into ``runner.stream()``, (3) admit ``meter.request`` through the
governor, (4) charge a cancelled call what ``meter.add`` reported, and (5) wait
between attempts with ``Step(backoff=)`` / ``agent.default_backoff``, honouring
``AgentCallError.retry_after``.
"""

from __future__ import annotations

import math

import pytest
import trio

from flujo_trio import Runner, Step, StepFinished, StepStarted, UsageLimitExceededError, UsageLimits
from flujo_trio.agents.openai import ChatAgent
from flujo_trio.backoff import Backoff
from flujo_trio.events import AgentDelta, ToolCalled, ToolReturned
from tests.fake_openai import Reply, chunk, completion, tool_calls, usage
from tests.openai_support import *  # noqa: F403 (fixtures)
from tests.openai_support import PRICING


def forecast(city: str) -> str:
    """The weather forecast for a city."""
    return f"sunny in {city}"


async def collect(runner: Runner, data) -> list:
    seen = []
    async with runner.stream(data) as events:
        async for event in events:
            seen.append(event)
    return seen


# -- events -----------------------------------------------------------------------------


async def test_deltas_reach_runner_stream_in_order(server, agent):
    pieces = ["Stream", "ing ", "works", "."]
    server.replies.append(Reply(chunks=[*(chunk(p) for p in pieces), chunk(usage=usage(9, 4))]))
    seen = await collect(Runner(Step("chat", agent(stream=True))), "hi")
    deltas = [e for e in seen if isinstance(e, AgentDelta)]
    assert [d.text for d in deltas] == pieces
    assert {d.step for d in deltas} == {"chat"}
    started = next(i for i, e in enumerate(seen) if isinstance(e, StepStarted))
    finished = next(i for i, e in enumerate(seen) if isinstance(e, StepFinished))
    assert all(started < seen.index(d) < finished for d in deltas)
    assert finished_output(seen) == "Streaming works."


def finished_output(seen):
    return next(e for e in seen if isinstance(e, StepFinished)).result.output


async def test_tool_events_reach_runner_stream(server, agent):
    server.replies += [
        Reply(body=tool_calls(("c1", "forecast", {"city": "Lima"}))),
        Reply(body=completion("Sunny.")),
    ]
    seen = await collect(Runner(Step("weather", agent(tools=[forecast]))), "weather?")
    tools = [e for e in seen if isinstance(e, ToolCalled | ToolReturned)]
    run_id = tools[0].run_id
    assert tools == [
        ToolCalled(run_id, "weather", "forecast", {"city": "Lima"}, "c1"),
        ToolReturned(run_id, "weather", "forecast", "sunny in Lima", None, "c1"),
    ]


# -- budgets across tool rounds ---------------------------------------------------------


async def test_budget_holds_across_tool_rounds(server, agent):
    # The second prompt holds the first (400) and its reply (100), as a real provider
    # bills it; the limit leaves room for two requests and for less than any third
    # request's bound (at least what the second prompt was billed, plus max_tokens=200).
    server.replies += [
        Reply(
            body=tool_calls(
                ("c1", "forecast", {"city": "Lima"}), prompt_tokens=400, completion_tokens=100
            )
        ),
        Reply(
            body=tool_calls(
                ("c2", "forecast", {"city": "Oslo"}), prompt_tokens=520, completion_tokens=100
            )
        ),
        Reply(body=completion("never sent", 400, 100)),
    ]
    chat = agent(tools=[forecast], max_tokens=200, pricing=None)
    limits = UsageLimits(total_tokens_limit=1300)
    step = Step("weather", chat, reserve=chat.reservation, max_retries=0)
    with pytest.raises(UsageLimitExceededError) as info:
        await Runner(step, limits=limits).run("weather?")
    assert len(server.requests) == 2  # the third request was refused, never sent
    assert info.value.result.total_tokens == 1120  # both requests, each counted once
    # The second request's own bound fitted beside the first's 500 tokens.
    assert chat._bound(server.requests[1]["messages"]).tokens <= 1300 - 500


# -- partial usage of a cancelled stream --------------------------------------------------


async def test_a_timed_out_stream_is_charged_what_it_used(server, agent, mock_clock):
    mock_clock.autojump_threshold = 0.05
    pieces = ["a partial ", "answer"]
    server.replies.append(Reply(chunks=[chunk(p) for p in pieces], hang_after_chunks=True))
    chat = agent(stream=True, max_tokens=1000)
    step = Step("chat", chat, reserve=chat.reservation, timeout_s=5, max_retries=0)
    result = await Runner(step).run("tell me")
    prompt = chat._prompt_guess(chat.messages("tell me"))
    completion_tokens = sum(math.ceil(len(p) / 4) for p in pieces)
    # Not the reservation (1000 completion tokens): what the stream reported.
    assert result.total_tokens == prompt + completion_tokens
    assert result.total_cost_usd == pytest.approx(PRICING.usage(prompt, completion_tokens).cost_usd)
    assert not result.step_history[0].metadata.get("usage_estimated")


# -- backoff ------------------------------------------------------------------------------


def overloaded(status=500, retry_after=None):
    headers = [("retry-after", str(retry_after))] if retry_after is not None else []
    return Reply(status, {"error": {"message": "overloaded"}}, headers=headers)


async def test_retries_wait_with_exponential_backoff(server, agent, mock_clock):
    mock_clock.autojump_threshold = 0.05  # jump only when truly idle, not between packets
    server.replies += [overloaded(), overloaded(), Reply(body=completion("third time"))]
    backoff = Backoff(initial_s=1, max_s=10, jitter=False)
    start = trio.current_time()
    result = await Runner(Step("chat", agent(), max_retries=2, backoff=backoff)).run("q")
    assert result.output == "third time"
    assert trio.current_time() - start == pytest.approx(1 + 2)


async def test_a_longer_retry_after_wins(server, agent, mock_clock):
    mock_clock.autojump_threshold = 0.05
    server.replies += [overloaded(429, retry_after=30), Reply(body=completion("after waiting"))]
    backoff = Backoff(initial_s=1, max_s=1, jitter=False)
    start = trio.current_time()
    result = await Runner(Step("chat", agent(), max_retries=1, backoff=backoff)).run("q")
    assert result.output == "after waiting"
    assert trio.current_time() - start == pytest.approx(30)


async def test_nothing_waits_without_retries_left(server, agent, mock_clock):
    mock_clock.autojump_threshold = 0.05
    server.replies += [overloaded(429, retry_after=30)]
    start = trio.current_time()
    result = await Runner(Step("chat", agent(), max_retries=0)).run("q")
    assert not result.success
    assert trio.current_time() - start < 1


async def test_the_agent_default_backoff_applies_unless_the_step_sets_one(
    server, client, mock_clock
):
    mock_clock.autojump_threshold = 0.05

    class Patient(ChatAgent):
        default_backoff = Backoff(initial_s=2, max_s=2, jitter=False)

    patient = Patient("test-model", client=client, pricing=PRICING)
    server.replies += [
        overloaded(),
        Reply(body=completion("ok")),
        overloaded(),
        Reply(body=completion("ok")),
    ]
    start = trio.current_time()
    await Runner(Step("chat", patient, max_retries=1)).run("q")
    assert trio.current_time() - start == pytest.approx(2)
    start = trio.current_time()
    await Runner(Step("chat", patient, max_retries=1, backoff=Backoff.off())).run("q")
    assert trio.current_time() - start == pytest.approx(0)
