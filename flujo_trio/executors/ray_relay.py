"""The relay: a Ray actor that carries messages between one fan-out's jobs and its owner.

Ray has no way for a task to call back into the process that submitted it, so each
fan-out starts one small asyncio actor (no CPU reserved) that both ends poll: workers
``post`` their messages (in order: Ray starts an actor's calls from one caller in
the order they were made) and ``receive`` their answers; the owner ``take``s every
job's messages in one call and ``give``s the answers. The relay holds JSON text and
job numbers only: it never decodes what it carries.
"""

from __future__ import annotations

import asyncio
import contextlib


class Relay:
    """Mailboxes of one fan-out (run as a Ray actor: ``ray.remote(Relay)``)."""

    def __init__(self) -> None:
        self._inbox: list[tuple[int, list[str]]] = []
        self._arrived = asyncio.Event()
        self._outboxes: dict[int, list[str]] = {}
        self._ready: dict[int, asyncio.Event] = {}
        self._closed: set[int] = set()

    async def post(self, job: int, messages: list[str]) -> None:
        """A worker's messages for the owner, in the order it sent them."""
        self._inbox.append((job, messages))
        self._arrived.set()

    async def take(self, timeout_s: float) -> list[tuple[int, list[str]]]:
        """Everything posted since the last take; waits up to ``timeout_s`` for some."""
        if not self._inbox:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), timeout_s)
        batch, self._inbox = self._inbox, []
        self._arrived.clear()
        return batch

    async def give(self, answers: list[tuple[int, str]]) -> None:
        """The owner's answers, each for one job."""
        for job, text in answers:
            if job not in self._closed:
                self._outboxes.setdefault(job, []).append(text)
                self._event(job).set()

    async def receive(self, job: int, timeout_s: float) -> list[str]:
        """The answers waiting for ``job``; waits up to ``timeout_s`` for some."""
        event = self._event(job)
        if not self._outboxes.get(job) and job not in self._closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout_s)
        event.clear()
        return self._outboxes.pop(job, [])

    async def close(self, job: int) -> None:
        """``job`` ended: nothing more is kept for it, and its receiver returns now."""
        self._closed.add(job)
        self._outboxes.pop(job, None)
        event = self._ready.pop(job, None)
        if event is not None:
            event.set()

    def _event(self, job: int) -> asyncio.Event:
        event = self._ready.get(job)
        if event is None:
            event = self._ready[job] = asyncio.Event()
        return event
