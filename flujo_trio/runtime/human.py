"""The human-step actor: pause, or take the answer a resume brought."""

from __future__ import annotations

from typing import Any

from ..context import HumanInteraction
from ..dsl.human import HumanStep
from ..errors import HumanInputError, SerializationError
from ..serialization import structure
from .frame import Frame
from .record import StepRecord


async def run_human(step: HumanStep, data: Any, frame: Frame, record: StepRecord) -> None:
    prior = record.prior
    if prior is not None and "pause_message" in prior.metadata:
        message = str(prior.metadata["pause_message"])
    else:
        message = step.message if step.message is not None else str(data)
    record.metadata["pause_message"] = message
    answer = frame.control.take_answer(prior)
    if answer is None:
        frame.context.pause_message = message
        record.pause(f"Paused: {message}")
        return
    response = answer.value
    input_type = step.input_type
    already_typed = isinstance(input_type, type) and isinstance(response, input_type)
    if input_type is not None and not already_typed:
        try:
            response = structure(response, input_type, what=f"human input for {step.name!r}")
        except SerializationError as error:
            raise HumanInputError(
                f"{error}; the run is still paused, resume again with a valid answer"
            ) from error
    frame.context.hitl_history.append(HumanInteraction(message, response))
    frame.context.pause_message = None
    record.finish(True, response)
