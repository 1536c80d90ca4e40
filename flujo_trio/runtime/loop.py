"""The loop actor: iterations run in order on the shared context.

On resume, the loop runs again from its first iteration: finished steps of earlier
iterations are taken from the journal (never re-run or re-paid), and the loop's own
callables (mappers, the exit condition) are asked again, so they must give the same
answers for the same inputs and context.
"""

from __future__ import annotations

from typing import Any

import trio

from ..dsl.loop import LoopStep
from .frame import Frame
from .record import StepRecord
from .user_code import UserCodeFailed, call_user, map_optional


async def run_loop(step: LoopStep, data: Any, frame: Frame, record: StepRecord) -> None:
    owner, context, kernel = f"LoopStep {step.name!r}", frame.context, frame.run.kernel
    output: Any = None
    try:
        current = await map_optional(
            owner, "initial_input_mapper", step.initial_input_mapper, data, context
        )
        for iteration in range(1, step.max_loops + 1):
            await trio.lowlevel.checkpoint_if_cancelled()  # a stopped run starts no iteration
            record.attempts = iteration
            last = await kernel.run_sequence(
                step.body.steps, current, frame.iteration(iteration), record
            )
            output = record.output = last.output
            if not last.success:
                if last.paused:
                    record.end_like(last, output)
                    return
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
