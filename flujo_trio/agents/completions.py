"""One chat-completions request: sent whole or streamed, read into a :class:`Reply`.

Streaming uses the SDK's typed chunks. While a stream runs, its usage is reported
as it becomes known (an estimate of the prompt at the start, the completion as
text arrives, the provider's exact count from the last chunk), so a stream
cancelled half-way is charged what it really used, not its whole reservation.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any

import attrs
import openai
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from ..errors import AgentCallError, FlujoTrioError
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


class MalformedReply(FlujoTrioError):
    """The endpoint answered, but not with a chat completion (the adapter turns this
    into a retryable :class:`AgentCallError` carrying what the call used)."""


def token_count(value: Any) -> int | None:
    """A provider's token count, or None when it is not one (missing, negative, a
    float, text): the caller then keeps its own estimate rather than crash or bill
    nothing."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


async def complete(
    client: openai.AsyncOpenAI,
    request: dict[str, Any],
    *,
    prompt_estimate: int,
    encoding: Encoding | None,
) -> Reply:
    """Send one request whole. A reply without usable token counts is charged the
    estimates (the prompt's, and the written text's), never zero."""
    try:
        response = await client.chat.completions.create(**request)
    except ValueError as error:  # the body is not JSON
        raise MalformedReply(f"the body is not JSON ({error})") from error
    choices = getattr(response, "choices", None)
    if not isinstance(response, ChatCompletion) or not isinstance(choices, list):
        raise MalformedReply(f"the body is not a chat completion: {str(response)[:200]!r}")
    usage = getattr(response, "usage", None)
    prompt_tokens = token_count(getattr(usage, "prompt_tokens", None))
    completion_tokens = token_count(getattr(usage, "completion_tokens", None))
    text, calls = _message(choices[0]) if choices else ("", ())
    if prompt_tokens is None:
        prompt_tokens = prompt_estimate
    if completion_tokens is None:
        written = text + "".join(call.arguments for call in calls)
        completion_tokens = count_tokens(written, encoding)
    return Reply(text, calls, prompt_tokens, completion_tokens)


def _message(choice: Any) -> tuple[str, tuple[ToolCall, ...]]:
    """The text and tool calls of a completion's choice (the SDK does not validate
    what it reads, so every field is checked here)."""
    message = getattr(choice, "message", None)
    content = getattr(message, "content", None)
    tool_calls = getattr(message, "tool_calls", None) or ()
    if (
        message is None
        or not isinstance(content, str | None)
        or not isinstance(tool_calls, list | tuple)
    ):
        raise MalformedReply(f"its first choice has no valid message: {str(choice)[:200]!r}")
    calls = []
    for call in tool_calls:
        if getattr(call, "type", None) != "function":
            continue
        function = getattr(call, "function", None)
        name, arguments = getattr(function, "name", None), getattr(function, "arguments", None)
        call_id = getattr(call, "id", None)
        if not isinstance(name, str) or not isinstance(call_id, str):
            raise MalformedReply(f"a tool call has no id or function name: {str(call)[:200]!r}")
        if not isinstance(arguments, str):  # JSON as data, not as text: take it as meant
            arguments = "" if arguments is None else json.dumps(arguments, default=str)
        calls.append(ToolCall(call_id, name, arguments))
    return content or "", tuple(calls)


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
                        name = delta.function.name
                        # Some servers repeat the whole name in every delta of a call:
                        # a repeat is not more of the name ("add", not "addadd").
                        if name and name != call[1]:
                            call[1] += name
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
                prompt = token_count(chunk.usage.prompt_tokens)
                completion = token_count(chunk.usage.completion_tokens)
                if prompt is not None and completion is not None:  # else: keep estimating
                    exact = True
                    prompt_tokens, completion_tokens = prompt, completion
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
        chunks, other = 0, ""  # chunks yielded; the first line that was not an event
        async with contextlib.aclosing(lines):
            while True:
                try:
                    line = await anext(lines)
                except StopAsyncIteration:
                    if not chunks:  # a JSON body, an error sent with 200, or nothing
                        raise MalformedReply(
                            f"the stream carried no chat-completion chunk (it began {other!r:.200})"
                        ) from None
                    return
                except Exception as error:  # the HTTP client's: the connection broke mid-body
                    raise openai.APIConnectionError(
                        message=f"the stream broke off: {error}", request=response.http_request
                    ) from error
                if not line.startswith("data:"):
                    other = other or line
                    continue  # blank separators, comments, event names
                payload = line[len("data:") :].strip()
                if payload == "[DONE]":
                    continue  # read on to the end of the body
                try:
                    data = json.loads(payload)
                except ValueError as error:
                    await _abandon(response, lines)
                    raise MalformedReply(f"a streamed event is not JSON ({error})") from error
                if isinstance(data, dict) and data.get("error"):
                    await _abandon(response, lines)
                    raise openai.APIError(
                        str(data["error"]), response.http_request, body=data["error"]
                    )
                try:
                    chunk = ChatCompletionChunk.model_validate(data)
                except ValueError as error:  # pydantic's ValidationError
                    await _abandon(response, lines)
                    raise MalformedReply(
                        f"a streamed event is not a chat-completion chunk ({error})"
                    ) from error
                chunks += 1
                yield chunk


async def _abandon(response: Any, lines: AsyncIterator[str]) -> None:
    """Stop reading a body early: close the connection, then run the HTTP client's
    nested line generators to their end (closing only the outer one would leave the
    inner ones suspended, which Trio reports as a ``ResourceWarning``)."""
    await response.http_response.aclose()
    with contextlib.suppress(Exception):  # reading a closed body may raise: done either way
        async for _ in lines:
            pass


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
