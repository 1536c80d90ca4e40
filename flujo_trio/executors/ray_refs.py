"""Waiting for a Ray object from Trio without a thread.

``ray.get`` blocks; in a worker it also tells the raylet the task is blocked (and
gives its CPU back until it returns). Instead, :func:`result_of` asks Ray to call
back when the object is ready (``ObjectRef.future()``), and the callback, on one of
Ray's threads, wakes the waiting Trio task through the run's token. A callback that
comes after the Trio run has ended has nobody to wake and does nothing.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
from collections.abc import Callable
from typing import Any

import trio


def on_ready(ref: Any, then: Callable[[concurrent.futures.Future[Any]], None]) -> None:
    """Call ``then(future)`` in this Trio run once ``ref`` is ready (or failed)."""
    token = trio.lowlevel.current_trio_token()
    future: concurrent.futures.Future[Any] = ref.future()

    def wake(done: concurrent.futures.Future[Any]) -> None:
        with contextlib.suppress(trio.RunFinishedError):  # that run is over: nobody waits
            token.run_sync_soon(then, done)

    future.add_done_callback(wake)


async def result_of(ref: Any) -> Any:
    """The value of ``ref`` (raises Ray's error for a failed task or actor call)."""
    ready = trio.Event()
    found: list[concurrent.futures.Future[Any]] = []

    def then(future: concurrent.futures.Future[Any]) -> None:
        found.append(future)
        ready.set()

    on_ready(ref, then)
    await ready.wait()
    return found[0].result()
