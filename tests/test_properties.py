"""Property tests: random nested pipelines keep honest totals and budgets, and leak nothing."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import attrs
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flujo_trio import (
    AgentResult,
    BranchFailure,
    ConditionalStep,
    LoopStep,
    MapStep,
    ParallelStep,
    Pipeline,
    Runner,
    Step,
    Usage,
    UsageLimitExceededError,
    UsageLimits,
)
from tests.helpers import stray_tasks

agent_spec = st.tuples(
    st.just("agent"),
    st.integers(0, 50),  # cost in cents
    st.integers(0, 40),  # tokens
    st.integers(0, 2),  # failures before success
    st.integers(0, 1),  # max_retries
    st.integers(0, 3),  # delay in seconds (mock clock)
)


def extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    some = st.lists(children, min_size=1, max_size=3)
    return st.one_of(
        st.tuples(st.just("seq"), some),
        st.tuples(st.just("par"), st.lists(children, min_size=2, max_size=3), st.booleans()),
        st.tuples(st.just("loop"), children, st.integers(1, 3)),
        st.tuples(st.just("cond"), st.lists(children, min_size=1, max_size=3), st.integers(0, 5)),
        st.tuples(st.just("map"), children, st.integers(0, 3)),
    )


specs = st.recursive(agent_spec, extend, max_leaves=8)


class FailedAttempt(Exception):
    def __init__(self, usage: Usage) -> None:
        super().__init__("scripted failure")
        self.usage = usage


@attrs.define
class Tally:
    """What the agents themselves know they spent (or were charged when cancelled)."""

    cost: Decimal = Decimal(0)
    tokens: int = 0

    def add(self, usage: Usage) -> None:
        self.cost += Decimal(repr(usage.cost_usd))
        self.tokens += usage.tokens


@attrs.define
class ScriptedAgent:
    tally: Tally
    usage: Usage
    reserve: Usage | None
    failures: int
    delay: int
    calls: int = 0

    async def run(self, data: Any) -> Any:
        self.calls += 1
        try:
            await trio.sleep(self.delay)
        except trio.Cancelled:
            self.tally.add(self.reserve or Usage())
            raise
        self.tally.add(self.usage)
        if self.calls <= self.failures:
            raise FailedAttempt(self.usage)
        return AgentResult(data, self.usage)


class Builder:
    def __init__(self, tally: Tally, reserve: bool) -> None:
        self.tally = tally
        self.reserve = reserve
        self.names = itertools.count()

    def name(self, kind: str) -> str:
        return f"{kind}{next(self.names)}"

    def pipeline(self, spec: Any) -> Pipeline:
        if spec[0] == "seq":
            return Pipeline([self.step(child) for child in spec[1]])
        return Pipeline([self.step(spec)])

    def step(self, spec: Any) -> Any:
        kind = spec[0]
        if kind == "agent":
            _, cents, tokens, failures, retries, delay = spec
            usage = Usage(cents / 100, tokens)
            reserve = usage if self.reserve else None
            agent = ScriptedAgent(self.tally, usage, reserve, failures, delay)
            return Step(self.name("agent"), agent, max_retries=retries, reserve=reserve)
        if kind == "seq":
            return LoopStep(
                self.name("once"), self.pipeline(spec), exit_condition=lambda o, c: True
            )
        if kind == "par":
            branches = {self.name("branch"): self.pipeline(child) for child in spec[1]}
            failure = BranchFailure.IGNORE if spec[2] else BranchFailure.PROPAGATE
            return ParallelStep(self.name("par"), branches, on_branch_failure=failure)
        if kind == "loop":
            return LoopStep(
                self.name("loop"),
                self.pipeline(spec[1]),
                exit_condition=lambda o, c: False,
                max_loops=spec[2],
            )
        if kind == "cond":
            branches = {i: self.pipeline(child) for i, child in enumerate(spec[1])}
            pick = spec[2] % (len(branches) + 1)  # one past the end: no branch, no default
            return ConditionalStep(
                self.name("cond"), condition=lambda d, c: pick, branches=branches
            )
        if kind == "map":
            return MapStep(self.name("map"), self.pipeline(spec[1]), items=lambda c: range(spec[2]))
        raise AssertionError(kind)


SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(spec=specs, reserve=st.booleans())
async def test_reported_total_is_the_sum_of_every_agent_call(autojump_clock, spec, reserve):
    tally = Tally()
    runner = Runner(Builder(tally, reserve).pipeline(("seq", [spec])))
    result = await runner.run("x")
    assert Decimal(repr(result.total_cost_usd)) == tally.cost
    assert result.total_tokens == tally.tokens
    tree_cost = sum(Decimal(repr(s.cost_usd)) for s in result.step_history)
    assert tree_cost == tally.cost
    assert sum(s.token_counts for s in result.step_history) == tally.tokens
    assert stray_tasks() == []


@SETTINGS
@given(spec=specs, limit_cents=st.integers(0, 150), limit_tokens=st.integers(0, 120))
async def test_with_reservations_spend_never_exceeds_the_limit(
    autojump_clock, spec, limit_cents, limit_tokens
):
    tally = Tally()
    limits = UsageLimits(total_cost_usd_limit=limit_cents / 100, total_tokens_limit=limit_tokens)
    runner = Runner(Builder(tally, reserve=True).pipeline(("seq", [spec])), limits=limits)
    try:
        result = await runner.run("x")
    except UsageLimitExceededError as error:
        result = error.result
    assert tally.cost <= Decimal(limit_cents) / 100
    assert tally.tokens <= limit_tokens
    assert Decimal(repr(result.total_cost_usd)) == tally.cost
    assert result.total_tokens == tally.tokens
    assert stray_tasks() == []
