"""The benchmark workloads, run against the incumbent: flujo 0.6.11 on asyncio.

This script runs ONLY inside the incumbent's virtual environment (``.bench-flujo-venv``,
made by ``benchmarks/incumbent.py``), as a subprocess of our benchmark suite. It imports flujo, its dependencies and the
standard library, never ``flujo_trio``. It prints one JSON document on stdout; logs and
warnings go to stderr (during the workloads file descriptor 1 is pointed at stderr, so
nothing flujo prints can corrupt the document).

Every agent is a trivial async object: ``run(data, **kwargs)`` does ``await
asyncio.sleep(0)`` and returns an output carrying ``token_counts=10`` and
``cost_usd=0.0``, the attributes flujo reads usage from. Workloads:

- ``overhead``: sequential pipelines of ``--sizes`` steps (each step its own Step and
  agent), one warm-up run, then ``--repeats`` runs of the same ``Flujo`` runner; the
  median wall time of ``await run_result_async()`` per step, in µs.
- ``fanout``: one parallel step of K branches (``--ks``), each branch the same pipeline
  of M steps (``--steps``); wall seconds of the run, peak RSS growth (the kernel's
  peak mark is reset through ``/proc/self/clear_refs`` before the run; VmHWM after it
  minus VmRSS before it) and that growth per branch. Memory freed by earlier cases
  can be reused, so growth is a lower bound.
- ``governance``: the fan-out of K branches x M (``--gov-steps``) steps under
  ``UsageLimits(total_tokens_limit=K*M*10 // 2)``, half the demand. The agents add to a
  shared counter as they return (the true spend); it records when that counter first
  passed the limit. Reports the spend (read 100 ms after the run, to include any
  branch still running), the overshoot, the total the result or the exception's result
  reports, ``stop_ms`` (counter past the limit -> run returned or raised), what was
  raised, and µs per step of the same shape run without a limit.
- ``cancellation``: one parallel step of N branches (``--cancel-ns``) whose agents count
  themselves in and then wait on an event that is never set. Once all N are in flight
  the task running the pipeline is cancelled with ``Task.cancel()``: ms until the task
  is done, whether it returned a result instead of raising ``CancelledError``, and how
  many agent calls had still not exited (by cancellation or otherwise) 100 ms later.

Branches of one parallel step share one Pipeline object (its steps and agents), as in
our own fan-out benchmark: flujo builds a Pipeline in ~3 ms (it reloads its settings
each time), which for N = 10000 would add half a minute of set-up and changes nothing
in the runs (measured: same time and tokens with K distinct pipelines). Pipelines and
runners are built outside the timed sections. The parallel step keeps flujo's default
merge strategy (``CONTEXT_UPDATE``), which is what a flujo user gets.

Isolation: runners are made with ``persist_state=False`` and ``enable_tracing=False``;
telemetry export (logfire, OTLP, OpenTelemetry SDK) is switched off through the
environment before flujo is imported; ``FLUJO_CONFIG_PATH`` and ``FLUJO_STATE_URI`` are
dropped and the script works in a fresh temporary directory, so no ``flujo.toml`` or
``.env`` of the caller is read, and the ``flujo.lock`` flujo writes after each
successful run (the constructor cannot switch that off) lands there and is deleted.
Outbound sockets and DNS lookups are refused for the whole process; an attempt is
reported under ``errors["network"]``. flujo's own logger is set to WARNING, as flujo
does itself in CI, so its per-step INFO lines are not timed.

Usage: ``.bench-flujo-venv/bin/python benchmarks/flujo_workloads.py [--ks 10,100,1000]
[--steps 3] [--gov-steps 5] [--sizes 10,100] [--cancel-ns 1000,10000] [--repeats 20]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib.metadata
import json
import logging
import os
import pathlib
import platform
import socket
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

TOKENS_PER_CALL = 10
SETTLE_S = 0.1  # "100 ms after": spend re-read, leftover agents counted
START_TIMEOUT_S = 600.0  # cancellation: longest wait for all N agents to be in flight
UNWIND_TIMEOUT_S = 60.0  # cancellation: longest wait for the cancelled task to finish
DRAIN_TIMEOUT_S = 30.0  # cancellation clean-up: longest wait for released agents to exit

_ENV_OFF = {
    "TELEMETRY_EXPORT_ENABLED": "false",
    "OTLP_EXPORT_ENABLED": "false",
    "LOGFIRE_SEND_TO_LOGFIRE": "false",
    "OTEL_SDK_DISABLED": "true",
    "OTEL_TRACES_EXPORTER": "none",
    "OTEL_METRICS_EXPORTER": "none",
    "OTEL_LOGS_EXPORTER": "none",
    "FLUJO_MEMORY_INDEXING_ENABLED": "false",
}
_ENV_DROP = ("FLUJO_CONFIG_PATH", "FLUJO_STATE_URI", "FLUJO_TEST_MODE", "OTLP_ENDPOINT")

try:
    from . import budget_plans as plans  # imported as benchmarks.flujo_workloads
except ImportError:  # run as a script in the incumbent's venv: benchmarks/ is on sys.path
    import budget_plans as plans  # type: ignore[no-redef]

BUDGET_SCALE_S = 0.01
"""A virtual second of a budget plan is 10 ms of asyncio's clock here."""

Case = TypeVar("Case")
Row = dict[str, Any]
_network_attempts: list[str] = []


def log(message: str) -> None:
    print(f"[flujo_workloads] {message}", file=sys.stderr, flush=True)


# --- isolation ------------------------------------------------------------------------


def _isolate_environment() -> None:
    """Switch telemetry export off and forget caller config, before flujo is imported."""
    os.environ.update(_ENV_OFF)
    for name in _ENV_DROP:
        os.environ.pop(name, None)


def _refuse(what: str) -> NoReturn:
    _network_attempts.append(what)
    raise PermissionError(f"network access is disabled in this benchmark: {what}")


def _block_network() -> None:
    """Refuse outbound connections and name lookups; local (AF_UNIX) sockets still work."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def connect(self: socket.socket, address: Any) -> None:
        if self.family != socket.AF_UNIX:
            _refuse(f"connect {address!r}")
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if self.family != socket.AF_UNIX:
            _refuse(f"connect_ex {address!r}")
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> NoReturn:
        _refuse(f"getaddrinfo {host!r}:{port!r}")

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Point fd 1 (and sys.stdout) at stderr, so only the JSON document reaches stdout."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


@dataclass(frozen=True)
class FlujoApi:
    """The parts of flujo the workloads use (imported after isolation is in place)."""

    version: str
    flujo: Any
    step: Any
    pipeline: Any
    usage_limits: Any
    reserved: Any
    """A ``StepConfig`` carrying ``expected_tokens``: flujo's reservation for a step."""
    branch_failure: Any


def _load_flujo() -> FlujoApi:
    import flujo
    from flujo.domain.dsl.parallel import BranchFailureStrategy
    from flujo.domain.dsl.step import StepConfig
    from flujo.domain.models import UsageLimits

    class Reserved(StepConfig):  # type: ignore[misc, valid-type]
        """flujo's estimator reads ``step.config.expected_tokens`` as the reservation."""

        expected_tokens: int = plans.RESERVE_TOKENS

    logging.getLogger("flujo").setLevel(logging.WARNING)
    return FlujoApi(
        version=importlib.metadata.version("flujo"),
        flujo=flujo.Flujo,
        step=flujo.Step,
        pipeline=flujo.Pipeline,
        usage_limits=UsageLimits,
        reserved=Reserved,
        branch_failure=BranchFailureStrategy,
    )


# --- memory -----------------------------------------------------------------------------


def _status_kib(field: str) -> int | None:
    try:
        for line in pathlib.Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


# --- agents and pipelines ---------------------------------------------------------------


class Output:
    """An agent's output; flujo reads usage from ``token_counts`` and ``cost_usd``."""

    def __init__(self, value: Any) -> None:
        self.value = value
        self.token_counts = TOKENS_PER_CALL
        self.cost_usd = 0.0


class Spend:
    """Shared by a run's agents: what they really spent, and when it passed the limit."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self.tokens = 0
        self.breach_at: float | None = None

    def add(self, tokens: int) -> None:
        self.tokens += tokens
        if self.limit is not None and self.breach_at is None and self.tokens > self.limit:
            self.breach_at = time.perf_counter()


class Agent:
    """A trivial agent: one scheduler round trip, then 10 tokens and no cost."""

    def __init__(self, spend: Spend | None = None) -> None:
        self.spend = spend

    async def run(self, data: Any, **kwargs: Any) -> Output:
        await asyncio.sleep(0)
        if self.spend is not None:
            self.spend.add(TOKENS_PER_CALL)
        return Output(data)


class BlockingAgent:
    """Counts itself in, then waits on an event nobody sets during the measurement."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.started = 0
        self.exited = 0
        self.cancelled = 0
        self.all_in_flight = asyncio.Event()
        self.all_exited = asyncio.Event()
        self.release = asyncio.Event()

    async def run(self, data: Any, **kwargs: Any) -> Output:
        self.started += 1
        if self.started >= self.n:
            self.all_in_flight.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.exited += 1
            if self.exited >= self.n:
                self.all_exited.set()
        return Output(data)

    @property
    def running(self) -> int:
        return self.started - self.exited


def _sequence(api: FlujoApi, agents: Sequence[Any]) -> Any:
    steps = [api.step(name=f"s{index}", agent=agent) for index, agent in enumerate(agents)]
    return api.pipeline.model_validate({"steps": steps})


def _fan(api: FlujoApi, k: int, branch: Any) -> Any:
    return api.step.parallel("fan", {f"b{index}": branch for index in range(k)})


def _runner(api: FlujoApi, pipeline: Any, limits: Any = None) -> Any:
    return api.flujo(
        pipeline,
        usage_limits=limits,
        persist_state=False,
        enable_tracing=False,
        pipeline_name="flujo-workloads",
    )


def _require_success(result: Any, what: str) -> None:
    if not getattr(result, "success", False):
        history = getattr(result, "step_history", None) or []
        feedback = getattr(history[-1], "feedback", None) if history else None
        raise RuntimeError(f"{what} did not succeed: {feedback!r}")


# --- workloads ----------------------------------------------------------------------------


async def _overhead(api: FlujoApi, steps: int, repeats: int) -> Row:
    runner = _runner(api, _sequence(api, [Agent() for _ in range(steps)]))
    _require_success(await runner.run_result_async(0), f"warm-up of {steps} steps")
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = await runner.run_result_async(0)
        samples.append((time.perf_counter() - start) / steps * 1e6)
        _require_success(result, f"pipeline of {steps} steps")
    return {"steps": steps, "us_per_step": statistics.median(samples)}


async def _fanout(api: FlujoApi, k: int, m: int) -> Row:
    runner = _runner(api, _fan(api, k, _sequence(api, [Agent() for _ in range(m)])))
    gc.collect()
    reset = _reset_peak_rss()
    before = _status_kib("VmRSS")
    start = time.perf_counter()
    result = await runner.run_result_async(0)
    seconds = time.perf_counter() - start
    peak = _status_kib("VmHWM")
    _require_success(result, f"fan-out K={k} M={m}")
    grown = (peak - before) * 1024 if reset and peak is not None and before is not None else None
    return {
        "k": k,
        "m": m,
        "seconds": seconds,
        "peak_rss_bytes": grown,
        "bytes_per_branch": grown / k if grown is not None else None,
    }


async def _governed(api: FlujoApi, k: int, m: int, limit: int) -> Row:
    spend = Spend(limit)
    runner = _runner(
        api,
        _fan(api, k, _sequence(api, [Agent(spend) for _ in range(m)])),
        api.usage_limits(total_tokens_limit=limit),
    )
    raised: str | None = None
    reported: int | None = None
    start = time.perf_counter()
    try:
        result = await runner.run_result_async(0)
        end = time.perf_counter()
        reported = int(result.total_tokens)
    except Exception as error:
        end = time.perf_counter()
        raised = type(error).__name__
        carried = getattr(error, "result", None)
        if carried is not None:
            reported = int(carried.total_tokens)
        log(f"governance K={k} M={m}: {raised}: {error}")
    spent_by_return = spend.tokens
    await asyncio.sleep(SETTLE_S)  # anything still running keeps spending
    log(f"governance K={k} M={m}: {end - start:.3f}s, spent {spent_by_return} by the return")
    return {
        "limit_tokens": limit,
        "spent_tokens": spend.tokens,
        "over_pct": max(0.0, (spend.tokens - limit) / limit * 100) if limit else 0.0,
        "reported_tokens": reported,
        "stop_ms": (end - spend.breach_at) * 1e3 if spend.breach_at is not None else None,
        "raised": raised,
    }


async def _unlimited_us_per_step(api: FlujoApi, k: int, m: int) -> float:
    runner = _runner(api, _fan(api, k, _sequence(api, [Agent() for _ in range(m)])))
    start = time.perf_counter()
    result = await runner.run_result_async(0)
    seconds = time.perf_counter() - start
    _require_success(result, f"unlimited fan-out K={k} M={m}")
    return seconds / (k * m) * 1e6


def _governance(api: FlujoApi, k: int, m: int) -> Row:
    limit = k * m * TOKENS_PER_CALL // 2
    governed = asyncio.run(_governed(api, k, m, limit))
    us_per_step = asyncio.run(_unlimited_us_per_step(api, k, m))
    return {"k": k, "m": m, **governed, "us_per_step": us_per_step}


async def _cancellation(api: FlujoApi, n: int, notes: list[str]) -> Row:
    agent = BlockingAgent(n)
    runner = _runner(api, _fan(api, n, _sequence(api, [agent])))
    task = asyncio.create_task(runner.run_result_async(0))
    in_flight = asyncio.create_task(agent.all_in_flight.wait())
    await asyncio.wait(
        {task, in_flight}, timeout=START_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
    )
    if not agent.all_in_flight.is_set():
        in_flight.cancel()
        agent.release.set()
        raise RuntimeError(
            f"only {agent.started} of {n} agent calls were in flight (run finished: {task.done()})"
        )
    began = time.perf_counter()
    task.cancel()
    await asyncio.wait({task}, timeout=UNWIND_TIMEOUT_S)
    ms = (time.perf_counter() - began) * 1e3
    returned_result = False
    if not task.done():
        notes.append(f"N={n}: the cancelled run had not finished after {UNWIND_TIMEOUT_S:.0f}s")
    elif not task.cancelled():
        error = task.exception()
        if error is None:
            returned_result = True
            result = task.result()
            log(
                f"cancellation N={n}: the cancelled run returned {type(result).__name__} "
                f"success={getattr(result, 'success', None)} "
                f"status={getattr(result, 'status', None)!r} "
                f"steps={len(getattr(result, 'step_history', None) or [])}"
            )
        else:
            notes.append(f"N={n}: the cancelled run raised {type(error).__name__}: {error}")
    await asyncio.sleep(SETTLE_S)
    still_running = agent.running
    log(
        f"cancellation N={n}: {ms:.1f} ms, returned_result={returned_result}, "
        f"{agent.cancelled} agents saw CancelledError, {still_running} still running"
    )
    await _release(agent, task)
    return {
        "in_flight": n,
        "ms": ms,
        "returned_result": returned_result,
        "agents_still_running": still_running,
    }


async def _release(agent: BlockingAgent, task: asyncio.Task[Any]) -> None:
    """Clean-up after the measurement: let leftover agent calls finish, so they do not
    leak into the next case (asyncio.run would cancel whatever is still left)."""
    agent.release.set()
    exited = asyncio.create_task(agent.all_exited.wait())
    await asyncio.wait({exited, task}, timeout=DRAIN_TIMEOUT_S)
    exited.cancel()
    if agent.running:
        log(f"clean-up: {agent.running} agent calls were still running after release")


# --- budgets: the plans of benchmarks/budget_plans.py ----------------------------------


class Tally:
    """What a budget run's agents really did."""

    def __init__(self) -> None:
        self.calls = 0
        self.cancelled = 0
        self.running = 0
        self.tokens = 0
        self.per_item: dict[int, int] = {}
        self.calls_per_item: dict[int, int] = {}


class PlannedOutput:
    """A planned call's output, with its real tokens (read by flujo)."""

    def __init__(self, value: Any, tokens: int) -> None:
        self.value = value
        self.token_counts = tokens
        self.cost_usd = 0.0


class PlanAgent:
    """Plays one branch of a plan: each call sleeps its latency (scaled to ms) and
    returns its tokens."""

    def __init__(self, item: int, calls: Sequence[tuple[float, int]], tally: Tally) -> None:
        self.item, self.calls, self.tally = item, list(calls), tally
        self.made = 0

    async def run(self, data: Any, **kwargs: Any) -> PlannedOutput:
        tally, item = self.tally, self.item
        latency, tokens = self.calls[min(self.made, len(self.calls) - 1)]
        self.made += 1
        tally.calls += 1
        tally.running += 1
        tally.calls_per_item[item] = tally.calls_per_item.get(item, 0) + 1
        try:
            await asyncio.sleep(latency * BUDGET_SCALE_S)
        except asyncio.CancelledError:
            tally.cancelled += 1
            raise
        finally:
            tally.running -= 1
        tally.tokens += tokens
        tally.per_item[item] = tally.per_item.get(item, 0) + tokens
        return PlannedOutput(data, tokens)

    @property
    def done(self) -> bool:
        """The branch's task is done (flujo hands exit conditions the unwrapped output,
        so the loop asks the agent)."""
        return self.made >= len(self.calls)


def _planned_step(api: FlujoApi, name: str, agent: PlanAgent, reserve: bool) -> Any:
    config = {"config": api.reserved()} if reserve else {}
    return api.step(name=name, agent=agent, **config)


async def _run_governed(runner: Any) -> tuple[Any, str | None, float]:
    """``(result or None, what was raised, seconds)``; the result of a raised error
    is taken from the error when it carries one."""
    start = time.perf_counter()
    try:
        result = await runner.run_result_async(0)
        raised = None
    except Exception as error:
        result = getattr(error, "result", None)
        raised = f"{type(error).__name__}: {error}"
    return result, raised, time.perf_counter() - start


async def _budget_utilization(api: FlujoApi, k: int, reserve: bool) -> Row:
    plan, limit = plans.utilization_plan(k)
    tally = Tally()
    branches = {
        f"b{b}": api.pipeline.model_validate(
            {
                "steps": [
                    _planned_step(api, f"c{i}", agent, reserve)
                    for i, agent in enumerate([PlanAgent(b, calls, tally)] * len(calls))
                ]
            }
        )
        for b, calls in enumerate(plan)
    }
    runner = _runner(
        api, api.step.parallel("fan", branches), api.usage_limits(total_tokens_limit=limit)
    )
    result, raised, seconds = await _run_governed(runner)
    running = tally.running
    await asyncio.sleep(SETTLE_S)  # anything still running keeps spending
    log(f"budget utilization K={k} reserve={reserve}: {seconds:.2f}s, {raised}")
    return {
        "k": k,
        "reserve": reserve,
        "limit_tokens": limit,
        "calls": tally.calls,
        "cancelled": tally.cancelled,
        "still_running": running,
        "spent": tally.tokens,
        "reported": int(result.total_tokens) if result is not None else None,
        "util_first_denial_pct": None,
        "util_end_pct": tally.tokens / limit * 100,
        "over_pct": max(0.0, (tally.tokens - limit) / limit * 100),
        "seconds": seconds,
        "raised": raised,
    }


async def _budget_scoped(api: FlujoApi, items: int, how: str) -> Row:
    """Per-item budgets: ``step_limits`` declares ``usage_limits`` on each item's loop
    step; ``split`` sets a run limit of items x cap with reservations, which flujo
    splits evenly across the parallel branches."""
    plan = plans.scoped_plan(items)
    tally = Tally()
    cap = plans.SCOPED_ITEM_CAP
    reserve = how == "split"
    branches = {}
    for index, calls in enumerate(plan):
        agent = PlanAgent(index, calls, tally)
        body = api.pipeline.model_validate({"steps": [_planned_step(api, "call", agent, reserve)]})
        loop = api.step.loop_until(
            name=f"work{index}",
            loop_body_pipeline=body,
            exit_condition_callable=lambda _output, _context, agent=agent: agent.done,
            max_loops=plans.SCOPED_RUNAWAY_CALLS,
        )
        if how == "step_limits":
            loop.usage_limits = api.usage_limits(total_tokens_limit=cap)
        branches[f"{index}"] = api.pipeline.model_validate({"steps": [loop]})
    fan = api.step.parallel("items", branches, on_branch_failure=api.branch_failure.IGNORE)
    limits = api.usage_limits(total_tokens_limit=cap * items) if how == "split" else None
    result, raised, seconds = await _run_governed(_runner(api, fan, limits))
    await asyncio.sleep(SETTLE_S)
    log(f"budget scoped items={items} {how}: {seconds:.2f}s, {raised}")
    normal = [i for i in range(len(plan)) if not plans.is_runaway(i)]
    done = {i for i in normal if tally.calls_per_item.get(i, 0) == len(plan[i])}
    runaways = [i for i in range(len(plan)) if plans.is_runaway(i)]
    cut = {i for i in runaways if 0 < tally.calls_per_item.get(i, 0) < len(plan[i])}
    uncapped = {i for i in runaways if tally.calls_per_item.get(i, 0) == len(plan[i])}
    return {
        "items": items,
        "how": how,
        "normal_done": len(done),
        "normal_items": len(normal),
        "runaways_cut": len(cut),
        "runaways_uncapped": len(uncapped),
        "runaway_items": len(runaways),
        "lost": len(plan) - len(done) - len(cut) - len(uncapped),
        "worst_item_pct": max(tally.per_item.values(), default=0) / cap * 100,
        "calls": tally.calls,
        "cancelled": tally.cancelled,
        "spent": tally.tokens,
        "reported": int(result.total_tokens) if result is not None else None,
        "seconds": seconds,
        "outcome": raised or ("succeeded" if getattr(result, "success", False) else "failed"),
    }


def _request_limits(api: FlujoApi) -> Row:
    fields = sorted(getattr(api.usage_limits, "model_fields", {}))
    limited = [name for name in fields if "request" in name]
    if limited:
        return {"fields": fields, "note": f"has {limited}: not measured yet"}
    return {
        "fields": fields,
        "not_expressible": f"no request limit (UsageLimits has only {', '.join(fields)})",
    }


# --- driver ---------------------------------------------------------------------------------


def _collect(
    name: str,
    cases: Sequence[Case],
    one: Callable[[Case, list[str]], Row],
    errors: dict[str, str],
) -> list[Row]:
    """Run each case; a failing case is recorded under ``errors[name]``, the rest still run."""
    rows: list[Row] = []
    notes: list[str] = []
    for case in cases:
        start = time.perf_counter()
        try:
            rows.append(one(case, notes))
        except (Exception, asyncio.CancelledError) as error:
            traceback.print_exc()
            notes.append(f"{case}: {type(error).__name__}: {error}")
        log(f"{name} {case}: {time.perf_counter() - start:.1f}s")
    if notes:
        errors[name] = "; ".join(notes)
    return rows


def _run(coroutine: Callable[[], Coroutine[Any, Any, Row]]) -> Row:
    return asyncio.run(coroutine())


def run_all(api: FlujoApi, args: argparse.Namespace) -> dict[str, Any]:
    errors: dict[str, str] = {}
    overhead = _collect(
        "overhead",
        args.sizes,
        lambda steps, _: _run(lambda: _overhead(api, steps, args.repeats)),
        errors,
    )
    fanout = _collect(
        "fanout", args.ks, lambda k, _: _run(lambda: _fanout(api, k, args.steps)), errors
    )
    governance = _collect(
        "governance", args.ks, lambda k, _: _governance(api, k, args.gov_steps), errors
    )
    cancellation = _collect(
        "cancellation",
        args.cancel_ns,
        lambda n, notes: _run(lambda: _cancellation(api, n, notes)),
        errors,
    )
    budget_utilization = _collect(
        "budget_utilization",
        [(k, reserve) for k in args.budget_ks for reserve in (False, True)],
        lambda case, _: _run(lambda: _budget_utilization(api, case[0], case[1])),
        errors,
    )
    budget_scoped = _collect(
        "budget_scoped",
        [(n, how) for n in args.scoped_items for how in ("step_limits", "split")],
        lambda case, _: _run(lambda: _budget_scoped(api, case[0], case[1])),
        errors,
    )
    if _network_attempts:
        errors["network"] = "refused: " + "; ".join(_network_attempts[:10])
    return {
        "flujo_version": api.version,
        "python": platform.python_version(),
        "overhead": overhead,
        "fanout": fanout,
        "governance": governance,
        "cancellation": cancellation,
        "budgets": {
            "utilization": budget_utilization,
            "scoped": budget_scoped,
            "requests": _request_limits(api),
        },
        "errors": errors,
    }


def _empty_document(message: str) -> dict[str, Any]:
    try:
        version = importlib.metadata.version("flujo")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return {
        "flujo_version": version,
        "python": platform.python_version(),
        "overhead": [],
        "fanout": [],
        "governance": [],
        "cancellation": [],
        "budgets": {},
        "errors": {"setup": message},
    }


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers: {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers: {text!r}")
    return values


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--ks", type=_ints, default=(10, 100, 1000), help="fan-out widths K")
    parser.add_argument("--steps", type=int, default=3, help="steps per fan-out branch (M)")
    parser.add_argument("--gov-steps", type=int, default=5, help="steps per governed branch")
    parser.add_argument("--sizes", type=_ints, default=(10, 100), help="sequential lengths")
    parser.add_argument(
        "--cancel-ns", type=_ints, default=(1000, 10000), help="in-flight calls to cancel"
    )
    parser.add_argument("--repeats", type=int, default=20, help="timed runs per size")
    parser.add_argument(
        "--budget-ks", type=_ints, default=(10, 100, 1000), help="budget utilization widths K"
    )
    parser.add_argument(
        "--scoped-items", type=_ints, default=(100,), help="items of the per-item budget case"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    started = time.perf_counter()
    home = os.getcwd()
    _isolate_environment()
    _block_network()
    with _stdout_to_stderr(), tempfile.TemporaryDirectory(prefix="flujo-workloads-") as work:
        os.chdir(work)
        try:
            document = run_all(_load_flujo(), args)
        except Exception as error:  # flujo could not even be imported or set up
            traceback.print_exc()
            document = _empty_document(f"{type(error).__name__}: {error}")
        finally:
            os.chdir(home)
    log(f"total {time.perf_counter() - started:.1f}s")
    print(json.dumps(document, indent=2))


if __name__ == "__main__":
    main()
