"""``PydanticAIAgent``: a pydantic-ai ``Agent`` as a flujo-trio agent, bridged to Trio.

pydantic-ai runs on asyncio; flujo-trio runs on Trio. The bridge is ``trio-asyncio``:
the runner opens one asyncio loop per run (through this agent's :meth:`run_scope`),
not one per call, and every call runs as an asyncio task inside it. Cancellation
crosses in both directions: cancelling the step cancels the asyncio task (the
provider request is closed), and an asyncio-side cancellation of the call fails the
step (it is not retried, as another attempt would be cancelled the same way).

Input: a prompt (``str``), or :class:`Prompt` to pass ``message_history`` too. On a
retry, the reasons earlier attempts failed are appended to the prompt.

``deps``: the runner's ``resources`` by default; or ``deps=fn`` called with the run's
context for each call (a deps object that is itself callable: wrap it in a lambda).

Usage is pydantic-ai's ``RunUsage`` as it is: input plus output tokens, priced with
``pricing`` or else by ``genai-prices`` from the same usage (cache reads and writes
priced as the provider prices them). A failed run still reports what it used.

Retries: one retry layer, the step's. pydantic-ai retries invalid output inside a
run (``output`` retries, default 1), which would multiply with the step's retries
and send requests no reservation covers. The adapter runs pydantic-ai with
``retries={"output": output_retries}`` (default 0), so an invalid output ends the
run at once as :class:`~flujo_trio.OutputParseError`: the step retries it as its
next attempt, reserved, counted in ``attempts``, with the reason as feedback.
pydantic-ai's tool retries (a tool raising ``ModelRetry``) stay its own.
"""

from __future__ import annotations

import asyncio
import sys
import warnings
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, ClassVar

import attrs
from pydantic_ai import Agent

from ..backoff import Backoff
from ..errors import AgentCallError, ConfigurationError, OutputParseError
from ..runtime.errors import sole_error
from ..usage import AgentResult, Usage
from .http import FATAL_STATUSES, retry_after
from .pricing import KnownPrice, Price, Pricing, known_price, priced
from .tokens import estimate_tokens

with warnings.catch_warnings():
    # trio-asyncio subclasses asyncio's child watcher, deprecated since Python 3.12; the
    # import warns once, about trio-asyncio's code, not about anything a user does.
    warnings.filterwarnings(
        "ignore", message=".*AbstractChildWatcher.*", category=DeprecationWarning
    )
    import trio_asyncio

#: Tokens a request adds around the prompt, generously.
_PER_REQUEST_OVERHEAD = 32


#: The asyncio functions trio-asyncio replaces with versions that know its loop.
#: ``current_task`` is among them because since Python 3.12 it is implemented in C and
#: no longer calls the (patched) ``get_running_loop`` from Python.
_PATCHED_BY_TRIO_ASYNCIO = ("get_running_loop", "_get_running_loop", "current_task")


def _repair_early_anyio_import() -> None:
    """trio-asyncio patches ``asyncio.get_running_loop`` and ``asyncio.current_task``
    when it is imported; a module that did ``from asyncio import current_task`` before
    that (anyio's asyncio backend, imported early by anyio's pytest plugin) keeps the
    unpatched functions and fails inside the bridge with "no running event loop" (on
    3.12+ through ``current_task``, which pydantic-ai reaches via anyio task groups).
    Point the backend's copies at the patches, which behave as the originals outside
    a trio-asyncio loop."""
    backend = sys.modules.get("anyio._backends._asyncio")
    if backend is None:
        return
    for name in _PATCHED_BY_TRIO_ASYNCIO:
        if getattr(backend, name, None) is not None:
            setattr(backend, name, getattr(asyncio, name))


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
        pricing: dollars per million input/output tokens; without it, the price of
            the agent's model in ``genai-prices`` (a model it does not know costs 0).
        deps: the agent's dependencies: default, the runner's ``resources``; or a
            callable of the run's context, called per call.
        output_retries: pydantic-ai's own retries of invalid output per call (default
            0: the step retries instead, see the module docstring).
        max_tokens: the completion cap of one request, for :meth:`reservation`
            (default: ``max_tokens`` of the agent's ``model_settings``).
        prompt_overhead: tokens to reserve for what the agent adds to the prompt
            (system prompt, instructions, tool and output definitions).
    """

    default_backoff: ClassVar[Backoff] = Backoff()
    """Retries of a pydantic-ai step wait (exponential, full jitter) unless the step
    says otherwise."""

    def __init__(
        self,
        agent: Agent[Any, Any],
        *,
        pricing: Pricing | None = None,
        deps: Any = None,
        output_retries: int = 0,
        max_tokens: int | None = None,
        prompt_overhead: int = 1000,
    ) -> None:
        if (
            isinstance(output_retries, bool)
            or not isinstance(output_retries, int)
            or output_retries < 0
        ):
            raise ConfigurationError(f"output_retries must be an int >= 0, got {output_retries!r}")
        self.agent = agent
        self.pricing = pricing
        self.deps = deps
        self.output_retries = output_retries
        settings = agent.model_settings if isinstance(agent.model_settings, dict) else {}
        self.max_tokens = max_tokens if max_tokens is not None else settings.get("max_tokens")
        self.prompt_overhead = prompt_overhead

    @property
    def price(self) -> Price | None:
        """``pricing``, or else the agent's model in ``genai-prices`` (None: unknown)."""
        if self.pricing is not None:
            return self.pricing
        model = self.agent.model
        name = getattr(model, "model_name", model)
        return known_price(name) if isinstance(name, str) else None

    @asynccontextmanager
    async def run_scope(self) -> AsyncIterator[None]:
        """Entered by the runner once per run: one asyncio loop for all of its calls."""
        if _current_loop() is not None:
            yield
            return
        async with trio_asyncio.open_loop():
            yield

    def reservation(self, data: Any) -> Usage:
        """An upper bound on a call's first request: ``Step(..., reserve=agent.reservation)``.

        The prompt (with its message history), generously estimated, plus
        ``prompt_overhead``, plus ``max_tokens`` of completion. Requests pydantic-ai
        makes after the first (its tool loop) are counted in the result, but are not
        reserved one by one.
        """
        if self.max_tokens is None:
            raise ConfigurationError(
                "PydanticAIAgent.reservation needs max_tokens (the adapter's, or in the "
                "agent's model_settings): without a completion cap there is no upper bound"
            )
        prompt = data if isinstance(data, Prompt) else Prompt(str(data))
        tokens = estimate_tokens(prompt.text) + self.prompt_overhead + _PER_REQUEST_OVERHEAD
        for message in prompt.message_history or ():
            tokens += estimate_tokens(repr(message))
        return priced(self.price, tokens, self.max_tokens)

    async def run(
        self, data: Any, *, context: Any = None, feedback: Sequence[str] = (), resources: Any = None
    ) -> AgentResult[Any]:
        deps = self.deps(context) if callable(self.deps) else self.deps
        if self.deps is None:
            deps = resources
        if _current_loop() is not None:
            return await self._call(data, feedback, deps)
        try:  # called outside a Runner: a loop for this call
            async with trio_asyncio.open_loop():
                return await self._call(data, feedback, deps)
        except BaseExceptionGroup as group:
            raise sole_error(group) from None

    async def _call(self, data: Any, feedback: Sequence[str], deps: Any) -> AgentResult[Any]:
        from pydantic_ai.exceptions import ModelHTTPError, UnexpectedModelBehavior
        from pydantic_ai.usage import RunUsage

        prompt = data if isinstance(data, Prompt) else Prompt(str(data))
        text = prompt.text
        if feedback:
            reasons = "\n".join(f"{i}. {message}" for i, message in enumerate(feedback, 1))
            text += f"\n\nEarlier attempts failed:\n{reasons}\nPlease answer again."
        history = list(prompt.message_history) if prompt.message_history else None
        used = RunUsage()  # pydantic-ai adds to it as it goes: readable after a failure too
        run = trio_asyncio.aio_as_trio(self.agent.run)
        try:
            result = await run(
                text,
                message_history=history,
                deps=deps,
                usage=used,
                retries={"output": self.output_retries},
            )
        except asyncio.CancelledError as error:
            raise AgentCallError(
                "the pydantic-ai call was cancelled on the asyncio side", retryable=False
            ) from error
        except UnexpectedModelBehavior as error:
            cause = f" ({error.__cause__})" if error.__cause__ is not None else ""
            raise OutputParseError(f"{error}{cause}", usage=self._usage(used)) from error
        except ModelHTTPError as error:
            raise AgentCallError(
                f"{error.status_code} from {error.model_name}: {error}",
                retryable=error.status_code not in FATAL_STATUSES,
                usage=self._usage(used),
                retry_after=_retry_after(error),
            ) from error
        except Exception as error:  # a connection error, a tool that raised: usage counts
            raise AgentCallError(
                f"the pydantic-ai run failed with {type(error).__name__}: {error}",
                usage=self._usage(used),
            ) from error
        return AgentResult(result.output, self._usage(used))

    def _usage(self, used: Any) -> Usage:
        """pydantic-ai's run usage: input plus output tokens, priced."""
        input_tokens, output_tokens = int(used.input_tokens), int(used.output_tokens)
        if self.pricing is not None:
            return self.pricing.usage(input_tokens, output_tokens)
        price = self.price
        if isinstance(price, KnownPrice):
            from genai_prices import calc_price

            cost = calc_price(used, price.model, provider_id=price.provider_id).total_price
            return Usage(float(cost), input_tokens + output_tokens)
        return Usage(0.0, input_tokens + output_tokens)


def _retry_after(error: Any) -> float | None:
    parsed = getattr(error, "retry_after", None)  # pydantic-ai reads the header itself
    if isinstance(parsed, int | float):
        return max(0.0, float(parsed))
    return retry_after(error.headers or {})


def _current_loop() -> Any:
    try:
        return trio_asyncio.current_loop.get()
    except LookupError:
        return None
