"""``RayExecutor``: the jobs of a map or parallel step as Ray tasks, under the run's budget.

``MapStep(..., executor=RayExecutor())`` runs each item's body as a Ray task that
runs the sub-pipeline with ``trio.run`` on a worker; the run itself (its governor,
journal, events and merges) stays in this process. See ``docs/howto/ray.md``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, final

import attrs

from ..errors import ConfigurationError
from ..runtime.executor import JobSession
from ..runtime.frame import Frame
from ..usage import finite
from .ray_connect import RayExecutorError as RayExecutorError


def _positive_number(_: object, attribute: Any, value: Any) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not finite(value) or value <= 0:
        raise ConfigurationError(
            f"RayExecutor {attribute.name} must be a number > 0, got {value!r}"
        )


def _optional_positive_number(instance: object, attribute: Any, value: Any) -> None:
    if value is not None:
        _positive_number(instance, attribute, value)


def _optional_count(_: object, attribute: Any, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigurationError(
            f"RayExecutor {attribute.name} must be an int >= 1 or None, got {value!r}"
        )


def _retries(_: object, __: Any, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigurationError(f"RayExecutor retries must be an int >= 0, got {value!r}")


def _runtime_env(_: object, __: Any, value: Any) -> None:
    if value is not None and not isinstance(value, Mapping):
        raise ConfigurationError(
            f"RayExecutor runtime_env must be a mapping (Ray's runtime_env) or None, got {value!r}"
        )


@final
@attrs.frozen
class RayExecutor:
    """Run each job of a fan-out as a Ray task, on a local or a remote cluster.

    Args:
        address: the cluster to connect to (``"auto"``, ``"ray://host:10001"``, ...);
            None starts a local cluster unless Ray is already initialized in this
            process (then that connection is used, whatever ``address`` says).
        num_cpus: CPUs each job's task reserves on the cluster (Ray's ``num_cpus``);
            None: Ray's default for a task, one CPU.
        max_in_flight: at most this many jobs of one fan-out are submitted to Ray at
            once; None: twice as many as the cluster has room for (so a worker that
            frees up starts the next job at once, and few wait in Ray's queue when a
            breach cancels them).
        runtime_env: Ray's ``runtime_env`` for the tasks (and the relay actor), e.g.
            ``{"pip": [...], "env_vars": {...}}``.
        retries: how many times a job is run again when its worker dies (its
            finished steps are taken from its journal, not run again); 0 fails it.
        cancel_grace_s: how long a cancelled job may take to stop its calls and send
            back what it did before its worker is killed (its open calls are then
            charged their reservations, as estimates).

    .. versionadded:: 0.2
    """

    address: str | None = None
    num_cpus: float | None = attrs.field(default=None, validator=_optional_positive_number)
    max_in_flight: int | None = attrs.field(default=None, validator=_optional_count)
    runtime_env: Mapping[str, Any] | None = attrs.field(default=None, validator=_runtime_env)
    retries: int = attrs.field(default=1, validator=_retries)
    cancel_grace_s: float = attrs.field(default=10.0, validator=_positive_number)

    def __attrs_post_init__(self) -> None:
        if self.address is not None and not isinstance(self.address, str):
            raise ConfigurationError(
                f"RayExecutor address must be a string or None, got {self.address!r}"
            )
        if importlib.util.find_spec("ray") is None:
            raise ConfigurationError(
                "RayExecutor needs Ray: install it with pip install 'flujo-trio[ray]'"
            )

    @property
    def cpus_per_job(self) -> float:
        """What each job's task reserves: ``num_cpus``, or Ray's default of one CPU."""
        return 1 if self.num_cpus is None else self.num_cpus

    def open(self, frame: Frame) -> AbstractAsyncContextManager[JobSession]:
        """The session that runs the jobs of one fan-out (the executor hook)."""
        from .ray_session import open_ray_jobs

        return open_ray_jobs(self, frame)
