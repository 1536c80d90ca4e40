from __future__ import annotations

import attrs
import pytest

from flujo_trio import ConfigurationError, MemoryCache, Pipeline, Processors, Step, Usage
from flujo_trio.testing import StubAgent


async def echo(data):
    return data


def test_step_defaults_match_the_contract():
    step = Step("a", echo)
    assert step.max_retries == 1
    assert step.timeout_s is None
    assert step.validators == () and step.plugins == ()
    assert step.processors == Processors()
    assert step.fallback is None
    assert step.validation == "fail"
    assert step.reserve is None and step.cache is None


def test_steps_are_frozen():
    step = Step("a", echo)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        step.name = "b"  # type: ignore[misc]


def test_options_are_keyword_only():
    with pytest.raises(TypeError):
        Step("a", echo, 3)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_retries": -1}, "max_retries"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"validation": "explode"}, "validation"),
        ({"reserve": 3}, "reserve"),
        ({"cache": {}}, "cache"),
        ({"validators": [1]}, "validators must be callable"),
    ],
)
def test_invalid_options_fail_at_construction(kwargs, match):
    with pytest.raises(ConfigurationError, match=match):
        Step("a", echo, **kwargs)


def test_empty_name_and_non_callable_agent_are_rejected():
    with pytest.raises(ConfigurationError, match="non-empty name"):
        Step("", echo)
    with pytest.raises(ConfigurationError, match="agent must be"):
        Step("a", "not an agent")


def test_fallback_chain_that_loops_back_is_rejected():
    primary = Step("a", echo, fallback=Step("b", echo))
    with pytest.raises(ConfigurationError, match="loops back"):
        attrs.evolve(primary.fallback, fallback=primary)  # b -> a -> b
    with pytest.raises(ConfigurationError, match="loops back"):
        Step("a", echo, fallback=Step("a", echo))


def test_rshift_builds_pipelines_in_order():
    a, b, c, d = (Step(n, echo) for n in "abcd")
    assert (a >> b).steps == (a, b)
    assert (a >> b >> c).steps == (a, b, c)
    assert ((a >> b) >> (c >> d)).steps == (a, b, c, d)
    assert (a >> (b >> c)).steps == (a, b, c)
    assert Pipeline([a, b]).steps == (a, b)


def test_duplicate_names_and_empty_pipelines_are_rejected():
    with pytest.raises(ConfigurationError, match="Duplicate step name 'a'"):
        Step("a", echo) >> Step("a", echo)
    with pytest.raises(ConfigurationError, match="at least one step"):
        Pipeline([])
    with pytest.raises(ConfigurationError, match="must be steps"):
        Pipeline([echo])


def test_from_callable_names_the_step_after_the_function():
    step = Step.from_callable(echo, max_retries=0)
    assert step.name == "echo" and step.max_retries == 0
    assert Step.from_callable(echo, name="other").name == "other"
    with pytest.raises(ConfigurationError, match="lambda"):
        Step.from_callable(lambda d: d)


def test_processors_take_a_plain_sequence_as_output_processors():
    def upper(data, ctx):
        return data.upper()

    assert Step("a", echo, processors=[upper]).processors == Processors(output=(upper,))


def test_agents_may_be_objects_with_run_or_callables():
    assert Step("a", StubAgent([1])).call.accepts == {
        "context",
        "feedback",
        "resources",
        "emit",
        "meter",
    }

    async def only_context(data, context):
        return data

    assert Step("b", only_context).call.accepts == {"context"}
    assert Step("c", echo).call.accepts == frozenset()


def test_reserve_accepts_a_usage_or_a_callable():
    assert Step("a", echo, reserve=Usage(1.0)).reservation_for("x") == Usage(1.0)
    step = Step("b", echo, reserve=lambda data: Usage(tokens=len(data)))
    assert step.reservation_for("abc") == Usage(tokens=3)
    assert Step("c", echo, cache=MemoryCache()).cache is not None
