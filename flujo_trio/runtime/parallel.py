"""The parallel actor: fan out the branches, then merge what the successful ones changed."""

from __future__ import annotations

from typing import Any

from ..dsl.parallel import BranchFailure, MergeStrategy, ParallelStep
from .control import Halt
from .fanout import Job, fan_out
from .frame import Frame
from .merge import MergeConflict, merge_contexts
from .record import StepRecord
from .user_code import UserCodeFailed, call_user


async def run_parallel(step: ParallelStep, data: Any, frame: Frame, record: StepRecord) -> None:
    propagate = step.on_branch_failure is BranchFailure.PROPAGATE
    jobs = [Job(name, body, data, "branch") for name, body in step.branches.items()]
    done = await fan_out(
        jobs,
        frame,
        record,
        max_concurrency=step.max_concurrency,
        fail_fast=propagate,
        executor=step.executor,
    )
    branches, failed = done.started, done.failed
    output = {branch.name: branch.output for branch in branches}
    succeeded = [branch for branch in branches if branch.success]
    if failed:
        record.metadata["failed_branches"] = [branch.name for branch in failed]
    if done.paused and not (propagate and failed):
        # Wait for the human; finished siblings are journaled and replayed on resume.
        first = done.paused[0]
        record.pause(first.pause_message, first.feedback)
        return
    if (propagate and failed) or not succeeded:
        feedback = "; ".join(f"Branch '{b.name}' failed: {b.feedback}" for b in failed)
        record.finish(False, output, feedback)
        return
    contexts = {branch.name: branch.branch_context for branch in succeeded}
    strategy = step.merge_strategy
    try:
        if isinstance(strategy, MergeStrategy):
            merge_contexts(frame.context, done.snapshot, list(contexts.values()), strategy)
        else:
            await call_user(
                f"ParallelStep {step.name!r}", "merge_strategy", strategy, frame.context, contexts
            )
    except MergeConflict as conflict:
        record.metadata["merge_conflict"] = conflict.key
        record.finish(False, output, str(conflict))
        if strategy is MergeStrategy.ERROR_ON_CONFLICT:
            frame.run.control.stop(Halt.MERGE_CONFLICT, str(conflict))
        return
    except UserCodeFailed as error:
        record.finish(False, output, str(error))
        return
    record.finish(True, output)
