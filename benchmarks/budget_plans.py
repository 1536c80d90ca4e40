"""The plans the budget workloads run: which calls each branch makes, how long each
takes and what it really uses. Standard library only, so the incumbent's own
virtual environment (``benchmarks/flujo_workloads.py``) runs the very same plans.

A *plan* fixes, for every branch, the calls it would make: each call's latency (in
virtual seconds: flujo-trio and the floors run under Trio's ``MockClock`` with
autojump, so latency costs no wall time; the asyncio peers scale it to
milliseconds of real time) and its real token usage, which varies per call around a
mean. The same seed gives the same plan in every runtime, call for call.
"""

from __future__ import annotations

import random

MEAN_TOKENS = 10
"""Mean real usage of a call; each call uses between half and one and a half of it."""
RESERVE_TOKENS = 2 * MEAN_TOKENS
"""Every reservation is twice the mean real usage (and bounds every call's usage)."""
MIN_LATENCY_S, MAX_LATENCY_S = 0.5, 1.5
SEED = 2024

UTIL_CALLS = 8
"""Calls per branch in the utilization workload (K x 8 >= 80: a reservation is at most
5% of a limit at half the demand)."""

SCOPED_NORMAL_CALLS = (2, 6)
"""A normal item's task takes 2 to 6 calls (it always fits its budget)."""
SCOPED_RUNAWAY_CALLS = 40
SCOPED_RUNAWAY_EVERY = 10
SCOPED_ITEM_CAP = 100
SCOPED_CONCURRENCY = 10

DELEGATIONS = 8
DELEGATION_REQUESTS = 3
REQUEST_LIMIT = 9
DELEGATION_TRIALS = 20

Call = tuple[float, int]
"""(latency in virtual seconds, real tokens)."""
Plan = list[list[Call]]
"""The calls each branch would make, in order."""


def make_plan(
    branches: int, calls: int, seed: int, *, mean: int = MEAN_TOKENS, spread: float = 0.5
) -> Plan:
    """``branches`` x ``calls`` calls, usage uniform in ``mean * (1 +- spread)``."""
    rng = random.Random(seed)
    low, high = round(mean * (1 - spread)), round(mean * (1 + spread))
    return [
        [(rng.uniform(MIN_LATENCY_S, MAX_LATENCY_S), rng.randint(low, high)) for _ in range(calls)]
        for _ in range(branches)
    ]


def demand(plan: Plan) -> int:
    return sum(tokens for branch in plan for _, tokens in branch)


def utilization_plan(k: int) -> tuple[Plan, int]:
    """K branches x 8 calls, and a token limit at half their demand."""
    plan = make_plan(k, UTIL_CALLS, SEED + k)
    return plan, demand(plan) // 2


def is_runaway(index: int) -> bool:
    return index % SCOPED_RUNAWAY_EVERY == 0


def scoped_plan(items: int) -> Plan:
    """Normal items need 2 to 6 calls; every tenth (the first one too) is a runaway that
    would make 40."""
    plan = make_plan(items, SCOPED_RUNAWAY_CALLS, SEED + items + 1)
    low, high = SCOPED_NORMAL_CALLS
    return [
        calls if is_runaway(index) else calls[: low + index % (high - low + 1)]
        for index, calls in enumerate(plan)
    ]


def delegation_plan(trial: int) -> Plan:
    """Row 0: the planner's one request; rows 1..8: each delegation's requests."""
    return [
        *make_plan(1, 1, SEED * 7 + trial),
        *make_plan(DELEGATIONS, DELEGATION_REQUESTS, SEED * 11 + trial),
    ]
