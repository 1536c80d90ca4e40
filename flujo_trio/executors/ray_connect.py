"""Connecting this process to Ray without taking over the host's signal handlers.

Kept apart from ``ray.py`` so the session (which connects) and the executor's
declaration (which the session reads) do not import each other.
"""

from __future__ import annotations

import signal
import threading
from typing import TYPE_CHECKING, Any

from ..errors import FlujoTrioError

if TYPE_CHECKING:
    from .ray import RayExecutor


class RayExecutorError(FlujoTrioError):
    """Ray could not be used: not installed, or its cluster could not be reached."""


def connect(executor: RayExecutor) -> None:
    """Initialize Ray in this process if nobody did, without changing its signal
    handlers (``ray.init`` installs a SIGTERM handler; it is put back as it was).

    What Ray itself still does: it registers an ``atexit`` hook that stops a local
    cluster it started, and prints its workers' output on this process's stderr.
    """
    import ray

    if ray.is_initialized():
        return
    options: dict[str, Any] = {"configure_logging": False}
    if executor.address is None:
        options["include_dashboard"] = False
    saved = (
        {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        if threading.current_thread() is threading.main_thread()
        else {}
    )
    try:
        ray.init(address=executor.address, **options)
    except (ConnectionError, RuntimeError, ValueError) as error:
        where = executor.address or "a new local cluster"
        raise RayExecutorError(
            f"Could not start Ray on {where}: {error}. Check that the cluster is up "
            "(ray status) and that its Ray and Python versions match this process's, "
            "or call ray.init(...) yourself before the run"
        ) from error
    finally:
        for sig, handler in saved.items():
            if signal.getsignal(sig) is not handler:
                signal.signal(sig, handler)
