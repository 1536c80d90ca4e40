"""Spend over time under a token limit: waiting admission vs refusing vs no admission.

The scenario of issue 11: a map over 20 documents, 5 at a time, under a limit of 600
tokens; every call reserves 181 tokens and really uses 20 to 58 (mean 39), taking
0.5 to 1.5 seconds. One real run of each, on virtual time (Trio's ``MockClock``):

- flujo-trio (waiting admission), its spend read from ``UsageUpdated`` events;
- the deny-on-first-misfit policy flujo-trio had before (the floor in
  :mod:`benchmarks.budget_floors`): the 4th reservation does not fit beside three in
  flight, so the run stops;
- a fire-and-forget ledger with no admission at all: it stops after the limit is
  passed, and what was in flight is spent anyway.

``python -m benchmarks.budget_chart`` redraws ``docs/_static/benchmarks/spend_over_time.png``
(``--out`` to write elsewhere) and writes the traces to
``benchmarks/results/spend_over_time.json``; ``make bench`` draws it too.
"""

from __future__ import annotations

import argparse
import pathlib
from typing import Any

import trio

from flujo_trio import (
    MapStep,
    Runner,
    Step,
    Usage,
    UsageLimitExceededError,
    UsageLimits,
    UsageUpdated,
)

from .budget_floors import run_floor
from .budget_plans import make_plan
from .governance import PlannedAgent, Spend, _items, virtual_clock
from .support import write_results

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs" / "_static" / "benchmarks"
ITEMS, CONCURRENCY, LIMIT, RESERVE, MEAN = 20, 5, 600, 181, 39
SEED = 11


async def _waiting(plan: list[list[tuple[float, int]]]) -> dict[str, Any]:
    trace: list[tuple[float, int]] = [(0.0, 0)]

    def hook(event: object) -> None:
        if isinstance(event, UsageUpdated):
            trace.append((trio.current_time(), event.total.tokens))

    agent = PlannedAgent(Spend(LIMIT))
    step = MapStep(
        "docs",
        Step("classify", agent, reserve=Usage(tokens=RESERVE)),
        max_concurrency=CONCURRENCY,
    )
    runner = Runner(step, limits=UsageLimits(total_tokens_limit=LIMIT), hooks=[hook])
    start = trio.current_time()
    try:
        result = await runner.run(_items(plan))
    except UsageLimitExceededError as error:
        result = error.result
    at_denial = result.governor.spent_at_first_denial if result.governor else None
    denial = None
    if at_denial is not None:  # placed where the run's spend first reached that figure
        when = next(t for t, spent in trace if spent >= at_denial.tokens) if trace else start
        denial = (when - start, at_denial.tokens)
    return {
        "trace": [(t - start, spent) for t, spent in trace],
        "first_denial": denial,
        "calls": agent.spend.calls,
    }


async def _floor(plan: list[list[tuple[float, int]]], policy: str) -> dict[str, Any]:
    start = trio.current_time()
    ledger, _ = await run_floor(
        plan, policy, LIMIT, reserve=RESERVE, concurrency=CONCURRENCY, trace=True
    )
    trace = [(0.0, 0), *((t - start, spent) for t, spent in ledger.trace or [])]
    denial = None
    if ledger.spent_at_first_denial is not None:
        spent = ledger.spent_at_first_denial
        # The refusal happens right after the settlement that left ``spent``.
        denial = next(((t, s) for t, s in trace if s == spent), (0.0, spent))
    return {"trace": trace, "first_denial": denial, "calls": ledger.calls}


def measure() -> dict[str, Any]:
    plan = make_plan(ITEMS, 1, SEED, mean=MEAN)
    return {
        "items": ITEMS,
        "concurrency": CONCURRENCY,
        "limit_tokens": LIMIT,
        "reserve_tokens": RESERVE,
        "demand_tokens": sum(tokens for calls in plan for _, tokens in calls),
        "waiting": trio.run(_waiting, plan, clock=virtual_clock()),
        "refusing": trio.run(_floor, plan, "refuse", clock=virtual_clock()),
        "naive": trio.run(_floor, plan, "naive", clock=virtual_clock()),
    }


def draw(data: dict[str, Any], path: pathlib.Path) -> pathlib.Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    limit, reserve = data["limit_tokens"], data["reserve_tokens"]
    series = (
        ("waiting", "flujo-trio: waits for room (FIFO)", "#1971c2", "-"),
        ("refusing", "refuses the first misfit (the old policy)", "#e8590c", "-"),
        ("naive", "no admission: checks after each call", "#868e96", "--"),
    )
    with plt.rc_context({"font.size": 10}):
        fig, ax = plt.subplots(figsize=(7, 3.8))
        end = max(t for key, *_ in series for t, _ in data[key]["trace"])
        for key, label, color, style in series:
            trace = data[key]["trace"]
            times = [t for t, _ in trace] + [end]
            spent = [s for _, s in trace] + [trace[-1][1]]
            calls = data[key]["calls"]
            ax.step(times, spent, where="post", color=color, linestyle=style, label=label)
            ax.annotate(
                f"{spent[-1]} tokens, {calls} calls",
                (end, spent[-1]),
                textcoords="offset points",
                xytext=(-4, 4),
                ha="right",
                fontsize=8,
                color=color,
            )
            denial = data[key].get("first_denial")
            if denial is not None:
                ax.plot([denial[0]], [denial[1]], "x", color=color, markersize=9, mew=2)
        ax.axhline(limit, color="#c92a2a", linewidth=1)
        ax.text(end * 0.6, limit + 8, f"limit {limit}", color="#c92a2a", fontsize=8)
        ax.axhline(limit - reserve, color="#c92a2a", linewidth=0.8, linestyle=":")
        ax.text(
            0.02,
            limit - reserve + 8,
            f"limit - reservation ({limit - reserve}): no denial before this",
            color="#c92a2a",
            fontsize=8,
        )
        ax.set(
            xlabel="seconds (virtual time)",
            ylabel="tokens spent",
            title=(
                f"{data['items']} documents, {data['concurrency']} at a time, "
                f"reservations of {reserve} tokens (x: first denial)"
            ),
            ylim=(0, max(limit * 1.25, max(s for _, s in data["naive"]["trace"]) * 1.08)),
        )
        ax.legend(fontsize=8, loc="upper left")
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=DOCS / "spend_over_time.png")
    args = parser.parse_args()
    data = measure()
    print(write_results("spend_over_time", data))
    for key in ("waiting", "refusing", "naive"):
        run = data[key]
        print(
            f"{key:>8}: {run['calls']} calls, {run['trace'][-1][1]} tokens, "
            f"first denial {run['first_denial']}"
        )
    print(f"chart: {draw(data, args.out)}")


if __name__ == "__main__":
    main()
