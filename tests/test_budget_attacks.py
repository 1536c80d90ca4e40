"""A demanding user's attacks on the budget, cancellation and input-validation promises:
hostile numbers, deep nesting, large fan-outs under nested scopes."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
import trio

from flujo_trio import (
    AgentResult,
    Backoff,
    BranchFailure,
    ConditionalStep,
    ConfigurationError,
    LoopStep,
    MapStep,
    MergeStrategy,
    ParallelStep,
    Pipeline,
    Runner,
    Step,
    Usage,
    UsageLimitExceededError,
    UsageLimits,
)
from flujo_trio.dsl.shape import fingerprint, pipeline_shape
from flujo_trio.dsl.walk import iter_steps

from .helpers import stray_tasks


async def echo(data: Any) -> Any:
    return data


# -- hostile configuration values: a ConfigurationError that says what is wrong --------


@pytest.mark.parametrize("timeout", ["5", [1], b"1", object()])
def test_a_timeout_that_is_not_a_number_is_a_configuration_error(timeout: Any) -> None:
    with pytest.raises(ConfigurationError, match="timeout_s must be > 0 seconds"):
        Step("s", echo, timeout_s=timeout)


@pytest.mark.parametrize(
    "build",
    [
        lambda: Usage(cost_usd=10**400),
        lambda: UsageLimits(total_cost_usd_limit=10**400),
        lambda: Backoff(initial_s=10**400),
        lambda: Backoff(max_s=-(10**400)),
        lambda: Backoff(multiplier=10**400),
    ],
    ids=["usage", "limits", "backoff-initial", "backoff-max", "backoff-multiplier"],
)
def test_an_int_too_large_for_a_float_is_a_configuration_error(build: Any) -> None:
    with pytest.raises(ConfigurationError, match="finite"):
        build()


# -- deep nesting -----------------------------------------------------------------------


async def plus_one(data: int) -> AgentResult[int]:
    return AgentResult(data + 1, Usage(cost_usd=0.001, tokens=1))


def nested(kind: str, depth: int) -> Any:
    step: Any = Step("leaf", plus_one)
    for level in range(depth):
        if kind == "parallel":
            step = ParallelStep(f"p{level}", {"x": step}, merge_strategy=MergeStrategy.NO_MERGE)
        else:
            step = ConditionalStep(f"c{level}", condition=lambda _o, _c: "x", branches={"x": step})
    return step


@pytest.mark.parametrize("kind", ["parallel", "conditional"])
async def test_a_pipeline_nested_300_deep_builds_and_runs(kind: str) -> None:
    # Each parallel or conditional level is 4 JSON levels of the pipeline's shape: the
    # fingerprint's json.dumps used to raise RecursionError when the Runner was built.
    runner = Runner(nested(kind, 300), limits=UsageLimits(total_tokens_limit=1))
    result = await runner.run(1)
    assert result.success and result.total_tokens == 1
    assert stray_tasks() == []


def test_walking_a_pipeline_2000_deep_does_not_recurse() -> None:
    steps = list(iter_steps(Pipeline([nested("parallel", 2000)])))
    assert len(steps) == 2001 and steps[-1].name == "leaf"


def test_the_fingerprint_text_is_unchanged_so_stored_runs_still_resume() -> None:
    fallback = Step("a", echo, fallback=Step("b", echo, fallback=Step("c", echo)))
    pipeline = (
        fallback
        >> LoopStep("l\u00e9", Step("in", echo), exit_condition=lambda _o, _c: True)
        >> ParallelStep("p", {"z": Step("z", echo), 'a\u2028"q': Step("q", echo)})
        >> ConditionalStep(
            "c", condition=lambda _o, _c: 1, branches={1: Step("one", echo)}, default=echo_step()
        )
        >> MapStep("m", Step("each", echo))
    )
    shape = pipeline_shape(pipeline)
    import hashlib

    text = json.dumps(shape, sort_keys=True, separators=(",", ":"))
    assert fingerprint(shape) == hashlib.sha256(text.encode()).hexdigest()[:32]


def echo_step() -> Step:
    return Step("fallback_branch", echo)


# -- nested scopes under a large fan-out ------------------------------------------------


class Spender:
    """Counts in the agent itself what it really spent; reports half of it at once."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.tokens = 0
        self.calls = 0

    async def run(self, data: Any, meter: Any) -> AgentResult[Any]:
        self.calls += 1
        tokens = self.rng.randint(0, 10)
        meter.add(Usage(tokens=tokens // 2))
        self.tokens += tokens // 2
        await trio.sleep(self.rng.random())
        self.tokens += tokens - tokens // 2
        return AgentResult(data, Usage(tokens=tokens))


def _walk(result: Any) -> Any:
    stack = [result]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(current.step_history)


@pytest.mark.parametrize("seed", [0, 1])
async def test_nested_scopes_never_overshoot_and_totals_are_what_agents_spent(
    autojump_clock: Any, seed: int
) -> None:
    agent = Spender(seed)
    leaf = Step("leaf", agent, reserve=Usage(tokens=10), max_retries=0)
    each = MapStep(
        "m",
        leaf,
        max_concurrency=[None, 7][seed],
        item_limits=UsageLimits(total_tokens_limit=12),
        limits=UsageLimits(total_tokens_limit=200),
    )
    fan = ParallelStep(
        "p",
        {f"b{i}": Pipeline([each]) for i in range(5)},
        limits=UsageLimits(total_tokens_limit=700),
        on_branch_failure=BranchFailure.IGNORE,
    )
    loop = LoopStep(
        "l",
        fan,
        exit_condition=lambda _o, _c: False,
        max_loops=3,
        iteration_input_mapper=lambda _o, _c, _i: list(range(60)),
    )
    runner = Runner(loop, limits=UsageLimits(total_tokens_limit=[1200, 5000][seed]))
    try:
        result = await runner.run(list(range(60)))
    except UsageLimitExceededError as error:
        result = error.result
    assert result.total_tokens == agent.tokens
    assert result.governor.requests == agent.calls
    limits = {"p": 700, "m": 200}
    for top in result.step_history:
        for step in _walk(top):
            assert step.token_counts <= limits.get(step.name, 1200 + 5000 * seed), step.name
    assert result.total_tokens <= [1200, 5000][seed]
    assert stray_tasks() == []


# -- hostile values from an agent -------------------------------------------------------


class Overloaded(Exception):
    def __init__(self, retry_after: Any) -> None:
        super().__init__("overloaded, retry later")
        self.retry_after = retry_after


@pytest.mark.parametrize(
    "retry_after", [float("inf"), 10**400, float("nan")], ids=["inf", "huge-int", "nan"]
)
async def test_a_retry_after_that_is_not_a_finite_number_is_ignored(
    autojump_clock: Any, retry_after: Any
) -> None:
    # inf used to sleep forever before the retry; 10**400 raised OverflowError.
    calls: list[float] = []

    async def agent(data: Any) -> Any:
        calls.append(trio.current_time())
        raise Overloaded(retry_after)

    with trio.fail_after(3600):
        result = await Runner(Step("s", agent, max_retries=1)).run("x")
    assert not result.success and len(calls) == 2
    assert result.step_history[0].feedback == (
        "Agent failed after 2 attempt(s): overloaded, retry later"
    )
    assert stray_tasks() == []


@pytest.mark.parametrize(
    "retry_after", [float("inf"), 10**400, float("nan")], ids=["inf", "huge-int", "nan"]
)
def test_backoff_delay_ignores_a_retry_after_that_is_not_a_finite_number(
    retry_after: Any,
) -> None:
    # Backoff.delay is public (model adapters call it): 10**400 raised OverflowError there.
    assert Backoff(jitter=False).delay(1, retry_after=retry_after) == Backoff(jitter=False).cap(1)


# -- costs whose sum no float can hold -----------------------------------------------------


async def test_valid_costs_summing_past_the_largest_float_breach_and_report_saturated():
    """Two calls of $1e308 each: the ledger (exact decimals) sees the breach, and every
    report saturates at the largest float instead of failing on inf."""

    async def huge(data: Any) -> AgentResult[Any]:
        return AgentResult(data, Usage(cost_usd=1e308))

    pipeline = Step("a", huge) >> Step("b", huge)
    limited = Runner(pipeline, limits=UsageLimits(total_cost_usd_limit=1e308))
    with pytest.raises(UsageLimitExceededError, match="Cost limit") as caught:
        await limited.run("x")
    assert caught.value.result.total_cost_usd == 1.7976931348623157e308
    done = await Runner(pipeline).run("x")
    assert done.success and done.total_cost_usd == 1.7976931348623157e308
    assert done.governor.spent.cost_usd == 1.7976931348623157e308
    assert (Usage(cost_usd=1e308) + Usage(cost_usd=1e308)).cost_usd == 1.7976931348623157e308
