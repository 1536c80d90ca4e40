"""Running a step's processors, plugins and validators; none of them re-runs the agent."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..callables import call_maybe_async
from ..checks import PluginOutcome, Processor, ValidationResult
from ..dsl.step import Step
from ..errors import FlujoTrioError


class CheckFailed(FlujoTrioError):
    """A processor or plugin failed; the message is the step's feedback."""


def _name(fn: Any) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__name__


async def apply_processors(processors: Sequence[Processor], data: Any, context: Any) -> Any:
    for processor in processors:
        try:
            data = await call_maybe_async(processor, data, context)
        except Exception as error:
            raise CheckFailed(f"Processor {_name(processor)} failed: {error}") from error
    return data


async def apply_plugins(step: Step, output: Any, context: Any) -> Any:
    """Each plugin may replace the output; the first failure stops the step."""
    for plugin in step.plugins:
        try:
            outcome = await call_maybe_async(plugin, output, context)
        except Exception as error:
            raise CheckFailed(f"Plugin failed: {_name(plugin)} raised {error!r}") from error
        if not isinstance(outcome, PluginOutcome):
            raise CheckFailed(
                f"Plugin failed: {_name(plugin)} returned {outcome!r}, expected a PluginOutcome"
            )
        if not outcome.success:
            raise CheckFailed(f"Plugin failed: {outcome.feedback or _name(plugin)}")
        if outcome.new_output is not None:
            output = outcome.new_output
    return output


class Verdict:
    """The validators' joint answer, with every failure's reason."""

    __slots__ = ("feedback", "passed")

    def __init__(self, passed: bool, feedback: str | None) -> None:
        self.passed, self.feedback = passed, feedback


async def run_validators(step: Step, output: Any, context: Any) -> Verdict:
    """Every validator sees the final output; all failures are reported together."""
    failures: list[str] = []
    for validator in step.validators:
        try:
            verdict = await call_maybe_async(validator, output, context)
        except Exception as error:
            failures.append(f"{_name(validator)} raised {error!r}")
            continue
        if isinstance(verdict, ValidationResult):
            if not verdict.valid:
                failures.append(verdict.feedback or f"{_name(validator)} rejected the output")
        elif not verdict:
            failures.append(f"{_name(validator)} rejected the output")
    if not failures:
        return Verdict(True, None)
    return Verdict(False, "Validation failed: " + "; ".join(failures))
