"""The relay: a Ray actor that carries messages between one fan-out's jobs and its owner.

Ray has no way for a task to call back into the process that submitted it, so each
fan-out starts one small asyncio actor (no CPU reserved). Workers ``post`` their
messages, and ``ask`` when they need an answer (the question goes in with the
messages before it, and the call returns the answer); the owner ``take``s every
job's messages in one call and ``give``s the answers. Ray starts one caller's calls
to an actor in the order they were made, and these methods do not wait before
queueing, so each job's messages arrive in the order it sent them. The relay holds
JSON text and numbers only: it never decodes what it carries.
"""

from __future__ import annotations

import asyncio
import contextlib


class Relay:
    """Mailboxes of one fan-out (run as a Ray actor: ``ray.remote(Relay)``)."""

    def __init__(self) -> None:
        self._inbox: list[tuple[int, list[str]]] = []
        self._arrived = asyncio.Event()
        self._asked: dict[tuple[int, int], asyncio.Future[str | None]] = {}
        self._closed: set[int] = set()

    async def post(self, job: int, messages: list[str]) -> bool:
        """A worker's messages for the owner, in the order it sent them; returns whether
        the owner has given the job up (the worker then stops it)."""
        self._inbox.append((job, messages))
        self._arrived.set()
        return job in self._closed

    async def ask(self, job: int, question: int, messages: list[str]) -> str | None:
        """Post ``messages`` (the last one asks ``question``) and wait for the answer;
        None if the owner gave the job up (the messages are posted all the same: the
        owner counts them)."""
        if await self.post(job, messages):
            return None
        answer: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._asked[(job, question)] = answer
        try:
            return await answer
        finally:
            self._asked.pop((job, question), None)

    async def take(self, timeout_s: float) -> list[tuple[int, list[str]]]:
        """Everything posted since the last take; waits up to ``timeout_s`` for some."""
        if not self._inbox:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), timeout_s)
        batch, self._inbox = self._inbox, []
        self._arrived.clear()
        return batch

    async def give(self, answers: list[tuple[int, int, str]]) -> None:
        """The owner's answers: (job, question, answer)."""
        for job, question, text in answers:
            waiting = self._asked.get((job, question))
            if waiting is not None and not waiting.done():
                waiting.set_result(text)

    async def close(self, jobs: list[int]) -> None:
        """The owner gave these jobs up: their open questions get no answer (None), and
        their workers learn it from their next call (messages still arrive)."""
        self._closed.update(jobs)
        for (job, _), waiting in list(self._asked.items()):
            if job in self._closed and not waiting.done():
                waiting.set_result(None)  # not cancel(): a cancellation of the call itself goes on
