"""Helpers for testing pipelines without a model: scripted agents."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class StubAgent:
    """Returns scripted outputs in order; an exception in the script is raised instead.

    Records every call's input in ``inputs`` and counts every call in
    ``call_count``, the one that finds the script exhausted included.
    """

    def __init__(self, outputs: Iterable[Any]) -> None:
        self.outputs = list(outputs)
        self.inputs: list[Any] = []
        self.call_count = 0

    async def run(self, data: Any, **kwargs: Any) -> Any:
        self.call_count += 1
        self.inputs.append(data)
        index = self.call_count - 1
        if index >= len(self.outputs):
            raise IndexError("No more outputs available")
        output = self.outputs[index]
        if isinstance(output, BaseException) or (
            isinstance(output, type) and issubclass(output, BaseException)
        ):
            raise output
        return output
