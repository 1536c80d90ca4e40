"""A human-in-the-loop pause: the run stops, is saved, and resumes with the answer."""

from __future__ import annotations

from typing import Any

import attrs

from ..errors import ConfigurationError
from ..usage import UsageLimits
from .base import check_limits, check_name
from .outline import Block, Leaf
from .pipeline import StepBase


def _check_message(_: object, __: object, value: Any) -> None:
    if value is not None and not isinstance(value, str):
        raise ConfigurationError(f"HumanStep message must be a str or None, got {value!r}")


@attrs.frozen
class HumanStep(StepBase):
    """Pause the run for a person's answer; the answer becomes this step's output.

    ``message`` is what the person is asked (default: ``str()`` of the step's input).
    ``input_type`` (an attrs class, or a type such as ``bool``) is what the answer
    must structure to: missing fields, unknown keys and wrongly typed values are
    rejected when resuming, and the stored run is left as it was.
    """

    name: str
    message: str | None = attrs.field(default=None, kw_only=True, validator=_check_message)
    input_type: Any = attrs.field(default=None, kw_only=True)
    limits: UsageLimits | None = attrs.field(default=None, kw_only=True, validator=check_limits)
    """Accepted for symmetry with every step kind; a human step spends nothing."""

    def __attrs_post_init__(self) -> None:
        check_name("HumanStep", self.name)

    def outline(self) -> Block:
        return Leaf("human", self.name)
