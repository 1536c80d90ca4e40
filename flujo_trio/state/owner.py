"""Who executes a run: owner identities, leases, and telling a live owner from a dead one.

A run being executed is owned: its owner's id and a lease (a wall-clock deadline the
owner keeps pushing forward) are stored with it. Another process may take a run over
only when nobody owns it, the lease ran out, or the owner is known to be dead: a
process on this host whose pid is gone (or now belongs to a process started later),
which is how a run whose process was SIGKILLed can be resumed at once instead of
after the lease.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from ..context import RunStatus
from ..errors import ConfigurationError, ResumeError, StoreError
from .records import RunState

#: Lease length stores use unless told otherwise.
DEFAULT_LEASE_S = 30.0

#: Statuses a resume may take a run out of (completed and failed runs are final).
RESUMABLE = frozenset(
    {RunStatus.RUNNING, RunStatus.PAUSED, RunStatus.CANCELLED, RunStatus.BUDGET_EXCEEDED}
)


def check_lease(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigurationError(f"lease_s must be a number of seconds > 0, got {value!r}")
    if value == float("inf"):
        raise ConfigurationError("lease_s must be finite: a lease that never ends is no lease")
    return float(value)


def _proc_stat(pid: int) -> tuple[str, str]:
    """The process's state letter and start time in clock ticks since boot (Linux)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return fields[0], fields[19]
    except (OSError, IndexError):
        return "-", "-"


def _start_ticks(pid: int) -> str:
    return _proc_stat(pid)[1]


def _host() -> str:
    return os.uname().nodename


def new_owner() -> str:
    """An owner id for one execution: host, pid, process start time and a random token."""
    pid = os.getpid()
    return f"{_host()}:{pid}:{_start_ticks(pid)}:{os.urandom(6).hex()}"


def owner_is_dead(owner: str) -> bool:
    """True only when ``owner`` is certainly gone: a process of this host that no longer
    runs. Owners on other hosts are judged by their lease alone."""
    parts = owner.split(":")
    if len(parts) != 4 or parts[0] != _host():
        return False
    try:
        pid = int(parts[1])
    except ValueError:
        return False
    if pid == os.getpid():
        return False  # this process: its runs release ownership when they end
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, someone else's
    state, started = _proc_stat(pid)
    if state in ("Z", "X"):
        return True  # killed, not yet reaped by its parent
    return parts[2] != "-" and started not in ("-", parts[2])


def describe_owner(owner: str) -> str:
    parts = owner.split(":")
    if len(parts) == 4:
        return f"process {parts[1]} on {parts[0]}"
    return owner


class Claim:
    """Taking a run over: who takes it, when, and until when the lease holds."""

    __slots__ = ("lease_s", "now", "owner")

    def __init__(self, owner: str, now: datetime, lease_s: float) -> None:
        self.owner, self.now, self.lease_s = owner, now, lease_s

    @property
    def expires(self) -> datetime:
        return self.now + timedelta(seconds=self.lease_s)


class Holding:
    """The ownership columns of a stored run."""

    __slots__ = ("lease_expires_at", "owner", "owner_since", "run_id", "status", "version")

    def __init__(
        self,
        run_id: str,
        status: RunStatus,
        owner: str | None,
        owner_since: datetime | None,
        lease_expires_at: datetime | None,
        version: int,
    ) -> None:
        self.run_id, self.status, self.owner = run_id, status, owner
        self.owner_since, self.lease_expires_at, self.version = (
            owner_since,
            lease_expires_at,
            version,
        )

    @classmethod
    def of(cls, state: RunState) -> Holding:
        return cls(
            state.run_id,
            state.status,
            state.owner,
            state.owner_since,
            state.lease_expires_at,
            state.version,
        )


def claim_refusal(state: Holding, claim: Claim, expected_version: int | None) -> Exception | None:
    """Why ``claim`` may not take ``state`` over, or None when it may (a live owner is
    named first: it is what a resume that lost a race needs to hear)."""
    if state.status not in RESUMABLE:
        return ResumeError(
            f"Run {state.run_id!r} is {state.status.value}: there is nothing to resume"
        )
    owner = state.owner
    if owner is not None and owner != claim.owner:
        expired = state.lease_expires_at is None or state.lease_expires_at <= claim.now
        if not expired and not owner_is_dead(owner):
            return _busy(state, owner)
    if expected_version is not None and state.version != expected_version:
        return ResumeError(
            f"Run {state.run_id!r} changed while this resume was starting (another "
            "process resumed or wrote it); load it again and retry"
        )
    return None


def _busy(state: Holding, owner: str) -> ResumeError:
    since = state.owner_since.isoformat() if state.owner_since else "an unknown time"
    until = state.lease_expires_at.isoformat() if state.lease_expires_at else "?"
    return ResumeError(
        f"Run {state.run_id!r} is being executed by {describe_owner(owner)} since {since} "
        f"(lease until {until}); wait for it to finish, or resume it once that process "
        "has stopped or its lease has expired"
    )


def lost_ownership(run_id: str, owner: str | None) -> StoreError:
    who = f" now owned by {describe_owner(owner)}" if owner else " deleted or taken over"
    return StoreError(
        f"Run {run_id!r} was{who} while this process executed it (its lease expired or it "
        "was deleted); this process stops without writing more"
    )


def run_exists(run_id: str) -> ConfigurationError:
    return ConfigurationError(
        f"Run {run_id!r} already exists in the store: resume it, or pick a new run id"
    )
