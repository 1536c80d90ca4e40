"""Return types of validators and plugins, and the processor bundle a step takes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs

#: ``fn(data, context) -> data`` (sync or async).
Processor = Callable[[Any, Any], Any]
#: ``fn(output, context) -> bool | ValidationResult`` (sync or async).
Validator = Callable[[Any, Any], Any]
#: ``fn(output, context) -> PluginOutcome`` (sync or async).
Plugin = Callable[[Any, Any], Any]


@attrs.frozen
class ValidationResult:
    """A validator's verdict, with feedback that says what was wrong."""

    valid: bool
    feedback: str | None = None


@attrs.frozen
class PluginOutcome:
    """A plugin's verdict; ``new_output`` replaces the step output when it is not None."""

    success: bool
    feedback: str | None = None
    new_output: Any = None


def _callables(value: Sequence[Processor]) -> tuple[Processor, ...]:
    return tuple(value)


@attrs.frozen
class Processors:
    """Input processors run before the agent, output processors after it."""

    input: tuple[Processor, ...] = attrs.field(default=(), converter=_callables)
    output: tuple[Processor, ...] = attrs.field(default=(), converter=_callables)
