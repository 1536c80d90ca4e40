"""The loop actor: iterations run in order on the shared context."""

from __future__ import annotations

from typing import Any

from ..dsl.loop import LoopStep
from .dispatch import run_sequence
from .frame import Frame
from .record import StepRecord
from .user_code import UserCodeFailed, call_user, map_optional


async def run_loop(step: LoopStep, data: Any, frame: Frame, record: StepRecord) -> None:
    owner, context = f"LoopStep {step.name!r}", frame.context
    output: Any = None
    try:
        current = await map_optional(
            owner, "initial_input_mapper", step.initial_input_mapper, data, context
        )
        for iteration in range(1, step.max_loops + 1):
            record.attempts = iteration
            last = await run_sequence(step.body.steps, current, frame, record)
            assert last is not None
            output = last.output
            record.output = output
            if not last.success:
                record.metadata["exit_reason"] = "body_failed"
                record.finish(
                    False, output, f"Loop body failed in iteration {iteration}: {last.feedback}"
                )
                return
            if await call_user(owner, "exit_condition", step.exit_condition, output, context):
                record.metadata["exit_reason"] = "condition"
                mapped = await map_optional(
                    owner, "output_mapper", step.output_mapper, output, context
                )
                record.finish(True, mapped)
                return
            if iteration < step.max_loops:
                current = await map_optional(
                    owner,
                    "iteration_input_mapper",
                    step.iteration_input_mapper,
                    output,
                    context,
                    iteration,
                )
        record.metadata["exit_reason"] = "max_loops"
        mapped = await map_optional(owner, "output_mapper", step.output_mapper, output, context)
        record.finish(
            False,
            mapped,
            f"Loop reached max_loops={step.max_loops} without meeting its exit condition",
        )
    except UserCodeFailed as error:
        record.finish(False, output, str(error))
