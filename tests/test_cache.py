"""Step caching: hits skip the agent and keep totals honest."""

from __future__ import annotations

import enum

import attrs
import pytest
import trio

from flujo_trio import AgentResult, ConfigurationError, MemoryCache, Runner, Step, Usage
from flujo_trio.cache import fingerprint
from flujo_trio.testing import StubAgent


async def test_hit_skips_the_agent_and_reports_zero_usage():
    cache = MemoryCache()
    agent = StubAgent([AgentResult("answer", Usage(0.3, 30)), AgentResult("again", Usage(1, 1))])
    runner = Runner(Step("ask", agent, cache=cache))
    first = await runner.run({"q": 1})
    second = await runner.run({"q": 1})
    assert agent.call_count == 1
    assert first.step_history[0].metadata["cache_hit"] is False
    hit = second.step_history[0]
    assert hit.metadata["cache_hit"] is True and hit.output == "answer"
    assert hit.metadata["cached_usage"] == Usage(0.3, 30)
    assert (hit.cost_usd, hit.token_counts, hit.attempts) == (0, 0, 0)
    assert second.total_cost_usd == 0 and second.total_tokens == 0


async def test_key_is_step_name_plus_input_and_excludes_context():
    cache = MemoryCache()
    agent = StubAgent(["a", "b", "c"])
    await Runner(Step("one", agent, cache=cache)).run("x")
    await Runner(Step("one", agent, cache=cache)).run("y")
    await Runner(Step("two", agent, cache=cache)).run("x")
    assert agent.call_count == 3
    await Runner(Step("one", agent, cache=cache)).run("x")
    assert agent.call_count == 3


async def test_only_successful_results_are_cached():
    cache = MemoryCache()
    agent = StubAgent([ValueError("bad"), "good"])
    step = Step("s", agent, cache=cache, max_retries=0)
    assert not (await Runner(step).run("x")).success
    assert (await Runner(step).run("x")).output == "good"
    assert agent.call_count == 2
    failing_validation = Step("v", StubAgent(["x", "y"]), cache=cache, validators=[lambda o, c: 0])
    await Runner(failing_validation).run("x")
    assert len(cache) == 1


async def test_custom_key_function():
    cache = MemoryCache(key=lambda data: data["id"])
    agent = StubAgent(["first", "second"])
    step = Step("s", agent, cache=cache)
    await Runner(step).run({"id": "7", "noise": 1})
    result = await Runner(step).run({"id": "7", "noise": 2})
    assert result.output == "first" and agent.call_count == 1


async def test_ttl_and_max_entries(autojump_clock):
    cache = MemoryCache(max_entries=2, ttl_s=10, clock=trio.current_time)
    agent = StubAgent(list(range(10)))
    step = Step("s", agent, cache=cache)
    await Runner(step).run("a")
    await trio.sleep(11)
    assert (await Runner(step).run("a")).output == 1
    await Runner(step).run("b")
    await Runner(step).run("c")
    assert len(cache) == 2
    assert (await Runner(step).run("a")).output == 4


def test_fingerprint_is_stable_and_distinguishes_types():
    class Color(enum.Enum):
        RED = "red"

    @attrs.define
    class Query:
        text: str
        tags: set[str]

    assert fingerprint({"b": 1, "a": [1.5, Color.RED]}) == fingerprint(
        {"a": [1.5, Color.RED], "b": 1}
    )
    assert fingerprint(Query("x", {"b", "a"})) == fingerprint(Query("x", {"a", "b"}))
    assert fingerprint("1") != fingerprint(1)
    assert fingerprint([1]) != fingerprint((1,))
    with pytest.raises(TypeError):
        fingerprint(object())


async def test_unkeyable_input_is_a_miss_not_an_error():
    cache = MemoryCache()
    agent = StubAgent(["a", "b"])
    marker = object()
    await Runner(Step("s", agent, cache=cache)).run(marker)
    await Runner(Step("s", agent, cache=cache)).run(marker)
    assert agent.call_count == 2 and len(cache) == 0


def test_invalid_cache_options():
    with pytest.raises(ConfigurationError, match="max_entries"):
        MemoryCache(max_entries=0)
    with pytest.raises(ConfigurationError, match="ttl_s"):
        MemoryCache(ttl_s=-1)
