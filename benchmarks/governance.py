"""Governance benchmark: overshoot, budget utilization, per-item budgets, request limits.

Four workloads, each next to floors doing the same work in the same process run
(plain Trio tasks and one ledger object, see :mod:`benchmarks.budget_floors`):

1. ``shape``: K branches x M trivial steps under a token limit at half the demand:
   spend over the limit with and without reservations, and ``stop ms`` from the
   moment real spend passed the limit to ``run()`` having raised with every branch
   cancelled, beside a fire-and-forget ledger that cancels a nursery on a breach.
2. ``utilization``: K branches x 8 calls whose real usage varies per call (5 to 15
   tokens, mean 10) and whose latency varies (0.5 to 1.5 virtual seconds under
   Trio's ``MockClock``), each reserving twice its mean (20 tokens), under a limit
   at half the demand (so every reservation is at most 5% of the limit). How much
   of the limit is spent at the first denial and at the end, by flujo-trio and by
   three floors: the same waiting policy written by hand, the old deny-on-first-
   misfit policy, and a naive fire-and-forget ledger; and flujo-trio without
   reservations. Time is wall time (virtual latencies cost none).
3. ``scoped``: per-item budgets. 100 items, 10 at a time, each running a loop of
   calls until its task is done: most need 2 to 6 calls, every tenth is a runaway
   that would make 40. Each item may spend 100 tokens. flujo-trio as
   ``MapStep(item_limits=)`` and as a ``ParallelStep`` of ``LoopStep(limits=)``
   branches that ignores failed branches, beside a floor that checks each item's
   spend after every call.
4. ``delegation``: the pydantic-ai-harness#696 case, a planner whose one request
   fans out to 8 concurrent delegations of 3 model requests each, under a request
   limit of 9, on flujo-trio (``total_requests_limit=9``; the delegations' later
   requests go through ``meter.request`` as ``ChatAgent``'s tool rounds do), over
   several latency draws.

The peers (pydantic-ai, Flujo 0.6.11) run the same plans: see
:mod:`benchmarks.governance_peers` and :mod:`benchmarks.flujo_workloads`.

Usage: ``python -m benchmarks.governance [--ks 10,100,1000,10000]``. Prints tables
and writes ``benchmarks/results/governance.json``; ``make bench`` runs it with the
peers and draws the charts.
"""

from __future__ import annotations

import argparse
import math
import time
from typing import Any

import trio
import trio.testing

from flujo_trio import (
    AgentResult,
    BranchFailure,
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

from .budget_floors import floor_figures, run_floor
from .budget_plans import (
    DELEGATION_REQUESTS,
    DELEGATION_TRIALS,
    DELEGATIONS,
    REQUEST_LIMIT,
    RESERVE_TOKENS,
    SCOPED_CONCURRENCY,
    SCOPED_ITEM_CAP,
    SCOPED_NORMAL_CALLS,
    SCOPED_RUNAWAY_CALLS,
    SCOPED_RUNAWAY_EVERY,
    UTIL_CALLS,
    Plan,
    delegation_plan,
    demand,
    is_runaway,
    scoped_plan,
    utilization_plan,
)
from .support import print_table, ratio, write_results

TOKENS_PER_CALL = 10


NO_RESERVATION_MAX_K = 1000
"""Without reservations the overshoot at larger K is the first table's business; skipping
it at K=10000 keeps ``make bench`` under its time budget."""


def virtual_clock() -> trio.testing.MockClock:
    """Latencies in virtual seconds: the clock jumps whenever every task is blocked."""
    return trio.testing.MockClock(autojump_threshold=0)


# --- 1. shape: overshoot and time to stop -------------------------------------------------


class Spend:
    """Shared by a run's agents: what they really spent, and when it passed the limit."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.tokens = 0
        self.calls = 0
        self.cancelled = 0
        self.breach_at: float | None = None

    def add(self, tokens: int) -> None:
        self.tokens += tokens
        if self.limit is not None and self.breach_at is None and self.tokens > self.limit:
            self.breach_at = time.perf_counter()


class Agent:
    def __init__(self, spend: Spend) -> None:
        self.spend = spend

    async def run(self, data: Any) -> AgentResult[Any]:
        await trio.lowlevel.checkpoint()
        self.spend.add(TOKENS_PER_CALL)
        return AgentResult(data, Usage(tokens=TOKENS_PER_CALL))


def build(k: int, m: int, spend: Spend, reserve: bool) -> ParallelStep:
    agent = Agent(spend)
    reservation = Usage(tokens=TOKENS_PER_CALL) if reserve else None
    branches = {
        f"b{b}": Pipeline([Step(f"s{s}", agent, reserve=reservation) for s in range(m)])
        for b in range(k)
    }
    return ParallelStep("fan", branches)


async def run_ours(k: int, m: int, limit: int | None, reserve: bool) -> dict[str, float]:
    spend = Spend(limit)
    limits = UsageLimits(total_tokens_limit=limit)
    runner = Runner(build(k, m, spend, reserve), limits=limits)
    start = time.perf_counter()
    reported = None
    try:
        result = await runner.run("x")
        reported = result.total_tokens
    except UsageLimitExceededError as error:
        reported = error.result.total_tokens
    end = time.perf_counter()
    return _figures(k, m, limit, spend, start, end, reported)


async def run_shape_floor(k: int, m: int, limit: int | None) -> dict[str, float]:
    """Plain tasks + one channel to a ledger task: the least a governed fan-out costs."""
    spend = Spend(limit)
    send, receive = trio.open_memory_channel[int](math.inf)
    start = time.perf_counter()

    async def branch(out: trio.MemorySendChannel[int]) -> None:
        with out:
            for _ in range(m):
                await trio.lowlevel.checkpoint()
                spend.add(TOKENS_PER_CALL)
                out.send_nowait(TOKENS_PER_CALL)

    async def ledger(scope: trio.CancelScope) -> None:
        total = 0
        async for tokens in receive:
            total += tokens
            if limit is not None and total > limit:
                scope.cancel(reason="floor ledger: limit breached")
                return

    async with trio.open_nursery() as outer:
        with trio.CancelScope() as scope:
            outer.start_soon(ledger, scope, name="floor-ledger")
            async with trio.open_nursery() as nursery:
                with send:
                    for b in range(k):
                        nursery.start_soon(branch, send.clone(), name=f"floor-branch-{b}")
        outer.cancel_scope.cancel(reason="floor run finished")
    end = time.perf_counter()
    return _figures(k, m, limit, spend, start, end, None)


def _figures(
    k: int, m: int, limit: int | None, spend: Spend, start: float, end: float, reported: int | None
) -> dict[str, float]:
    figures: dict[str, float] = {
        "seconds": end - start,
        "us_per_step": (end - start) / (k * m) * 1e6,
    }
    if limit is not None:
        figures["over_pct"] = max(0.0, (spend.tokens - limit) / limit * 100)
        figures["spent"] = spend.tokens
        figures["stop_ms"] = ((end - spend.breach_at) * 1e3) if spend.breach_at else 0.0
        if reported is not None:
            figures["reported"] = reported
    return figures


def measure_shape(k: int, m: int) -> dict[str, Any]:
    limit = k * m * TOKENS_PER_CALL // 2
    return {
        "k": k,
        "m": m,
        "limit_tokens": limit,
        "ours_full": trio.run(run_ours, k, m, None, False),
        "floor_full": trio.run(run_shape_floor, k, m, None),
        "ours_limit": trio.run(run_ours, k, m, limit, False),
        "ours_reserved": trio.run(run_ours, k, m, limit, True),
        "floor_limit": trio.run(run_shape_floor, k, m, limit),
    }


# --- planned calls on flujo-trio ------------------------------------------------------------


class PlannedAgent:
    """Makes the next call of its input's plan: ``(item, calls)`` -> ``(item, rest)``.

    Sleeps the call's latency and reports its tokens; counts what it really spent
    (per item too) and the calls cancelled while in flight.
    """

    def __init__(self, spend: Spend) -> None:
        self.spend = spend
        self.per_item: dict[int, int] = {}
        self.calls_per_item: dict[int, int] = {}

    async def run(self, data: tuple[int, tuple[tuple[float, int], ...]]) -> AgentResult[Any]:
        item, calls = data
        (latency, tokens), rest = calls[0], calls[1:]
        self.spend.calls += 1
        self.calls_per_item[item] = self.calls_per_item.get(item, 0) + 1
        try:
            await trio.sleep(latency)
        except trio.Cancelled:
            self.spend.cancelled += 1
            raise
        self.spend.add(tokens)
        self.per_item[item] = self.per_item.get(item, 0) + tokens
        return AgentResult((item, rest), Usage(tokens=tokens))


def _items(plan: Plan) -> list[tuple[int, tuple[tuple[float, int], ...]]]:
    return [(index, tuple(calls)) for index, calls in enumerate(plan)]


async def run_planned(plan: Plan, limit: int, reserve: bool, calls: int) -> dict[str, Any]:
    """K branches (a map over the plan) of ``calls`` sequential steps each."""
    spend = Spend(limit)
    agent = PlannedAgent(spend)
    reservation = Usage(tokens=RESERVE_TOKENS) if reserve else None
    body = Pipeline([Step(f"call{i}", agent, reserve=reservation) for i in range(calls)])
    runner = Runner(MapStep("branches", body), limits=UsageLimits(total_tokens_limit=limit))
    denied, at_denial = 0, None
    start = time.perf_counter()
    try:
        result = await runner.run(_items(plan))
    except UsageLimitExceededError as error:
        result = error.result
    seconds = time.perf_counter() - start
    if result.governor is not None:
        denied = result.governor.denied
        at_denial = result.governor.spent_at_first_denial
    return {
        "calls": spend.calls,
        "cancelled": spend.cancelled,
        "spent": spend.tokens,
        "reported": result.total_tokens,
        "denied": denied,
        "util_first_denial_pct": at_denial.tokens / limit * 100 if at_denial else None,
        "util_end_pct": spend.tokens / limit * 100,
        "over_pct": max(0.0, (spend.tokens - limit) / limit * 100),
        "seconds": seconds,
    }


# --- 2. utilization -------------------------------------------------------------------------

UTIL_POLICIES = (
    ("flujo-trio", "waits (FIFO), refuses only what can never fit"),
    ("flujo-trio, no reservations", "a breach cancels the calls in flight"),
    ("floor: wait", "the same waiting policy, by hand"),
    ("floor: refuse on first misfit", "the old policy"),
    ("floor: naive ledger", "fire-and-forget, checks after each call"),
)


def measure_utilization(k: int) -> dict[str, Any]:
    plan, limit = utilization_plan(k)
    runs: dict[str, Any] = {
        "flujo-trio": trio.run(run_planned, plan, limit, True, UTIL_CALLS, clock=virtual_clock()),
        "flujo-trio, no reservations": trio.run(
            run_planned, plan, limit, False, UTIL_CALLS, clock=virtual_clock()
        )
        if k <= NO_RESERVATION_MAX_K
        else {"not_run": "see the overshoot table"},
    }
    for name, policy in (
        ("floor: wait", "wait"),
        ("floor: refuse on first misfit", "refuse"),
        ("floor: naive ledger", "naive"),
    ):
        ledger, seconds = trio.run(run_floor, plan, policy, limit, clock=virtual_clock())
        runs[name] = {**floor_figures(ledger, seconds), "cancelled": 0}
    return {
        "k": k,
        "calls_per_branch": UTIL_CALLS,
        "limit_tokens": limit,
        "demand_tokens": demand(plan),
        "reserve_tokens": RESERVE_TOKENS,
        "runs": runs,
    }


# --- 3. per-item budgets -------------------------------------------------------------------


def scoped_outcome(
    plan: Plan, calls_per_item: dict[int, int], per_item: dict[int, int], cut: set[int]
) -> dict[str, Any]:
    """Normal items done (all their calls made), runaways stopped by their own budget,
    runaways that made all their calls (no budget held them), items lost (cancelled or
    never run), and the worst item's spend against its cap."""
    normal = [i for i in range(len(plan)) if not is_runaway(i)]
    done = {i for i in normal if calls_per_item.get(i, 0) == len(plan[i])}
    uncapped = {
        i for i in range(len(plan)) if is_runaway(i) and calls_per_item.get(i, 0) == len(plan[i])
    }
    return {
        "items": len(plan),
        "normal_done": len(done),
        "normal_items": len(normal),
        "runaways_cut": len(cut),
        "runaways_uncapped": len(uncapped),
        "runaway_items": len(plan) - len(normal),
        "lost": len(plan) - len(done) - len(cut) - len(uncapped),
        "worst_item_pct": max(per_item.values(), default=0) / SCOPED_ITEM_CAP * 100,
    }


def _done(output: Any, context: Any) -> bool:
    return not output[1]


def _limited(record: Any) -> bool:
    """Whether a step (or one inside it) was stopped by a budget of its own."""
    return "limit_scope" in record.metadata or any(_limited(s) for s in record.step_history)


def _work(agent: PlannedAgent, limits: UsageLimits | None, name: str = "work", **kw: Any):
    return LoopStep(
        name,
        Step("call", agent, reserve=Usage(tokens=RESERVE_TOKENS)),
        exit_condition=_done,
        max_loops=SCOPED_RUNAWAY_CALLS,
        limits=limits,
        **kw,
    )


async def run_scoped_map(plan: Plan) -> dict[str, Any]:
    spend = Spend(None)
    agent = PlannedAgent(spend)
    cap = UsageLimits(total_tokens_limit=SCOPED_ITEM_CAP)
    step = MapStep("items", _work(agent, None), item_limits=cap, max_concurrency=SCOPED_CONCURRENCY)
    start = time.perf_counter()
    result = await Runner(step).run(_items(plan))
    seconds = time.perf_counter() - start
    items = result.step_history[0].step_history
    cut = {int(r.name.split("[")[1].rstrip("]")) for r in items if _limited(r)}
    return {
        **scoped_outcome(plan, agent.calls_per_item, agent.per_item, cut),
        "calls": spend.calls,
        "cancelled": spend.cancelled,
        "spent": spend.tokens,
        "reported": result.total_tokens,
        "seconds": seconds,
        "outcome": "map failed" if not result.success else "map succeeded",
    }


async def run_scoped_parallel(plan: Plan) -> dict[str, Any]:
    spend = Spend(None)
    agent = PlannedAgent(spend)
    cap = UsageLimits(total_tokens_limit=SCOPED_ITEM_CAP)
    branches = {}
    for index, calls in enumerate(plan):
        first = (index, tuple(calls))
        branches[f"{index}"] = _work(
            agent,
            cap,
            f"work{index}",
            initial_input_mapper=lambda _data, _context, first=first: first,
        )
    step = ParallelStep(
        "items",
        branches,
        on_branch_failure=BranchFailure.IGNORE,
        max_concurrency=SCOPED_CONCURRENCY,
    )
    start = time.perf_counter()
    result = await Runner(step).run(None)
    seconds = time.perf_counter() - start
    cut = {int(r.name) for r in result.step_history[0].step_history if _limited(r)}
    return {
        **scoped_outcome(plan, agent.calls_per_item, agent.per_item, cut),
        "calls": spend.calls,
        "cancelled": spend.cancelled,
        "spent": spend.tokens,
        "reported": result.total_tokens,
        "seconds": seconds,
        "outcome": "step succeeded" if result.success else "step failed",
    }


async def run_scoped_floor(plan: Plan) -> dict[str, Any]:
    """Each item checks its own spend after every call and stops once past its cap."""
    per_item: dict[int, int] = {}
    calls_per_item: dict[int, int] = {}
    cut: set[int] = set()
    limiter = trio.CapacityLimiter(SCOPED_CONCURRENCY)
    start = time.perf_counter()

    async def item(index: int, calls: list[tuple[float, int]], slot: object) -> None:
        try:
            for latency, tokens in calls:
                if per_item.get(index, 0) > SCOPED_ITEM_CAP:
                    cut.add(index)
                    return
                calls_per_item[index] = calls_per_item.get(index, 0) + 1
                await trio.sleep(latency)
                per_item[index] = per_item.get(index, 0) + tokens
        finally:
            limiter.release_on_behalf_of(slot)

    async with trio.open_nursery() as nursery:
        for index, calls in enumerate(plan):
            slot = object()
            await limiter.acquire_on_behalf_of(slot)  # in declared order, as flujo-trio
            nursery.start_soon(item, index, calls, slot)
    seconds = time.perf_counter() - start
    spent = sum(per_item.values())
    return {
        **scoped_outcome(plan, calls_per_item, per_item, cut),
        "calls": sum(calls_per_item.values()),
        "cancelled": 0,
        "spent": spent,
        "reported": spent,
        "seconds": seconds,
        "outcome": "-",
    }


def measure_scoped(items: int) -> dict[str, Any]:
    plan = scoped_plan(items)
    return {
        "items": items,
        "item_cap_tokens": SCOPED_ITEM_CAP,
        "concurrency": SCOPED_CONCURRENCY,
        "runs": {
            "flujo-trio MapStep(item_limits=)": trio.run(
                run_scoped_map, plan, clock=virtual_clock()
            ),
            "flujo-trio ParallelStep, LoopStep(limits=), IGNORE": trio.run(
                run_scoped_parallel, plan, clock=virtual_clock()
            ),
            "floor: per-item check after each call": trio.run(
                run_scoped_floor, plan, clock=virtual_clock()
            ),
        },
    }


# --- 4. delegations under a request limit ----------------------------------------------------


async def run_delegations(plan: Plan) -> dict[str, Any]:
    """A planner step, then a map of 8 delegations; each delegation's first request is
    its step's call, the later ones go through ``meter.request`` (a tool loop)."""
    spend = Spend(None)

    async def request(latency: float, tokens: int) -> Usage:
        spend.calls += 1
        try:
            await trio.sleep(latency)
        except trio.Cancelled:
            spend.cancelled += 1
            raise
        spend.add(tokens)
        return Usage(tokens=tokens)

    async def planner(data: Any) -> AgentResult[Any]:
        used = await request(*plan[0][0])
        return AgentResult(list(range(1, DELEGATIONS + 1)), used)

    async def delegate(index: int, meter: Any) -> AgentResult[Any]:
        first, *later = plan[index]
        total = await request(*first)
        meter.add(total)
        for latency, tokens in later:
            async with meter.request(Usage(tokens=RESERVE_TOKENS)) as pending:
                used = await request(latency, tokens)
                pending.settle(used)
            total = total + used
        return AgentResult(index, total)

    pipeline = Step("plan", planner) >> MapStep("delegate", Step("delegation", delegate))
    runner = Runner(pipeline, limits=UsageLimits(total_requests_limit=REQUEST_LIMIT))
    message = None
    try:
        result = await runner.run("task")
    except UsageLimitExceededError as error:
        message, result = str(error), error.result
    governor = result.governor
    return {
        "calls": spend.calls,
        "cancelled": spend.cancelled,
        "spent": spend.tokens,
        "reported": result.total_tokens,
        "requests_counted": governor.requests if governor is not None else None,
        "message": message,
    }


def summarize_trials(trials: list[dict[str, Any]]) -> dict[str, Any]:
    calls = [t["calls"] for t in trials]
    return {
        "trials": len(trials),
        "calls_min": min(calls),
        "calls_max": max(calls),
        "calls_mean": sum(calls) / len(calls),
        "cancelled_max": max(t.get("cancelled", 0) for t in trials),
        "over_limit_trials": sum(1 for c in calls if c > REQUEST_LIMIT),
        "messages": sorted({t["message"] for t in trials if t.get("message")}),
        "reported_vs_real": [(t.get("reported"), t.get("spent")) for t in trials[:3]],
    }


def measure_delegations(trials: int = DELEGATION_TRIALS) -> dict[str, Any]:
    runs = [
        trio.run(run_delegations, delegation_plan(trial), clock=virtual_clock())
        for trial in range(trials)
    ]
    return {
        "delegations": DELEGATIONS,
        "requests_each": DELEGATION_REQUESTS,
        "request_limit": REQUEST_LIMIT,
        "flujo-trio": summarize_trials(runs),
    }


# --- driver -------------------------------------------------------------------------------


def run(
    ks: tuple[int, ...] = (10, 100, 1000, 10000), m: int = 5, scoped_items: tuple[int, ...] = (100,)
) -> dict[str, Any]:
    return {
        "shape": [measure_shape(k, m) for k in ks],
        "utilization": [measure_utilization(k) for k in ks],
        "scoped": [measure_scoped(n) for n in scoped_items],
        "delegation": measure_delegations(),
    }


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def report_shape(rows: list[dict[str, Any]]) -> None:
    print_table(
        f"Governance: K branches x M steps, token limit at half the demand "
        f"({TOKENS_PER_CALL} tokens per call)",
        [
            "K",
            "M",
            "us/step",
            "floor",
            "ratio",
            "over% no-res",
            "over% res",
            "floor over%",
            "stop ms",
            "floor ms",
            "ratio",
            "reported/spent",
        ],
        [
            [
                r["k"],
                r["m"],
                f"{r['ours_full']['us_per_step']:.1f}",
                f"{r['floor_full']['us_per_step']:.1f}",
                ratio(r["ours_full"]["us_per_step"], r["floor_full"]["us_per_step"]),
                f"{r['ours_limit']['over_pct']:.1f}",
                f"{r['ours_reserved']['over_pct']:.1f}",
                f"{r['floor_limit']['over_pct']:.1f}",
                f"{r['ours_limit']['stop_ms']:.2f}",
                f"{r['floor_limit']['stop_ms']:.2f}",
                ratio(r["ours_limit"]["stop_ms"], r["floor_limit"]["stop_ms"]),
                f"{r['ours_limit'].get('reported', 0)}/{r['ours_limit']['spent']}",
            ]
            for r in rows
        ],
    )


def utilization_rows(
    rows: list[dict[str, Any]], peers: dict[str, dict[int, dict[str, Any]]] | None = None
) -> list[list[Any]]:
    """One line per K and runtime or policy; ``peers`` maps a peer's name to its runs by K."""
    table: list[list[Any]] = []
    for row in rows:
        k = row["k"]
        runs = dict(row["runs"])
        for name, by_k in (peers or {}).items():
            runs[name] = by_k.get(k) or {"not_run": "not run at this K"}
        floor_s = row["runs"]["floor: wait"]["seconds"]
        for name, figures in runs.items():
            if "not_run" in figures:
                continue  # said once under the table
            table.append(
                [
                    k,
                    name,
                    figures["calls"],
                    figures.get("cancelled", 0),
                    f"{figures['reported']}/{figures['spent']}",
                    _pct(figures.get("util_first_denial_pct")),
                    _pct(figures["util_end_pct"]),
                    _pct(figures["over_pct"]),
                    f"{figures['seconds']:.3f}"
                    + ("" if name.startswith(("flujo-trio", "floor")) else "*"),
                    ratio(figures["seconds"], floor_s)
                    if name.startswith(("flujo-trio", "floor"))
                    else "-",
                ]
            )
    return table


UTIL_HEADER = [
    "K",
    "runtime / policy",
    "calls",
    "cancelled",
    "reported/real",
    "util% 1st denial",
    "util% end",
    "over%",
    "time s",
    "vs wait floor",
]


def report_utilization(rows: list[dict[str, Any]], peers: Any = None) -> None:
    print_table(
        f"Budget utilization: K branches x {UTIL_CALLS} calls of 5-15 tokens (mean 10), "
        f"reservations {RESERVE_TOKENS} tokens, limit at half the demand",
        UTIL_HEADER,
        utilization_rows(rows, peers),
    )
    print(
        f"  flujo-trio without reservations runs at K <= {NO_RESERVATION_MAX_K} (its overshoot "
        "at larger K is in the table above); a peer missing at a K was not run there"
    )
    if peers:
        print(
            "  * on asyncio's real clock, each call's latency (5-15 ms) included; flujo-trio "
            "and the floors run on virtual time, so theirs is the runtime's own cost"
        )


def scoped_rows(rows: list[dict[str, Any]], peers: dict[str, Any] | None = None) -> list[list[Any]]:
    table: list[list[Any]] = []
    for row in rows:
        runs = dict(row["runs"])
        for name, figures in (peers or {}).items():
            runs[name] = figures
        for name, f in runs.items():
            if "not_expressible" in f:
                table.append([row["items"], name, f["not_expressible"], *[""] * 8])
                continue
            table.append(
                [
                    row["items"],
                    name,
                    f["calls"],
                    f.get("cancelled", 0),
                    f"{f['normal_done']}/{f['normal_items']}",
                    f"{f['runaways_cut']}/{f['runaway_items']}"
                    + (
                        f" ({f['runaways_uncapped']} ran all)" if f.get("runaways_uncapped") else ""
                    ),
                    f["lost"],
                    f"{f['worst_item_pct']:.0f}",
                    f"{f['reported']}/{f['spent']}",
                    f"{f['seconds']:.3f}",
                    str(f.get("outcome", "-"))[:48],
                ]
            )
    return table


SCOPED_HEADER = [
    "items",
    "runtime",
    "calls",
    "cancelled",
    "normal done",
    "runaways stopped by own cap",
    "items lost",
    "worst item % of cap",
    "reported/real",
    "time s",
    "outcome",
]


def report_scoped(rows: list[dict[str, Any]], peers: Any = None) -> None:
    print_table(
        f"Per-item budgets: items of {SCOPED_NORMAL_CALLS[0]}-{SCOPED_NORMAL_CALLS[1]} calls, "
        f"every {SCOPED_RUNAWAY_EVERY}th a runaway of {SCOPED_RUNAWAY_CALLS}, "
        f"{SCOPED_CONCURRENCY} at a time; each item may spend {SCOPED_ITEM_CAP} tokens",
        SCOPED_HEADER,
        scoped_rows(rows, peers),
    )


def delegation_rows(ours: dict[str, Any], peers: dict[str, Any] | None = None) -> list[list[Any]]:
    runs = {"flujo-trio": ours["flujo-trio"], **(peers or {})}
    table = []
    for name, s in runs.items():
        if "not_expressible" in s:
            table.append([name, "-", "-", "-", s["not_expressible"]])
            continue
        table.append(
            [
                name,
                f"{s['calls_min']}-{s['calls_max']} (mean {s['calls_mean']:.1f})",
                f"{s['over_limit_trials']}/{s['trials']}",
                s["cancelled_max"],
                "; ".join(m[:60] for m in s["messages"]) or "-",
            ]
        )
    return table


def report_delegation(data: dict[str, Any], peers: Any = None) -> None:
    print_table(
        f"{data['delegations']} concurrent delegations of {data['requests_each']} requests "
        f"each after 1 planner request, request limit {data['request_limit']} "
        "(pydantic-ai-harness#696)",
        ["runtime", "calls made", "trials over limit", "max cancelled in flight", "message"],
        delegation_rows(data, peers),
    )


def report(data: dict[str, Any], peers: dict[str, Any] | None = None) -> None:
    peers = peers or {}
    report_shape(data["shape"])
    report_utilization(data["utilization"], peers.get("utilization"))
    report_scoped(data["scoped"], peers.get("scoped"))
    report_delegation(data["delegation"], peers.get("delegation"))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--ks", default="10,100,1000,10000")
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    data = run(tuple(int(k) for k in args.ks.split(",")), args.steps)
    report(data)
    print(write_results("governance", data))


if __name__ == "__main__":
    main()
