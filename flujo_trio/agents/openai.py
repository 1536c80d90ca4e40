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
   (``feedback``), so the model can correct itself.

Provider errors map to step behaviour: 429, 5xx, timeouts and connection errors are
retried by the step (after waiting out a ``Retry-After`` header, within the step's
``timeout_s``); 400, 401, 403, 404 and 422 stop the step at once. The SDK's own
retries are off: the step owns retries.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Sequence
from typing import Any

import openai
import trio

from ..errors import AgentCallError, ConfigurationError, OutputParseError, SerializationError
from ..serialization import structure
from ..usage import AgentResult, Usage
from .pricing import Pricing, estimate_tokens
from .schema import json_schema

#: Tokens a chat request adds around the messages (roles, separators), generously.
_PER_REQUEST_OVERHEAD = 32
#: Longest Retry-After the adapter waits out by itself (the step's timeout still rules).
MAX_RETRY_AFTER_S = 60.0
_FATAL_STATUSES = frozenset({400, 401, 403, 404, 422})


class ChatAgent:
    """Call a chat model; returns :class:`AgentResult` with priced usage.

    Args:
        model: the model name the endpoint expects.
        client: an ``openai.AsyncOpenAI``; default: one built from the environment on
            first use (with the SDK's own retries off).
        system_prompt: the system message.
        pricing: dollars per million input/output tokens; without it cost is 0 and
            only tokens are counted.
        max_tokens: the completion cap; required for :meth:`reservation`.
        output_type: an attrs class (or plain type); the model is asked for JSON that
            matches its schema, and the reply is structured into it. A reply that does
            not fit raises :class:`OutputParseError`, which the step retries with the
            parse error as feedback.
        stream: stream the reply (usage arrives with the last chunk).
        context_prompt: ``fn(context) -> str | None``; its text joins the system
            message, which is how context reaches the model.
    """

    def __init__(
        self,
        model: str,
        *,
        client: openai.AsyncOpenAI | None = None,
        system_prompt: str | None = None,
        pricing: Pricing | None = None,
        max_tokens: int | None = None,
        output_type: Any = None,
        stream: bool = False,
        context_prompt: Callable[[Any], str | None] | None = None,
    ) -> None:
        if not isinstance(model, str) or not model:
            raise ConfigurationError(f"ChatAgent needs a model name, got {model!r}")
        if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
            raise ConfigurationError(f"max_tokens must be an int >= 1, got {max_tokens!r}")
        self.model = model
        self._client = client
        self.system_prompt = system_prompt
        self.pricing = pricing
        self.max_tokens = max_tokens
        self.output_type = output_type
        self.schema = json_schema(output_type) if output_type is not None else None
        self.stream = stream
        self.context_prompt = context_prompt

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

    # -- prompts and reservations ----------------------------------------------------------

    def messages(
        self, data: Any, context: Any = None, feedback: Sequence[str] = ()
    ) -> list[dict[str, str]]:
        system = [self.system_prompt] if self.system_prompt else []
        if self.context_prompt is not None and context is not None:
            extra = self.context_prompt(context)
            if extra:
                system.append(extra)
        if self.schema is not None:
            system.append("Reply with one JSON document matching the given schema.")
        messages = [{"role": "system", "content": "\n\n".join(system)}] if system else []
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
        """An upper bound on one call's usage: use as ``Step(..., reserve=agent.reservation)``.

        Prompt tokens are estimated generously from the input and system prompt; the
        completion is bounded by ``max_tokens``. Retries add a feedback message, so
        the bound holds per attempt for typical feedback lengths.
        """
        if self.max_tokens is None:
            raise ConfigurationError(
                "ChatAgent.reservation needs max_tokens: without a completion cap "
                "there is no upper bound to reserve"
            )
        prompt = sum(estimate_tokens(m["content"]) for m in self.messages(data))
        prompt += _PER_REQUEST_OVERHEAD
        if self.pricing is None:
            return Usage(0.0, prompt + self.max_tokens)
        return self.pricing.usage(prompt, self.max_tokens)

    def _usage(self, prompt_tokens: int, completion_tokens: int) -> Usage:
        if self.pricing is None:
            return Usage(0.0, prompt_tokens + completion_tokens)
        return self.pricing.usage(prompt_tokens, completion_tokens)

    # -- the call ----------------------------------------------------------------------

    async def run(
        self, data: Any, *, context: Any = None, feedback: Sequence[str] = ()
    ) -> AgentResult[Any]:
        request: dict[str, Any] = {
            "model": self.model,
            "messages": self.messages(data, context, feedback),
        }
        if self.max_tokens is not None:
            request["max_tokens"] = self.max_tokens
        if self.schema is not None:
            name = getattr(self.output_type, "__name__", "output")
            request["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": name, "schema": self.schema, "strict": True},
            }
        try:
            text, usage = await (self._streamed(request) if self.stream else self._single(request))
        except openai.APIStatusError as error:
            await self._raise_status(error)
        except (openai.APITimeoutError, openai.APIConnectionError) as error:
            raise AgentCallError(f"{type(error).__name__}: {error}", retryable=True) from error
        return AgentResult(self._parse(text, usage), usage)

    async def _single(self, request: dict[str, Any]) -> tuple[str, Usage]:
        response = await self.client.chat.completions.create(**request)
        text = (response.choices[0].message.content or "") if response.choices else ""
        usage = response.usage
        return text, self._usage(
            usage.prompt_tokens if usage else 0, usage.completion_tokens if usage else 0
        )

    async def _streamed(self, request: dict[str, Any]) -> tuple[str, Usage]:
        """Server-sent events read to the end of the body (never left half-consumed, so
        nothing waits for the garbage collector; a cancel closes the connection)."""
        parts: list[str] = []
        prompt_tokens = completion_tokens = 0
        streaming = self.client.chat.completions.with_streaming_response
        async with streaming.create(
            **request, stream=True, stream_options={"include_usage": True}
        ) as response:
            lines = response.iter_lines()
            async with contextlib.aclosing(lines):
                async for line in lines:
                    if not line.startswith("data:"):
                        continue
                    payload = line[len("data:") :].strip()
                    if payload == "[DONE]":
                        continue
                    chunk = json.loads(payload)
                    for choice in chunk.get("choices") or ():
                        content = (choice.get("delta") or {}).get("content")
                        if content:
                            parts.append(content)
                    usage = chunk.get("usage")
                    if usage:
                        prompt_tokens = int(usage.get("prompt_tokens", 0))
                        completion_tokens = int(usage.get("completion_tokens", 0))
        return "".join(parts), self._usage(prompt_tokens, completion_tokens)

    async def _raise_status(self, error: openai.APIStatusError) -> Any:
        status = error.status_code
        message = f"{status} from {self.model}: {error.message}"
        if status in _FATAL_STATUSES:
            raise AgentCallError(message, retryable=False) from error
        retry_after = _retry_after(error)
        if retry_after is not None:
            # Wait here, inside the attempt: the step's timeout_s still bounds it.
            await trio.sleep(min(retry_after, MAX_RETRY_AFTER_S))
        raise AgentCallError(message, retryable=True) from error

    def _parse(self, text: str, usage: Usage) -> Any:
        if self.output_type is None:
            return text
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise OutputParseError(f"the reply is not JSON: {error}", usage=usage) from error
        try:
            return structure(data, self.output_type, what="the reply")
        except SerializationError as error:
            raise OutputParseError(str(error), usage=usage) from error


def _retry_after(error: openai.APIStatusError) -> float | None:
    value = error.response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
