"""``ChatAgent``: an OpenAI-compatible chat endpoint as a flujo-trio agent.

Works with OpenAI and anything that speaks its chat-completions API (vLLM, Ollama,
LiteLLM proxies). Point it at an endpoint with the SDK's environment variables,
``OPENAI_API_KEY`` and ``OPENAI_BASE_URL``, or pass your own ``AsyncOpenAI`` client.
The SDK runs on Trio through anyio, so cancelling the step (caller cancel, a sibling's
budget breach, a timeout) closes the HTTP connection at once, mid-stream too.

What the model sees, per call:

1. a system message: ``system_prompt``, plus ``context_prompt(context)`` when given;
2. a user message: the step input (text as is, anything else as JSON);
3. on a retry, one more user message listing why each earlier attempt failed
   (``feedback``), so the model can correct itself;
4. with tools, the model's tool calls and their results, round after round.

Provider errors map to step behaviour: 429, 5xx, timeouts and connection errors are
retryable (with the provider's ``Retry-After`` as ``AgentCallError.retry_after``, which
the step's backoff honours); 400, 401, 403, 404 and 422 stop the step at once. The
SDK's own retries are off: the step owns retries, and it waits between them
(:attr:`ChatAgent.default_backoff`), never the adapter.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import openai

from ..agent_api import Emitter, UsageMeter
from ..backoff import Backoff
from ..errors import AgentCallError, ConfigurationError, OutputParseError
from ..usage import AgentResult, Usage
from .completions import MalformedReply, Meter, Reply, complete, provider_error, stream
from .outputs import OutputSpec, ReplyMismatch
from .pricing import Price, Pricing, known_price, priced
from .tokens import Encoding, count_tokens, estimate_tokens, offline_encoding
from .tools import Tool, run_tool_calls, tools_of

#: Tokens a chat request adds around the messages (roles, separators), generously.
_PER_REQUEST_OVERHEAD = 32
#: Tokens each message adds for its role and separators.
_PER_MESSAGE_OVERHEAD = 4

Message = dict[str, Any]


class ChatAgent:
    """Call a chat model; returns :class:`AgentResult` with priced usage.

    Args:
        model: the model name the endpoint expects.
        client: an ``openai.AsyncOpenAI``; default: one built from the environment on
            first use (with the SDK's own retries off).
        system_prompt: the system message.
        pricing: dollars per million input/output tokens. Without it the model's price
            comes from ``genai-prices`` by name; a model it does not know costs 0 and
            only tokens are counted.
        max_tokens: the completion cap; required for :meth:`reservation`.
        output_type: what the reply must be: a pydantic model, dataclass, TypedDict,
            attrs class, enum, ``Literal``, tuple, union or plain type. The model is
            asked for JSON matching its schema; a reply that does not fit raises
            :class:`OutputParseError`, which the step retries with the reason as
            feedback. Without it (or with ``str``) the reply is the text.
        tools: functions the model may call (see :mod:`flujo_trio.agents.tools`).
        max_tool_rounds: how many rounds of tool calls one call may take; a model
            still asking for tools after that fails the step (not retried).
        stream: stream the reply: text reaches ``runner.stream()`` consumers as it
            arrives (:class:`~flujo_trio.AgentDelta`), and a cancelled stream is
            charged what it used so far.
        context_prompt: ``fn(context) -> str | None``; its text joins the system
            message, which is how context reaches the model.
    """

    default_backoff: ClassVar[Backoff] = Backoff()
    """Retries of a ChatAgent step wait (exponential, full jitter) unless the step says
    otherwise: immediate retries hammer a provider that just said it is overloaded."""

    def __init__(
        self,
        model: str,
        *,
        client: openai.AsyncOpenAI | None = None,
        system_prompt: str | None = None,
        pricing: Pricing | None = None,
        max_tokens: int | None = None,
        output_type: Any = None,
        tools: Sequence[Callable[..., Any]] = (),
        max_tool_rounds: int = 8,
        stream: bool = False,
        context_prompt: Callable[[Any], str | None] | None = None,
    ) -> None:
        if not isinstance(model, str) or not model:
            raise ConfigurationError(f"ChatAgent needs a model name, got {model!r}")
        if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
            raise ConfigurationError(f"max_tokens must be an int >= 1, got {max_tokens!r}")
        if (
            isinstance(max_tool_rounds, bool)
            or not isinstance(max_tool_rounds, int)
            or max_tool_rounds < 0
        ):
            raise ConfigurationError(
                f"max_tool_rounds must be an int >= 0, got {max_tool_rounds!r}"
            )
        self.model = model
        self._client = client
        self.system_prompt = system_prompt
        self.pricing = pricing
        self.max_tokens = max_tokens
        self.output_type = output_type
        self.output = None if output_type in (None, str) else OutputSpec.of(output_type)
        self.tools: dict[str, Tool] = tools_of(tools)
        self.max_tool_rounds = max_tool_rounds
        self.stream = stream
        self.context_prompt = context_prompt
        self.encoding: Encoding | None = offline_encoding(model)
        """tiktoken's encoding when it is on disk; token estimates use it (else a heuristic)."""
        self._price: Price | None = pricing
        self._price_resolved = pricing is not None

    @property
    def schema(self) -> dict[str, Any] | None:
        """The JSON Schema the reply must match (None for text replies)."""
        return self.output.schema if self.output is not None else None

    @property
    def client(self) -> openai.AsyncOpenAI:
        if self._client is None:
            try:
                self._client = openai.AsyncOpenAI(max_retries=0)
            except openai.OpenAIError as error:
                raise ConfigurationError(
                    f"ChatAgent could not build an OpenAI client ({error}); set "
                    "OPENAI_API_KEY (and OPENAI_BASE_URL for other endpoints) or pass client="
                ) from error
        return self._client

    @property
    def price(self) -> Price | None:
        """``pricing``, or else the model's price in ``genai-prices`` (None: unknown)."""
        if not self._price_resolved:
            api_url = str(self._client.base_url) if self._client is not None else None
            self._price = known_price(self.model, api_url)
            self._price_resolved = True
        return self._price

    # -- prompts and reservations ----------------------------------------------------------

    def messages(
        self, data: Any, context: Any = None, feedback: Sequence[str] = ()
    ) -> list[Message]:
        system = [self.system_prompt] if self.system_prompt else []
        if self.context_prompt is not None and context is not None:
            extra = self.context_prompt(context)
            if extra:
                system.append(extra)
        if self.output is not None:
            system.append("Reply with one JSON document matching the given schema.")
        messages: list[Message] = (
            [{"role": "system", "content": "\n\n".join(system)}] if system else []
        )
        text = data if isinstance(data, str) else json.dumps(data, default=str)
        messages.append({"role": "user", "content": text})
        if feedback:
            lines = "\n".join(f"{i}. {message}" for i, message in enumerate(feedback, 1))
            messages.append(
                {
                    "role": "user",
                    "content": f"Earlier attempts failed:\n{lines}\nPlease answer again, "
                    "fixing these problems.",
                }
            )
        return messages

    def reservation(self, data: Any) -> Usage:
        """An upper bound on the call's first request: ``Step(..., reserve=agent.reservation)``.

        Prompt tokens are estimated generously from the messages, the tools and the
        output schema (tiktoken's count plus a margin when its encoding is on disk);
        the completion is bounded by ``max_tokens``. Retries add a feedback message,
        so the bound holds per attempt for typical feedback lengths. Each later
        request of a tool loop reserves its own bound the same way.
        """
        return self._bound(self.messages(data))

    def _bound(self, messages: list[Message], known: int = 0) -> Usage:
        """``known``: prompt tokens the provider already billed for part of ``messages``
        (a later request of a tool loop), a floor for the estimate."""
        if self.max_tokens is None:
            raise ConfigurationError(
                "ChatAgent.reservation needs max_tokens: without a completion cap "
                "there is no upper bound to reserve"
            )
        return self._usage(max(self._prompt_estimate(messages), known), self.max_tokens)

    def _prompt_estimate(self, messages: list[Message]) -> int:
        prompt = _PER_REQUEST_OVERHEAD + sum(self._message_estimate(m) for m in messages)
        if self.tools:
            prompt += estimate_tokens([t.definition() for t in self.tools.values()], self.encoding)
        if self.output is not None:
            prompt += estimate_tokens(self.output.schema, self.encoding)
        return prompt

    def _message_estimate(self, message: Message) -> int:
        tokens = _PER_MESSAGE_OVERHEAD + estimate_tokens(
            message.get("content") or "", self.encoding
        )
        if message.get("tool_calls"):
            tokens += estimate_tokens(message["tool_calls"], self.encoding)
        return tokens

    def _prompt_guess(self, messages: list[Message]) -> int:
        """A best guess (not a bound) of a request's prompt tokens, reported while it
        streams: a usage report cannot be taken back, so it must not run high."""
        texts = [str(m.get("content") or "") + str(m.get("tool_calls") or "") for m in messages]
        if self.tools:
            texts.append(json.dumps([t.definition() for t in self.tools.values()]))
        if self.output is not None:
            texts.append(json.dumps(self.output.schema))
        return sum(count_tokens(text, self.encoding) for text in texts) + 3 * len(messages)

    def _usage(self, prompt_tokens: int, completion_tokens: int) -> Usage:
        return priced(self.price, prompt_tokens, completion_tokens)

    def _request(self, messages: list[Message]) -> dict[str, Any]:
        request: dict[str, Any] = {"model": self.model, "messages": messages}
        if self.max_tokens is not None:
            request["max_tokens"] = self.max_tokens
        if self.output is not None:
            request["response_format"] = self.output.response_format()
        if self.tools:
            request["tools"] = [tool.definition() for tool in self.tools.values()]
        return request

    # -- the call ----------------------------------------------------------------------

    async def run(
        self,
        data: Any,
        *,
        context: Any = None,
        feedback: Sequence[str] = (),
        emit: Emitter | None = None,
        meter: UsageMeter | None = None,
    ) -> AgentResult[Any]:
        """One call: the first request, then one request per round of tool calls.

        The step's reservation covers the first request; each later one is admitted
        through ``meter.request`` with its own bound. The result's usage is the sum
        of every request.
        """
        messages = self.messages(data, context, feedback)
        total = Usage()
        known = 0  # prompt tokens the conversation so far is known to take (billed)
        for round_number in range(self.max_tool_rounds + 1):
            if round_number == 0:
                reply, used = await self._first(messages, emit, meter, total)
            else:
                reply, used = await self._further(messages, emit, meter, total, known)
            total = total + used
            if not reply.tool_calls:
                return AgentResult(self._parse(reply.text, total), total)
            if round_number == self.max_tool_rounds:
                break
            asked = len(messages)
            messages.append(_assistant(reply))
            messages.extend(await run_tool_calls(self.tools, reply.tool_calls, emit))
            # The next prompt holds this one, the reply and the tool results: a floor
            # for its bound when the provider counts more than the estimate.
            known = (
                reply.prompt_tokens
                + reply.completion_tokens
                + sum(self._message_estimate(m) for m in messages[asked + 1 :])
            )
        raise AgentCallError(
            f"{self.model} still asked for tools after {self.max_tool_rounds} round(s) "
            f"(max_tool_rounds={self.max_tool_rounds}): raise max_tool_rounds, or make the "
            "task or the tools' descriptions clearer",
            retryable=False,
            usage=total,
        )

    async def _first(
        self, messages: list[Message], emit: Emitter | None, meter: UsageMeter | None, total: Usage
    ) -> tuple[Reply, Usage]:
        """The request the step's reservation covers; its usage goes to ``meter.add``
        (partial while streaming, exact once known), so a cancel charges what it used."""
        progress = Meter(self._usage, meter.add if meter is not None else None)
        reply = await self._send(messages, emit, progress, total)
        progress.update(reply.prompt_tokens, reply.completion_tokens)
        return reply, self._usage(reply.prompt_tokens, reply.completion_tokens)

    async def _further(
        self,
        messages: list[Message],
        emit: Emitter | None,
        meter: UsageMeter | None,
        total: Usage,
        known: int = 0,
    ) -> tuple[Reply, Usage]:
        """A later request of the tool loop, admitted and settled on its own."""
        if meter is None:  # outside a runner that meters: nothing to reserve against
            reply = await self._send(messages, emit, Meter(self._usage), total)
            return reply, self._usage(reply.prompt_tokens, reply.completion_tokens)
        reserve = self._bound(messages, known) if self.max_tokens is not None else None
        async with meter.request(reserve) as request:
            reply = await self._send(messages, emit, Meter(self._usage, request.add), total)
            used = self._usage(reply.prompt_tokens, reply.completion_tokens)
            request.settle(used)
        return reply, used

    async def _send(
        self, messages: list[Message], emit: Emitter | None, progress: Meter, total: Usage
    ) -> Reply:
        request = self._request(messages)
        try:
            if not self.stream:
                return await complete(
                    self.client,
                    request,
                    prompt_estimate=self._prompt_guess(messages),
                    encoding=self.encoding,
                )
            return await stream(
                self.client,
                request,
                prompt_estimate=self._prompt_guess(messages),
                meter=progress,
                emit=emit,
                encoding=self.encoding,
            )
        except openai.OpenAIError as error:
            # What the call used, this request's streamed part included.
            raise provider_error(error, self.model, total + progress.reported) from error
        except MalformedReply as error:
            raise AgentCallError(
                f"{self.model} sent a malformed reply: {error}; if this repeats, check that "
                "the endpoint speaks the OpenAI chat-completions API (base_url)",
                usage=total + progress.reported,
            ) from error

    def _parse(self, text: str, usage: Usage) -> Any:
        if self.output is None:
            return text
        try:
            return self.output.parse(text)
        except ReplyMismatch as error:
            raise OutputParseError(str(error), usage=usage) from error


def _assistant(reply: Reply) -> Message:
    return {
        "role": "assistant",
        "content": reply.text or None,
        "tool_calls": [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in reply.tool_calls
        ],
    }
