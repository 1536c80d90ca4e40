"""The agent-step actor: admission, attempts, checks, fallback, cache, journal.

Only the agent's own failures (an exception, a ``timeout_s`` expiry) are retried;
a processor, plugin or validator failure never calls the agent again. Usage of
every attempt, failed and cancelled ones included, goes to the governor and to the
step's record, so totals stay honest whatever stops the step. Each call is
journaled: its start (with the reservation it holds, before it runs, for a durable
store) and its end; a resumed run takes finished calls from the journal instead of
paying for them again.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import trio

from ..agent_api import Emitter, UsageMeter
from ..cache import CachedOutput
from ..dsl.step import Step
from ..errors import ConfigurationError
from ..state.journal import CallKey, CallRecord, CallStatus
from ..usage import (
    NO_USAGE,
    UnusableUsage,
    Usage,
    dollars,
    finite,
    format_money,
    money,
    usage_of_error,
    usage_of_output,
)
from .checks import CheckFailed, apply_plugins, apply_processors, run_validators
from .delta import changes_since, snapshot
from .frame import Frame
from .governor import Denial, Grant
from .ledger import BudgetScope
from .record import StepRecord
from .requests import RequestGate

#: How long the step whose spend breached the budget may take to report that spend.
EVENT_SHIELD_S = 5.0


class Outcome:
    __slots__ = ("failure", "metadata", "output", "warning")

    def __init__(
        self,
        output: Any,
        failure: str | None = None,
        metadata: dict[str, Any] | None = None,
        warning: str | None = None,
    ) -> None:
        self.output = output
        self.failure = failure
        self.metadata = metadata or {}
        self.warning = warning
        """Feedback of a step that still succeeded (``validation="warn"``)."""


class Calls:
    """The numbering of one leaf step's agent calls (fallbacks included), and what
    the journal of an earlier execution holds of them."""

    __slots__ = ("number", "prior")

    def __init__(self, prior: Mapping[CallKey, CallRecord]) -> None:
        self.number = 0
        self.prior = prior

    def next(self) -> int:
        self.number += 1
        return self.number

    def earlier(self, number: int) -> CallRecord | None:
        """What an earlier execution journaled of call ``number`` (None on a fresh run)."""
        return self.prior.get((number, 0)) if self.prior else None


_NO_CALLS: Mapping[CallKey, CallRecord] = MappingProxyType({})


async def run_agent_step(step: Step, data: Any, frame: Frame, record: StepRecord) -> None:
    run = frame.run
    before = snapshot(frame.context) if step.touches_context else None
    cache, cache_key = step.cache, None
    if cache is not None:
        cache_key = cache.make_key(step.name, data)
        hit = await cache.get(cache_key) if cache_key is not None else None
        if hit is not None:
            record.metadata.update(cache_hit=True, cached_usage=hit.usage)
            record.finish(True, hit.output)
            _save(frame, record, before)
            return
    replay = run.replay
    calls = Calls(replay.calls_at(frame.address) if replay is not None else _NO_CALLS)
    cost_before, tokens_before = record.cost, record.tokens
    if step.plain:
        outcome = await _call_with_retries(step, data, frame, record, calls, frame.scope)
    elif step.fallback is None:
        outcome = await _run_primary(step, data, frame, record, calls)
    else:
        outcome = await _with_fallback(step, data, frame, record, calls)
    if outcome.metadata:
        record.metadata.update(outcome.metadata)
    if cache is not None:
        record.metadata["cache_hit"] = False
        if outcome.failure is None and cache_key is not None:
            spent = Usage(dollars(record.cost - cost_before), record.tokens - tokens_before)
            await cache.put(cache_key, CachedOutput(outcome.output, spent))
    # A "warn" validation keeps success but still explains itself in the feedback.
    record.finish(outcome.failure is None, outcome.output, outcome.failure or outcome.warning)
    _save(frame, record, before)


def _save(frame: Frame, record: StepRecord, before: dict[str, Any] | None) -> None:
    changes = changes_since(before, frame.context) if before is not None else None
    frame.run.journal.record_step(record, changes)


async def _with_fallback(
    step: Step, data: Any, frame: Frame, record: StepRecord, calls: Calls
) -> Outcome:
    outcome = await _run_primary(step, data, frame, record, calls)
    if outcome.failure is None or step.fallback is None or frame.run.control.denied:
        return outcome
    fallback = await _with_fallback(step.fallback, data, frame, record, calls)
    metadata = {**fallback.metadata, "fallback_triggered": True, "original_error": outcome.failure}
    if fallback.failure is None:
        return Outcome(fallback.output, None, metadata, warning=fallback.warning)
    failure = f"Original error: {outcome.failure}; Fallback error: {fallback.failure}"
    return Outcome(fallback.output, failure, metadata)


async def _run_primary(
    step: Step, data: Any, frame: Frame, record: StepRecord, calls: Calls
) -> Outcome:
    context = frame.context
    if step.processors.input:
        try:
            data = await apply_processors(step.processors.input, data, context)
        except CheckFailed as error:
            return Outcome(None, str(error))
    if step.limits is None:
        called = await _call_with_retries(step, data, frame, record, calls, frame.scope)
    else:
        called = await _attempts(step, data, frame, record, calls)
    if called.failure is not None:
        return called
    output = called.output
    try:
        if step.processors.output:
            output = await apply_processors(step.processors.output, output, context)
        if step.plugins:
            output = await apply_plugins(step, output, context)
    except CheckFailed as error:
        return Outcome(output, str(error), called.metadata)
    if not step.validators:
        return Outcome(output, None, called.metadata)
    verdict = await run_validators(step, output, context)
    metadata = {**called.metadata, "validation_passed": verdict.passed}
    if verdict.passed:
        return Outcome(output, None, metadata)
    if step.validation == "warn":
        return Outcome(output, None, metadata, warning=verdict.feedback)
    return Outcome(None if step.validation == "drop" else output, verdict.feedback, metadata)


async def _attempts(
    step: Step, data: Any, frame: Frame, record: StepRecord, calls: Calls
) -> Outcome:
    """The step's attempts under the step's own budget (``limits=``): a breach or
    denial of that budget fails this step only (its fallback may still run, under
    its own limits)."""
    assert step.limits is not None
    governor = frame.run.governor
    outcome: Outcome | None = None
    with trio.CancelScope() as cancel_scope:
        scope = governor.open_scope(step.name, step.limits, frame.scope, cancel_scope)
        outcome = await _call_with_retries(step, data, frame, record, calls, scope)
    if scope.stop is None and outcome is not None:
        return outcome
    message = scope.stop_message or "usage limit reached"
    metadata = {**(outcome.metadata if outcome is not None else {}), "limit_scope": step.name}
    if outcome is not None and outcome.failure is not None:
        return Outcome(outcome.output, outcome.failure, metadata)
    return Outcome(record.output, message, metadata)


def _interrupted_usage(meter: UsageMeter | None, reserve: Usage) -> tuple[Usage, bool]:
    """What an interrupted call is charged: what it reported, else its reservation."""
    if meter is not None and meter.reported:
        return meter.used + meter.extra, False
    return reserve if meter is None else reserve + meter.extra, True


def _own(usage: Usage, meter: UsageMeter | None) -> Usage:
    """The part of a call's usage its own grant settles (further requests settled theirs)."""
    if meter is None or meter.extra == NO_USAGE:
        return usage
    extra = meter.extra
    cost = max(money(usage.cost_usd) - money(extra.cost_usd), money(0))
    return Usage(dollars(cost), max(usage.tokens - extra.tokens, 0))


async def _call_with_retries(
    step: Step, data: Any, frame: Frame, record: StepRecord, calls: Calls, scope: BudgetScope
) -> Outcome:
    run = frame.run
    governor, journal, bus = run.governor, run.journal, run.bus
    call = step.call
    errors: list[str] = []
    while True:
        number = calls.next()
        prior = calls.earlier(number)
        if prior is not None:
            replayed = _replay_call(prior, frame, record, scope, errors)
            if replayed is not None:
                return replayed
            if errors and (not prior.retryable or len(errors) > step.max_retries):
                break
            continue
        try:
            reserve = step.reservation_for(data) or NO_USAGE
        except ConfigurationError as error:
            return Outcome(None, str(error))
        except Exception as error:
            return Outcome(None, f"Step {step.name!r}: reserve callable raised {error!r}")
        free = governor.admit_now(scope, reserve) if number == 1 else None
        admitted = free if free is not None else await governor.reserve(scope, reserve)
        if isinstance(admitted, Denial):
            # The call never starts. The step fails without cancelling anyone, so calls
            # already admitted finish and are not wasted.
            if admitted.run_level:
                run.control.deny(admitted.message)
                record.denied = True
            return Outcome(None, f"Not started: {admitted.message}", {"reservation_denied": True})
        grant = admitted
        if journal.durable:
            try:
                journal.record(_call_record(frame, number, CallStatus.STARTED, reserved=reserve))
                await journal.sync()
            except BaseException:
                governor.settle(grant, NO_USAGE)  # it never started
                raise
        record.attempts += 1
        meter, kwargs = _offered(step, frame, record, scope, number, errors)
        if meter is not None:
            assert isinstance(meter.gate, RequestGate)
            meter.gate.bind(journal, grant)
        # One coroutine frame around the agent call: at 10,000 branches in flight, every
        # layer kept alive here is 10,000 frames for the garbage collector to walk.
        failure: _Failure | None = None
        output: Any = None
        try:
            if step.timeout_s is not None:
                with trio.fail_after(step.timeout_s):
                    raw = await _invoke(call, data, kwargs)
            else:
                raw = call.fn(data, **kwargs) if kwargs else call.fn(data)
                if call.is_coroutine or inspect.isawaitable(raw):
                    raw = await raw
            output, usage = usage_of_output(raw)
        except trio.TooSlowError:
            usage, estimated = _interrupted_usage(meter, reserve)
            message = f"Agent timed out after {format_money(money(step.timeout_s or 0))}s"
            failure = _Failure(message, True, None, estimated)
        except trio.Cancelled:
            usage, estimated = _interrupted_usage(meter, reserve)
            _settled(step, frame, record, grant, number, usage, meter, None, True)
            raise
        except UnusableUsage as error:
            usage = reserve
            failure = _Failure(f"Agent reported unusable usage: {error}", False, None, True)
        except Exception as error:
            usage = usage_of_error(error)
            reported = isinstance(getattr(error, "usage", None), Usage)
            if not reported and meter is not None and meter.reported:
                # What it reported through the meter before failing was spent all the same.
                usage, reported = meter.used + meter.extra, True
            after = getattr(error, "retry_after", None)
            failure = _Failure(
                str(error) or type(error).__name__,
                getattr(error, "retryable", True) is not False,
                _retry_after(after),
                False,
                reported,
            )
        stopped_run = _settled(
            step, frame, record, grant, number, usage, meter, failure, False, output
        )
        if bus.active:
            await _usage_event(run, stopped_run)
        if failure is None:
            return Outcome(output)
        errors.append(failure.message)
        if not failure.retryable or len(errors) > step.max_retries:
            break
        backoff = step.retry_backoff
        delay = (
            backoff.delay(len(errors), retry_after=failure.retry_after)
            if backoff is not None
            else (failure.retry_after or 0.0)
        )
        if delay > 0:
            await trio.sleep(delay)
    return Outcome(None, f"Agent failed after {len(errors)} attempt(s): {errors[-1]}")


def _retry_after(value: object) -> float | None:
    """An error's ``retry_after`` in seconds, or None when it is not a finite number (an
    infinite one would wait forever; ``float(10**400)`` raises OverflowError)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not finite(value):
        return None
    return float(value)


_NO_KWARGS: dict[str, Any] = {}  # never mutated: passed as ``**{}`` at most


class _Failure:
    __slots__ = ("estimated", "message", "reported", "retry_after", "retryable")

    def __init__(
        self,
        message: str,
        retryable: bool,
        retry_after: float | None,
        estimated: bool,
        reported: bool = False,
    ) -> None:
        self.message, self.retryable = message, retryable
        self.retry_after, self.estimated = retry_after, estimated
        self.reported = reported
        """The failed call reported what it spent (an ``usage`` on its exception)."""


def _offered(
    step: Step,
    frame: Frame,
    record: StepRecord,
    scope: BudgetScope,
    number: int,
    errors: list[str],
) -> tuple[UsageMeter | None, dict[str, Any]]:
    """The keyword arguments this agent accepts, and its usage meter if it takes one."""
    accepts = step.call.accepts
    if not accepts:
        return None, _NO_KWARGS
    kwargs: dict[str, Any] = {}
    meter: UsageMeter | None = None
    run = frame.run
    if "context" in accepts:
        kwargs["context"] = frame.context
    if "feedback" in accepts:
        kwargs["feedback"] = list(errors)
    if "resources" in accepts:
        kwargs["resources"] = run.resources
    if "meter" in accepts:
        gate = RequestGate(
            run.governor,
            scope,
            frame.address,
            frame.position,
            record,
            number,
            control=run.control,
        )
        meter = kwargs["meter"] = gate.meter
    if "emit" in accepts:
        bus = run.bus
        kwargs["emit"] = Emitter(bus.emit if bus.active else None, run.run_id, frame.step_label)
    return meter, kwargs


def _settled(
    step: Step,
    frame: Frame,
    record: StepRecord,
    grant: Grant,
    number: int,
    usage: Usage,
    meter: UsageMeter | None,
    failure: _Failure | None,
    interrupted: bool,
    output: Any = None,
) -> bool:
    """Account for one ended call: the governor, the step's record and the journal.

    ``interrupted``: the call was cancelled (``usage`` is what it reported, else an
    estimate). Returns whether this call's spend stopped the run.
    """
    run = frame.run
    governor, journal = run.governor, run.journal
    own = _own(usage, meter)
    if interrupted:
        estimated = meter is None or not meter.reported
    else:
        estimated = failure is not None and failure.estimated
    stop_before = governor.root.stop
    if grant.settled:
        # The call's first request was settled when it opened a second one; what the
        # call reports now corrects that first settlement (either way).
        assert meter is not None
        assert isinstance(meter.gate, RequestGate)
        if failure is None or failure.reported:  # the call said what it spent in all
            first = meter.gate.first_usage
            cost = money(own.cost_usd) - money(first.cost_usd)
            tokens = own.tokens - first.tokens
            governor.correct(grant.chain, cost, tokens)
            record.cost += cost
            record.tokens += tokens
    else:
        governor.settle(grant, own, estimated=estimated)
        record.charge(own)
    if estimated:
        record.metadata["usage_estimated"] = True
    if interrupted:
        journal.record(
            _call_record(frame, number, CallStatus.INTERRUPTED, usage=usage, estimated=estimated)
        )
        return False
    if step.reserve is not None and grant.exceeded_by(own):
        record.metadata["reservation_exceeded"] = True
    if failure is None:
        record.output = output
        if journal.durable or run.bus.active or step.cache is not None or step.has_checks:
            # Something may stop the step before it is saved: keep the paid call's output.
            journal.record(
                _call_record(frame, number, CallStatus.SUCCEEDED, usage=usage, output=output)
            )
    else:
        journal.record(
            _call_record(
                frame,
                number,
                CallStatus.FAILED,
                usage=usage,
                error=failure.message,
                retryable=failure.retryable,
                estimated=estimated,
            )
        )
    return governor.root.stop is not stop_before


async def _usage_event(run: Any, stopped_run: bool) -> None:
    governor, bus = run.governor, run.bus
    total, statistics = governor.spent, governor.statistics()
    if stopped_run:
        # This call's spend stopped the run: its usage event is still delivered.
        with trio.move_on_after(EVENT_SHIELD_S) as shielded:
            shielded.shield = True
            await bus.usage(total, statistics)
    else:
        await bus.usage(total, statistics)


async def _invoke(call: Any, data: Any, kwargs: dict[str, Any]) -> Any:
    raw = call.fn(data, **kwargs) if kwargs else call.fn(data)
    if call.is_coroutine or inspect.isawaitable(raw):
        raw = await raw
    return raw


def _call_record(frame: Frame, number: int, status: CallStatus, **fields: Any) -> CallRecord:
    return CallRecord(frame.address, frame.position, number, status, **fields)


def _replay_call(
    prior: CallRecord, frame: Frame, record: StepRecord, scope: BudgetScope, errors: list[str]
) -> Outcome | None:
    """A call an earlier execution made: counted and charged to the step and its scopes
    (the run's total holds it already), never made again. Returns the outcome of a
    call that succeeded; None to go on (a failed call's error becomes feedback; an
    interrupted one does not use up a retry)."""
    record.attempts += 1
    usage = prior.usage if prior.usage is not None else (prior.reserved or NO_USAGE)
    record.charge(usage)
    governor = frame.run.governor
    if scope.parent is not None:
        governor.charge(scope, usage, include_run=False)
        governor.count_replayed_request(scope)
    if prior.estimated or prior.status is CallStatus.STARTED:
        record.metadata["usage_estimated"] = True
    if prior.status is CallStatus.SUCCEEDED:
        record.output = prior.output
        return Outcome(prior.output)
    if prior.status is CallStatus.FAILED:
        errors.append(prior.error or "the agent failed")
    return None
