"""Before a run executes: creating it, or loading and taking over a stored one.

Everything that can refuse a start or a resume (an id already taken, a finished run,
a changed pipeline, a bad human answer, a live owner) is checked here, before the
store is written: a refused start or resume leaves stored data exactly as it was.
"""

from __future__ import annotations

import os
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs
import trio

from ..context import PipelineContext, RunStatus
from ..copying import copy_attrs_fields
from ..dsl.shape import fingerprint, first_difference
from ..errors import ConfigurationError, ResumeError, SerializationError
from ..state.journal import (
    Address,
    CallRecord,
    CallStatus,
    Entry,
    StepStatus,
    latest_entries,
)
from ..state.owner import new_owner
from ..state.records import RunState, Spent
from ..usage import Usage, UsageLimits, money
from .delta import check_changes
from .replay import Replay

if TYPE_CHECKING:
    from .runner import Runner

_FINAL = (RunStatus.COMPLETED, RunStatus.FAILED)


class Start:
    """A new run."""

    __slots__ = ("context", "input", "limits", "run_id")

    def __init__(
        self,
        input: Any,
        context: PipelineContext | None,
        run_id: str | None,
        limits: UsageLimits | None,
    ) -> None:
        self.input, self.context, self.run_id, self.limits = input, context, run_id, limits


class Resume:
    """Continuing a stored run (``answered``: a human answer was given)."""

    __slots__ = ("answer", "answered", "limits", "run_id")

    def __init__(
        self, run_id: str, answer: Any, answered: bool, limits: UsageLimits | None
    ) -> None:
        self.run_id, self.answer, self.answered, self.limits = run_id, answer, answered, limits


class Setup:
    """A run ready to execute: owned by this process, its replay (if resumed) loaded.

    ``estimates`` are calls lost in flight by an earlier execution, now charged their
    reservations.
    """

    __slots__ = ("context", "estimates", "input", "limits", "owner", "replay", "spent", "state")

    def __init__(
        self,
        state: RunState,
        owner: str,
        input: Any,
        context: PipelineContext,
        limits: UsageLimits,
        spent: Spent,
        replay: Replay | None,
        estimates: tuple[Entry, ...] = (),
    ) -> None:
        self.state, self.owner, self.input, self.context = state, owner, input, context
        self.limits, self.spent, self.replay, self.estimates = limits, spent, replay, estimates

    @property
    def resumed(self) -> bool:
        return self.replay is not None


def _check_limits(limits: object) -> UsageLimits | None:
    if limits is not None and not isinstance(limits, UsageLimits):
        raise ConfigurationError(f"limits must be a UsageLimits or None, got {limits!r}")
    return limits


async def open_new(runner: Runner, start: Start) -> Setup:
    run_id = start.run_id if start.run_id is not None else os.urandom(16).hex()
    if not isinstance(run_id, str) or not run_id.strip():
        raise ConfigurationError(f"run_id must be a non-empty string, got {run_id!r}")
    limits = _check_limits(start.limits) or runner.limits
    context = start.context
    if context is None:
        context = runner.context_type()
    elif not isinstance(context, runner.context_type):
        raise ConfigurationError(
            f"context must be an instance of {runner.context_type.__name__}, "
            f"got {type(context).__name__}"
        )
    context.run_id = run_id
    context.status = RunStatus.RUNNING
    owner = new_owner()
    plan = runner.plan
    state = RunState(
        run_id=run_id,
        pipeline_name=runner.name,
        status=RunStatus.RUNNING,
        input=start.input,
        context=context,
        initial_context=context,
        limits=limits,
        origin=runner.origin,
        shape=plan.shape,
        fingerprint=plan.fingerprint,
        owner=owner,
    )
    with plan.allowing(), trio.CancelScope(shield=True):
        # A write cannot be interrupted half-way: once it is done, the caller's cancel
        # lands in the run's own cleanup, which stores the run as cancelled.
        await runner.store.create_run(state)
    return Setup(state, owner, start.input, context, limits, Spent(), None)


def first_paused(journal: tuple[Entry, ...]) -> Address | None:
    """The address of the human step a resume answers: the first paused one in
    declared order."""
    steps, _, _ = latest_entries(journal)
    paused = [s for s in steps.values() if s.status is StepStatus.PAUSED and s.kind == "human"]
    return min(paused, key=lambda saved: saved.position).address if paused else None


async def open_resume(runner: Runner, resume: Resume) -> Setup:
    plan, store = runner.plan, runner.store
    run_id = resume.run_id
    limits = _check_limits(resume.limits) or runner.limits
    with plan.allowing():
        stored = await store.load_run(run_id)
    if stored is None:
        raise ResumeError(f"No run {run_id!r} in this runner's store")
    if stored.pipeline_name != runner.name:
        raise ResumeError(
            f"Run {run_id!r} belongs to pipeline {stored.pipeline_name!r}, but this runner "
            f"runs {runner.name!r}: resume it with the runner that started it"
        )
    if stored.status in _FINAL:
        raise ResumeError(f"Run {run_id!r} is {stored.status.value}: there is nothing to resume")
    started_with = stored.initial_context if stored.initial_context is not None else stored.context
    if not isinstance(started_with, runner.context_type):
        raise ResumeError(
            f"Run {run_id!r} was started with a context of type "
            f"{type(started_with).__name__}, but this runner's context_type is "
            f"{runner.context_type.__name__}: resume it with the runner that started it"
        )
    if stored.fingerprint is not None and (
        stored.shape is None or fingerprint(stored.shape) != stored.fingerprint
    ):
        # Without this, a shape column changed by hand would switch the check off.
        raise SerializationError(
            f"Cannot load run {run_id!r}: its stored pipeline shape is damaged (it does not "
            "match the run's fingerprint)"
        )
    if stored.shape is not None and stored.fingerprint != plan.fingerprint:
        difference = first_difference(stored.shape, plan.shape) or "its shape changed"
        raise ResumeError(
            f"Run {run_id!r} was started with another pipeline shape: {difference}. Resume "
            "it with the pipeline it was started with (agent code may change, the steps' "
            "kinds, names and nesting may not)"
        )
    answer_for: Address | None = None
    answer = resume.answer
    if stored.status is RunStatus.PAUSED:
        answer_for = first_paused(stored.journal)
        where = f" at {'/'.join(str(p) for p in answer_for)!r}" if answer_for else ""
        if not resume.answered or answer_for is None:
            raise ResumeError(
                f"Run {run_id!r} is paused{where} waiting for a person: "
                "pass human_input=... to resume it"
            )
        human = plan.human_at(answer_for)
        if human is None:
            raise ResumeError(f"Run {run_id!r} is paused at a step this pipeline has no longer")
        from ..serialization import structure_answer

        answer = structure_answer(answer, human.input_type, step=human.name)
    elif resume.answered:
        raise ResumeError(
            f"Run {run_id!r} is {stored.status.value}, not paused: it takes no human input; "
            "resume it without an answer to continue it"
        )
    check_changes(started_with, stored.journal, run_id)
    owner = new_owner()
    with plan.allowing(), trio.CancelScope(shield=True):  # as for create_run, above
        claimed = await store.claim_run(
            run_id, owner, expected_version=stored.version, limits=limits
        )
    estimates, extra = lost_in_flight(claimed.journal)
    base = claimed.initial_context if claimed.initial_context is not None else claimed.context
    context = copy_attrs_fields(base, what=f"the context of run {run_id!r}")
    context.run_id = run_id
    context.status = RunStatus.RUNNING
    replay = Replay((*claimed.journal, *estimates), answer_for, answer)
    return Setup(
        claimed,
        owner,
        claimed.input,
        context,
        limits,
        claimed.spent + extra,
        replay,
        tuple(estimates),
    )


def lost_in_flight(journal: tuple[Entry, ...]) -> tuple[list[Entry], Spent]:
    """Calls an earlier execution started and never finished (it crashed): each is
    charged its reservation now, so the budget holds across the crash."""
    latest: dict[tuple[Address, int, int], CallRecord] = {}
    for entry in journal:
        if isinstance(entry, CallRecord):
            latest[(entry.address, entry.call, entry.request)] = entry
    lost: list[Entry] = []
    cost, tokens = Decimal(0), 0
    for record in latest.values():
        if record.status is not CallStatus.STARTED:
            continue
        usage = record.reserved or Usage()
        cost += money(usage.cost_usd)
        tokens += usage.tokens
        lost.append(
            attrs.evolve(record, status=CallStatus.INTERRUPTED, usage=usage, estimated=True)
        )
    return lost, Spent(cost, tokens, 0)
