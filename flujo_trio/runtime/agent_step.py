"""The agent-step actor: admission, attempts, checks, fallback, cache.

Only the agent's own failures (an exception, a ``timeout_s`` expiry) are retried;
a processor, plugin or validator failure never calls the agent again. Usage of
every attempt, failed and cancelled ones included, goes to the governor and to the
step's record, so totals stay honest whatever stops the step.
"""

from __future__ import annotations

import contextlib
from typing import Any

import attrs
import trio

from ..cache import CachedOutput
from ..dsl.step import Step
from ..errors import ConfigurationError
from ..usage import Usage, format_money, money, usage_of_error, usage_of_output
from .checks import CheckFailed, apply_plugins, apply_processors, run_validators
from .frame import Frame
from .record import StepRecord


@attrs.frozen
class Outcome:
    output: Any
    failure: str | None = None
    metadata: dict[str, Any] = attrs.field(factory=dict)
    warning: str | None = None
    """Feedback of a step that still succeeded (``validation="warn"``)."""


async def run_agent_step(step: Step, data: Any, frame: Frame, record: StepRecord) -> None:
    cache_key = step.cache.make_key(step.name, data) if step.cache is not None else None
    if step.cache is not None and cache_key is not None:
        hit = await step.cache.get(cache_key)
        if hit is not None:
            record.metadata.update(cache_hit=True, cached_usage=hit.usage)
            record.finish(True, hit.output)
            return
    usage_before = record.total()
    outcome = await _with_fallback(step, data, frame, record)
    record.metadata.update(outcome.metadata)
    if step.cache is not None:
        record.metadata["cache_hit"] = False
        if outcome.failure is None and cache_key is not None:
            cost, tokens = record.total()
            spent = Usage(float(cost - usage_before[0]), tokens - usage_before[1])
            await step.cache.put(cache_key, CachedOutput(outcome.output, spent))
    # A "warn" validation keeps success but still explains itself in the feedback.
    record.finish(outcome.failure is None, outcome.output, outcome.failure or outcome.warning)


async def _with_fallback(step: Step, data: Any, frame: Frame, record: StepRecord) -> Outcome:
    outcome = await _run_primary(step, data, frame, record)
    if outcome.failure is None or step.fallback is None or frame.control.denied:
        return outcome
    fallback = await _with_fallback(step.fallback, data, frame, record)
    metadata = {**fallback.metadata, "fallback_triggered": True, "original_error": outcome.failure}
    if fallback.failure is None:
        return Outcome(fallback.output, None, metadata, warning=fallback.warning)
    failure = f"Original error: {outcome.failure}; Fallback error: {fallback.failure}"
    return Outcome(fallback.output, failure, metadata)


async def _run_primary(step: Step, data: Any, frame: Frame, record: StepRecord) -> Outcome:
    context = frame.context
    try:
        data = await apply_processors(step.processors.input, data, context)
    except CheckFailed as error:
        return Outcome(None, str(error))
    called = await _call_with_retries(step, data, frame, record)
    if called.failure is not None:
        return called
    output = called.output
    try:
        output = await apply_processors(step.processors.output, output, context)
        output = await apply_plugins(step, output, context)
    except CheckFailed as error:
        return Outcome(output, str(error), called.metadata)
    verdict = await run_validators(step, output, context)
    metadata = dict(called.metadata)
    if step.validators:
        metadata["validation_passed"] = verdict.passed
    if verdict.passed:
        return Outcome(output, None, metadata)
    if step.validation == "warn":
        return Outcome(output, None, metadata, warning=verdict.feedback)
    return Outcome(None if step.validation == "drop" else output, verdict.feedback, metadata)


async def _call_with_retries(step: Step, data: Any, frame: Frame, record: StepRecord) -> Outcome:
    errors: list[str] = []
    paid, output = record.take_completed_call()
    if paid:  # resumed after a stop that came between the call and its checks
        return Outcome(output)
    for _ in range(step.max_retries + 1):
        try:
            reserve = step.reservation_for(data) or Usage()
        except ConfigurationError as error:
            return Outcome(None, str(error))
        except Exception as error:
            return Outcome(None, f"Step {step.name!r}: reserve callable raised {error!r}")
        reservation = await frame.governor.reserve(reserve)
        if isinstance(reservation, str):
            # Admissions are closed: this call never starts. The step fails without
            # cancelling anyone, so calls already admitted finish and are not wasted.
            frame.control.deny(reservation)
            return Outcome(None, f"Not started: {reservation}", {"reservation_denied": True})
        record.attempts += 1
        offered = {"context": frame.context, "feedback": list(errors), "resources": frame.resources}
        error_message: str | None = None
        retryable = True
        output = None
        try:
            with trio.fail_after(step.timeout_s) if step.timeout_s else contextlib.nullcontext():
                raw = await step.call(data, offered)
            output, usage = usage_of_output(raw)
        except trio.TooSlowError:
            usage = reservation.usage
            error_message = f"Agent timed out after {format_money(money(step.timeout_s or 0))}s"
        except trio.Cancelled:
            # Usage of an interrupted call is unknown: it is charged its reservation.
            record.charge(reservation.usage)
            record.metadata["cancelled"] = True
            frame.governor.abandon(reservation)
            raise
        except Exception as error:
            usage = usage_of_error(error)
            error_message = str(error) or type(error).__name__
            retryable = getattr(error, "retryable", True) is not False
        else:
            record.output = output
            record.completed_call(output)
        record.charge(usage)
        if step.reserve is not None and reservation.exceeded_by(usage):
            record.metadata["reservation_exceeded"] = True
        total = await frame.governor.settle(reservation, usage)
        await frame.events.usage(total)
        if error_message is None:
            return Outcome(output)
        errors.append(error_message)
        if not retryable:  # the agent says another attempt cannot help
            break
    return Outcome(None, f"Agent failed after {len(errors)} attempt(s): {errors[-1]}")
