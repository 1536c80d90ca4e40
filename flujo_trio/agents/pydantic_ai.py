"""``PydanticAIAgent``: a pydantic-ai ``Agent`` as a flujo-trio agent, bridged to Trio.

pydantic-ai runs on asyncio; flujo-trio runs on Trio. The bridge is ``trio-asyncio``:
the runner opens one asyncio loop per run (through this agent's :meth:`run_scope`),
not one per call, and every call runs as an asyncio task inside it. Cancellation
crosses in both directions: cancelling the step cancels the asyncio task (the
provider request is closed), and an asyncio-side cancellation of the call fails the
step (it is not retried, as another attempt would be cancelled the same way).

Input: a prompt (``str``), or :class:`Prompt` to pass ``message_history`` too. On a
retry, the reasons earlier attempts failed are appended to the prompt. Usage is
pydantic-ai's ``RunUsage`` (input and output tokens), priced with ``pricing``.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio_asyncio
from pydantic_ai import Agent

from ..errors import AgentCallError
from ..runtime.errors import sole_error
from ..usage import AgentResult, Usage
from .pricing import Pricing


def _repair_early_anyio_import() -> None:
    """trio-asyncio patches ``asyncio.get_running_loop`` when it is imported; a module
    that did ``from asyncio import get_running_loop`` before that (anyio's asyncio
    backend, e.g. imported early by anyio's pytest plugin) keeps the unpatched function
    and fails inside the bridge with "no running event loop". Point it at the patch."""
    backend = sys.modules.get("anyio._backends._asyncio")
    if backend is not None and getattr(backend, "get_running_loop", None) is not None:
        setattr(backend, "get_running_loop", asyncio.get_running_loop)  # noqa: B010


_repair_early_anyio_import()


@attrs.frozen
class Prompt:
    """A prompt with the conversation so far (pydantic-ai ``ModelMessage`` objects)."""

    text: str
    message_history: Sequence[Any] | None = None


class PydanticAIAgent:
    """Run ``agent`` (a ``pydantic_ai.Agent``) as a step's agent.

    Args:
        agent: the pydantic-ai agent.
        pricing: dollars per million input/output tokens; without it, cost is 0.
    """

    def __init__(self, agent: Agent[Any, Any], *, pricing: Pricing | None = None) -> None:
        self.agent = agent
        self.pricing = pricing

    @asynccontextmanager
    async def run_scope(self) -> AsyncIterator[None]:
        """Entered by the runner once per run: one asyncio loop for all of its calls."""
        if _current_loop() is not None:
            yield
            return
        async with trio_asyncio.open_loop():
            yield

    async def run(self, data: Any, *, feedback: Sequence[str] = ()) -> AgentResult[Any]:
        if _current_loop() is not None:
            return await self._call(data, feedback)
        try:  # called outside a Runner: a loop for this call
            async with trio_asyncio.open_loop():
                return await self._call(data, feedback)
        except BaseExceptionGroup as group:
            raise sole_error(group) from None

    async def _call(self, data: Any, feedback: Sequence[str]) -> AgentResult[Any]:
        prompt = data if isinstance(data, Prompt) else Prompt(str(data))
        text = prompt.text
        if feedback:
            reasons = "\n".join(f"{i}. {message}" for i, message in enumerate(feedback, 1))
            text += f"\n\nEarlier attempts failed:\n{reasons}\nPlease answer again."
        history = list(prompt.message_history) if prompt.message_history else None
        try:
            result = await trio_asyncio.aio_as_trio(self.agent.run)(text, message_history=history)
        except asyncio.CancelledError as error:
            raise AgentCallError(
                "the pydantic-ai call was cancelled on the asyncio side", retryable=False
            ) from error
        return AgentResult(result.output, self._usage(result))

    def _usage(self, result: Any) -> Usage:
        usage = result.usage  # a property in pydantic-ai >= 1.0, a method before
        usage = usage() if inspect.ismethod(usage) else usage
        prompt_tokens = int(getattr(usage, "input_tokens", 0) or 0)
        completion_tokens = int(getattr(usage, "output_tokens", 0) or 0)
        if self.pricing is None:
            return Usage(0.0, prompt_tokens + completion_tokens)
        return self.pricing.usage(prompt_tokens, completion_tokens)


def _current_loop() -> Any:
    try:
        return trio_asyncio.current_loop.get()
    except LookupError:
        return None
