"""The conditional actor: one branch, picked by the step's condition.

The choice is journaled, so a resumed run takes the same branch without asking the
condition again.
"""

from __future__ import annotations

from typing import Any

from ..dsl.conditional import ConditionalStep
from ..state.journal import Decision
from .frame import Frame
from .record import StepRecord
from .user_code import UserCodeFailed, call_user, map_optional

_UNDECIDED = object()


async def run_conditional(
    step: ConditionalStep, data: Any, frame: Frame, record: StepRecord
) -> None:
    owner, context, run = f"ConditionalStep {step.name!r}", frame.context, frame.run
    replay = run.replay
    key = replay.decisions.get(frame.address, _UNDECIDED) if replay is not None else _UNDECIDED
    try:
        if key is _UNDECIDED:
            key = await call_user(owner, "condition", step.condition, data, context)
            run.journal.record(Decision(frame.address, key))
        record.metadata["executed_branch_key"] = key
        try:
            matched = key in step.branches
        except TypeError:  # an unhashable key matches no branch
            matched = False
        body = step.branches[key] if matched else step.default
        if body is None:
            record.finish(
                False, None, f"No branch found for key '{key}' and no default branch provided"
            )
            return
        if not matched:
            record.metadata["default_branch"] = True
        branch_input = await map_optional(owner, "input_mapper", step.input_mapper, data, context)
        last = await run.kernel.run_sequence(body.steps, branch_input, frame, record)
        output = last.output
        if last.success:
            output = await map_optional(owner, "output_mapper", step.output_mapper, output, context)
        record.end_like(last, output)
    except UserCodeFailed as error:
        record.finish(False, None, str(error))
