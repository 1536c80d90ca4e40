"""One chat-completions request: sent whole or streamed, read into a :class:`Reply`.

Streaming uses the SDK's typed chunks. While a stream runs, its usage is reported
as it becomes known (an estimate of the prompt at the start, the completion as
text arrives, the provider's exact count from the last chunk), so a stream
cancelled half-way is charged what it really used, not its whole reservation.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import attrs
import openai
from openai.types.chat import ChatCompletionChunk

from ..errors import AgentCallError
from ..usage import Usage, money
from .http import FATAL_STATUSES, retry_after
from .tokens import Encoding, count_tokens


@attrs.frozen
class ToolCall:
    id: str
    name: str
    arguments: str
    """JSON text, as the model wrote it (it may be invalid)."""


@attrs.frozen
class Reply:
    text: str
    tool_calls: tuple[ToolCall, ...]
    prompt_tokens: int
    completion_tokens: int


@attrs.define
class Meter:
    """Prices one request's tokens and reports each increase to ``report``.

    ``report`` adds (it cannot take back): a prompt estimate above the provider's
    final count stays reported, and only increases past it are added.
    """

    price: Callable[[int, int], Usage]
    report: Callable[[Usage], None] | None = None
    reported: Usage = attrs.field(factory=Usage)

    def update(self, prompt_tokens: int, completion_tokens: int) -> None:
        if self.report is None:
            return
        now = self.price(prompt_tokens, completion_tokens)
        more = Usage(
            max(0.0, float(money(now.cost_usd) - money(self.reported.cost_usd))),
            max(0, now.tokens - self.reported.tokens),
        )
        if more.cost_usd or more.tokens:
            self.report(more)
            self.reported = self.reported + more


async def complete(client: openai.AsyncOpenAI, request: dict[str, Any]) -> Reply:
    response = await client.chat.completions.create(**request)
    usage = response.usage
    if not response.choices:
        return Reply("", (), usage.prompt_tokens if usage else 0, 0)
    message = response.choices[0].message
    calls = tuple(
        ToolCall(call.id, call.function.name, call.function.arguments)
        for call in message.tool_calls or ()
        if call.type == "function"
    )
    return Reply(
        message.content or "",
        calls,
        usage.prompt_tokens if usage else 0,
        usage.completion_tokens if usage else 0,
    )


async def stream(
    client: openai.AsyncOpenAI,
    request: dict[str, Any],
    *,
    prompt_estimate: int,
    meter: Meter,
    emit: Callable[[str], Awaitable[None]] | None,
    encoding: Encoding | None,
) -> Reply:
    """Stream one request; ``emit`` each piece of text as it arrives."""
    parts: list[str] = []
    calls: dict[int, list[str]] = {}  # index -> [id, name, arguments]
    prompt_tokens, completion_tokens, exact = prompt_estimate, 0, False
    meter.update(prompt_tokens, 0)
    chunks = _chunks(client, request)
    async with contextlib.aclosing(chunks):  # closed however the loop ends (a cancel in emit)
        async for chunk in chunks:
            for choice in chunk.choices:
                for delta in choice.delta.tool_calls or ():
                    call = calls.setdefault(delta.index, ["", "", ""])
                    call[0] = delta.id or call[0]
                    if delta.function is not None:
                        call[1] += delta.function.name or ""
                        call[2] += delta.function.arguments or ""
                text = choice.delta.content
                if text:
                    parts.append(text)
                    if not exact:
                        completion_tokens += count_tokens(text, encoding)
                        meter.update(prompt_tokens, completion_tokens)
                    if emit is not None:
                        await emit(text)
            if chunk.usage is not None:  # the last chunk (some servers send one each)
                exact = True
                prompt_tokens = chunk.usage.prompt_tokens
                completion_tokens = chunk.usage.completion_tokens
                meter.update(prompt_tokens, completion_tokens)
    if not exact:  # a server that never reported usage: keep the running estimate
        written = "".join(parts) + "".join(call[2] for call in calls.values())
        completion_tokens = count_tokens(written, encoding)
    tool_calls = tuple(ToolCall(*calls[index]) for index in sorted(calls))
    return Reply("".join(parts), tool_calls, prompt_tokens, completion_tokens)


async def _chunks(
    client: openai.AsyncOpenAI, request: dict[str, Any]
) -> AsyncGenerator[ChatCompletionChunk, None]:
    """The SDK's typed chunks, with the body read to its end.

    Not the SDK's ``AsyncStream``: it stops reading at ``[DONE]`` and leaves its
    inner async generators suspended, which Trio reports as a ``ResourceWarning``
    for every stream. Here the SDK still sends the request, maps error statuses and
    types each chunk; only the ``data:`` lines are picked out of the event stream,
    and every generator ends (at the end of the body, or by the error or cancel that
    stops it).
    """
    streaming = client.chat.completions.with_streaming_response
    async with streaming.create(
        **request, stream=True, stream_options={"include_usage": True}
    ) as response:
        lines = response.iter_lines()
        async with contextlib.aclosing(lines):
            async for line in lines:
                if not line.startswith("data:"):
                    continue  # blank separators, comments, event names
                payload = line[len("data:") :].strip()
                if payload == "[DONE]":
                    continue  # read on to the end of the body
                data = json.loads(payload)
                if isinstance(data, dict) and data.get("error"):
                    raise openai.APIError(
                        str(data["error"]), response.http_request, body=data["error"]
                    )
                yield ChatCompletionChunk.model_validate(data)


def provider_error(error: openai.OpenAIError, model: str, usage: Usage) -> AgentCallError:
    """The step-level meaning of an SDK error: retryable or not, and how long to wait."""
    if isinstance(error, openai.APIStatusError):
        status = error.status_code
        message = f"{status} from {model}: {error.message}"
        if status in FATAL_STATUSES:
            return AgentCallError(message, retryable=False, usage=usage)
        return AgentCallError(
            message, retryable=True, usage=usage, retry_after=retry_after(error.response.headers)
        )
    if isinstance(error, openai.APITimeoutError | openai.APIConnectionError):
        return AgentCallError(f"{type(error).__name__}: {error}", retryable=True, usage=usage)
    return AgentCallError(f"{type(error).__name__} from {model}: {error}", usage=usage)
