"""The conditional actor: one branch, picked by the step's condition."""

from __future__ import annotations

from typing import Any

from ..dsl.conditional import ConditionalStep
from .dispatch import run_sequence
from .frame import Frame
from .record import StepRecord
from .user_code import UserCodeFailed, call_user, map_optional


async def run_conditional(
    step: ConditionalStep, data: Any, frame: Frame, record: StepRecord
) -> None:
    owner, context = f"ConditionalStep {step.name!r}", frame.context
    try:
        if record.prior is not None and "executed_branch_key" in record.prior.metadata:
            key = record.prior.metadata["executed_branch_key"]  # replay: same branch
        else:
            key = await call_user(owner, "condition", step.condition, data, context)
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
        last = await run_sequence(body.steps, branch_input, frame, record)
        if last.paused:
            record.pause(last.feedback or "Paused")
            return
        if not last.success:
            record.finish(False, last.output, last.feedback)
            return
        output = await map_optional(
            owner, "output_mapper", step.output_mapper, last.output, context
        )
        record.finish(True, output)
    except UserCodeFailed as error:
        record.finish(False, None, str(error))
