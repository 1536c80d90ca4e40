"""The human-step actor: pause, or take the answer a resume brought.

The answer was checked against the step's ``input_type`` before the resume took the
run over (so a bad answer leaves the stored run untouched); here it is recorded in
the context's ``hitl_history`` and becomes the step's output.
"""

from __future__ import annotations

from typing import Any

from ..context import HumanInteraction
from ..dsl.human import HumanStep
from .delta import changes_since, snapshot
from .frame import Frame
from .record import StepRecord


async def run_human(step: HumanStep, data: Any, frame: Frame, record: StepRecord) -> None:
    run, context = frame.run, frame.context
    before = snapshot(context)
    replay = run.replay
    paused = replay.paused(frame.address) if replay is not None else None
    if paused is not None and paused.pause_message is not None:
        message = paused.pause_message
    else:
        message = step.message if step.message is not None else str(data)
    answered, answer = replay.take_answer(frame.address) if replay is not None else (False, None)
    if not answered:
        context.pause_message = message
        record.pause(message)
    else:
        context.hitl_history.append(HumanInteraction(message, answer))
        context.pause_message = None
        record.finish(True, answer)
    run.journal.record_step(record, changes_since(before, context))
