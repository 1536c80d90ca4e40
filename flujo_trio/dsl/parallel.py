"""Fan-out: branches run concurrently on isolated context copies, merged back after."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from ..errors import ConfigurationError
from ..usage import UsageLimits
from .base import check_executor, check_limits, check_name
from .outline import Block, Group, Lane
from .pipeline import Pipeline, StepBase, as_pipeline


class MergeStrategy(enum.Enum):
    """How branch contexts flow back into the parent; see the context-merging docs."""

    NO_MERGE = "no_merge"
    OVERWRITE = "overwrite"
    CONTEXT_UPDATE = "context_update"
    ERROR_ON_CONFLICT = "error_on_conflict"
    KEEP_FIRST = "keep_first"


class BranchFailure(enum.Enum):
    """What a failed branch does to the parallel step."""

    PROPAGATE = "propagate"
    """The step fails and the other branches are cancelled at once."""
    IGNORE = "ignore"
    """The step succeeds if at least one branch succeeds."""


#: ``fn(parent_context, {branch_name: branch_context}) -> None``
MergeCallable = Callable[[Any, dict[str, Any]], None]


def _as_branches(value: Mapping[str, Any]) -> dict[str, Pipeline]:
    if not isinstance(value, Mapping) or not value:
        raise ConfigurationError(
            f"ParallelStep branches must be a non-empty mapping of name -> step, got {value!r}"
        )
    for key in value:
        check_name("ParallelStep branch", key)
    return {key: as_pipeline(f"ParallelStep branch {key!r}", body) for key, body in value.items()}


def check_concurrency(_: object, __: object, value: int | None) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise ConfigurationError(f"max_concurrency must be an int >= 1 or None, got {value!r}")


def _check_merge(_: object, __: object, value: Any) -> None:
    if not isinstance(value, MergeStrategy) and not callable(value):
        raise ConfigurationError(
            f"merge_strategy must be a MergeStrategy or a callable, got {value!r}"
        )


def _check_failure(_: object, __: object, value: Any) -> None:
    if not isinstance(value, BranchFailure):
        raise ConfigurationError(f"on_branch_failure must be a BranchFailure, got {value!r}")


@attrs.frozen(hash=False)
class ParallelStep(StepBase):
    """Run every branch on the same input; output is ``{branch: output}`` in declared order."""

    name: str
    branches: dict[str, Pipeline] = attrs.field(converter=_as_branches)
    merge_strategy: MergeStrategy | MergeCallable = attrs.field(
        default=MergeStrategy.CONTEXT_UPDATE, kw_only=True, validator=_check_merge
    )
    on_branch_failure: BranchFailure = attrs.field(
        default=BranchFailure.PROPAGATE, kw_only=True, validator=_check_failure
    )
    max_concurrency: int | None = attrs.field(
        default=None, kw_only=True, validator=check_concurrency
    )
    limits: UsageLimits | None = attrs.field(default=None, kw_only=True, validator=check_limits)
    """A budget for all branches together (see scoped budgets)."""
    executor: Any = attrs.field(default=None, kw_only=True, validator=check_executor)
    """Where branch bodies run: None (here) or e.g. ``RayExecutor()``."""

    def __attrs_post_init__(self) -> None:
        check_name("ParallelStep", self.name)

    def nested(self) -> tuple[StepBase, ...]:
        return tuple(step for body in self.branches.values() for step in body.steps)

    def outline(self) -> Block:
        merge = self.merge_strategy
        detail = "merge: " + (merge.value if isinstance(merge, MergeStrategy) else "custom")
        if self.max_concurrency:
            detail += f", {self.max_concurrency} at a time"
        lanes = tuple(Lane(key, body.outline().blocks) for key, body in self.branches.items())
        return Group("parallel", self.name, detail, lanes)
