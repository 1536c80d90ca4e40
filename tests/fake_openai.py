"""A real HTTP server on 127.0.0.1 that speaks just enough of the chat-completions API.

Each test scripts the replies; the server records every request body and every
client disconnect, so tests can prove a cancelled call really closed its connection.
"""

from __future__ import annotations

import json
from typing import Any

import attrs
import h11
import trio


def completion(text: str, prompt_tokens: int = 10, completion_tokens: int = 5) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": "test-model",
        "choices": [
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def tool_calls(
    *calls: tuple[str, str, Any], prompt_tokens: int = 10, completion_tokens: int = 5
) -> dict[str, Any]:
    """A reply asking for tools: ``(call_id, tool_name, arguments)``; arguments that are
    not a string are sent as JSON."""
    body = completion("", prompt_tokens, completion_tokens)
    message = body["choices"][0]["message"]
    message["content"] = None
    message["tool_calls"] = [
        {
            "id": call_id,
            "type": "function",
            "function": {
                "name": name,
                "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments),
            },
        }
        for call_id, name, arguments in calls
    ]
    body["choices"][0]["finish_reason"] = "tool_calls"
    return body


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def chunk(
    content: str | None = None,
    usage: dict[str, int] | None = None,
    tool_call: dict[str, Any] | None = None,
) -> bytes:
    """One SSE event; ``tool_call`` is a tool-call delta (index, id, function)."""
    body: dict[str, Any] = {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "test-model",
        "choices": [],
    }
    if content is not None or tool_call is not None:
        delta: dict[str, Any] = {}
        if content is not None:
            delta["content"] = content
        if tool_call is not None:
            delta["tool_calls"] = [tool_call]
        body["choices"] = [{"index": 0, "delta": delta, "finish_reason": None}]
    if usage is not None:
        body["usage"] = usage
    return f"data: {json.dumps(body)}\n\n".encode()


@attrs.define
class Reply:
    """One scripted reply: a status and JSON body, or an SSE stream of chunks."""

    status: int = 200
    body: Any = None
    headers: list[tuple[str, str]] = attrs.field(factory=list)
    chunks: list[bytes] | None = None
    hang_after_chunks: bool = False


@attrs.define
class LoopbackServer:
    """A server on a free port of 127.0.0.1; each connection goes to ``_handle``."""

    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        async with trio.open_nursery() as nursery:
            task_status.started()
            await trio.serve_listeners(self._handle, listeners, handler_nursery=nursery)

    async def _handle(self, stream: trio.SocketStream) -> None:
        raise NotImplementedError


@attrs.define
class FakeOpenAI(LoopbackServer):
    replies: list[Reply] = attrs.field(factory=list)
    requests: list[dict[str, Any]] = attrs.field(factory=list)
    disconnects: int = 0
    first_chunk_sent: trio.Event = attrs.field(factory=trio.Event)
    disconnected: trio.Event = attrs.field(factory=trio.Event)

    async def _handle(self, stream: trio.SocketStream) -> None:
        connection = h11.Connection(h11.SERVER)
        try:
            while True:
                request = await self._read_request(stream, connection)
                if request is None:
                    return
                self.requests.append(request)
                reply = self.replies.pop(0) if self.replies else Reply(500, {"error": "no reply"})
                if not await self._send(stream, connection, reply):
                    return
                if connection.our_state is h11.MUST_CLOSE:
                    return
                connection.start_next_cycle()
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.RemoteProtocolError):
            self._disconnected()
        finally:
            await stream.aclose()

    def _disconnected(self) -> None:
        self.disconnects += 1
        self.disconnected.set()

    async def _read_request(
        self, stream: trio.SocketStream, connection: h11.Connection
    ) -> dict[str, Any] | None:
        body = b""
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                data = await stream.receive_some()
                if not data:
                    return None
                connection.receive_data(data)
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                return json.loads(body or b"{}")
            elif isinstance(event, h11.ConnectionClosed):
                return None

    async def _send(
        self, stream: trio.SocketStream, connection: h11.Connection, reply: Reply
    ) -> bool:
        """Send ``reply``; False when the client went away instead of reading it all."""

        async def write(event: Any) -> None:
            await stream.send_all(connection.send(event))

        if reply.chunks is None:
            payload = json.dumps(reply.body).encode()
            headers = [
                ("content-type", "application/json"),
                ("content-length", str(len(payload))),
                *reply.headers,
            ]
            await write(h11.Response(status_code=reply.status, headers=headers))
            await write(h11.Data(data=payload))
            await write(h11.EndOfMessage())
            return True
        headers = [("content-type", "text/event-stream"), *reply.headers]
        await write(h11.Response(status_code=reply.status, headers=headers))
        for data in reply.chunks:
            await write(h11.Data(data=data))
            self.first_chunk_sent.set()
        if reply.hang_after_chunks:
            # Wait for the client to go away: reading EOF is how a server sees it.
            while await stream.receive_some():
                pass
            self._disconnected()
            return False
        await write(h11.Data(data=b"data: [DONE]\n\n"))
        await write(h11.EndOfMessage())
        return True
