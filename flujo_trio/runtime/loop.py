"""The loop actor: iterations run in order on the shared context.

On resume, iterations that completed before the pause are replayed from their
records (their exit condition is known to have been false, so it is not asked
again) and the loop continues at the iteration that paused.
"""

from __future__ import annotations

from typing import Any

import trio

from ..dsl.loop import LoopStep
from .dispatch import run_sequence
from .frame import Frame
from .record import StepRecord
from .user_code import UserCodeFailed, call_user, map_optional


def _next_is_reused(record: StepRecord) -> bool:
    saved = record.peek_claim()
    return saved is not None and saved.reusable


async def run_loop(step: LoopStep, data: Any, frame: Frame, record: StepRecord) -> None:
    owner, context = f"LoopStep {step.name!r}", frame.context
    resumed_at = record.prior.attempts if record.prior is not None else 1
    output: Any = None
    current: Any = data
    try:
        if not _next_is_reused(record):
            current = await map_optional(
                owner, "initial_input_mapper", step.initial_input_mapper, data, context
            )
        for iteration in range(1, step.max_loops + 1):
            await trio.lowlevel.checkpoint_if_cancelled()  # a stopped run starts no iteration
            record.attempts = iteration
            last = await run_sequence(step.body.steps, current, frame, record)
            output = last.output
            record.output = output
            if last.paused:
                record.pause(last.feedback or "Paused")
                return
            if not last.success:
                record.metadata["exit_reason"] = "body_failed"
                record.finish(
                    False, output, f"Loop body failed in iteration {iteration}: {last.feedback}"
                )
                return
            done_before = iteration < resumed_at
            if not done_before and await call_user(
                owner, "exit_condition", step.exit_condition, output, context
            ):
                record.metadata["exit_reason"] = "condition"
                mapped = await map_optional(
                    owner, "output_mapper", step.output_mapper, output, context
                )
                record.finish(True, mapped)
                return
            if iteration < step.max_loops and not _next_is_reused(record):
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
