"""A real HTTP server on 127.0.0.1 that answers with whatever raw bytes a test scripts.

Unlike ``tests/fake_openai.py`` it does not speak the protocol for the test: each reply
is the exact bytes to send (status line, headers, body, or half of it), so tests can
send malformed JSON, cut a stream mid-chunk, or close the connection early.
"""

from __future__ import annotations

import json
from typing import Any

import attrs
import trio

from tests.fake_openai import LoopbackServer


def response(
    status: int, body: bytes, content_type: str = "application/json", **extra: str
) -> bytes:
    """A whole HTTP/1.1 response with ``Connection: close``."""
    headers = [
        f"HTTP/1.1 {status} X",
        f"content-type: {content_type}",
        f"content-length: {len(body)}",
        "connection: close",
    ]
    headers += [f"{name.replace('_', '-')}: {value}" for name, value in extra.items()]
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + body


def sse_head() -> bytes:
    """The head of a streamed reply whose body ends when the server closes."""
    return b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"


def event(data: Any) -> bytes:
    return f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n".encode()


@attrs.define
class Scripted:
    """What to do with one request: send ``data``; then close, or hang until the client
    goes away (``hang``)."""

    data: bytes = b""
    hang: bool = False


@attrs.define
class HostileServer(LoopbackServer):
    replies: list[Scripted] = attrs.field(factory=list)
    requests: list[dict[str, Any]] = attrs.field(factory=list)
    disconnected: trio.Event = attrs.field(factory=trio.Event)

    async def _handle(self, stream: trio.SocketStream) -> None:
        try:
            self.requests.append(await _read_request(stream))
            reply = self.replies.pop(0) if self.replies else Scripted(response(500, b"{}"))
            await stream.send_all(reply.data)
            if reply.hang:
                while await stream.receive_some():
                    pass
                self.disconnected.set()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self.disconnected.set()
        finally:
            await stream.aclose()


async def _read_request(stream: trio.SocketStream) -> dict[str, Any]:
    data = b""
    while b"\r\n\r\n" not in data:
        data += await stream.receive_some()
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        body += await stream.receive_some()
    return json.loads(body or b"{}")
