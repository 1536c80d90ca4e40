"""The map actor: one job per item, outputs in input order, contexts merged back."""

from __future__ import annotations

from typing import Any

from ..dsl.map import MapStep
from ..dsl.parallel import MergeStrategy
from .fanout import Job, fan_out
from .frame import Frame
from .merge import MergeConflict, merge_contexts
from .record import StepRecord
from .user_code import UserCodeFailed, call_user


async def run_map(step: MapStep, data: Any, frame: Frame, record: StepRecord) -> None:
    owner = f"MapStep {step.name!r}"
    source: Any = data
    try:
        if callable(step.items):
            source = await call_user(owner, "items", step.items, frame.context)
        elif step.items is not None:
            source = step.items
        items = list(source)
    except UserCodeFailed as error:
        record.finish(False, None, str(error))
        return
    except TypeError:
        record.finish(False, None, f"{owner} needs an iterable of items, got {source!r}")
        return
    jobs = [
        Job(f"{step.name}[{index}]", step.body, item, "item") for index, item in enumerate(items)
    ]
    done = await fan_out(
        jobs,
        frame,
        record,
        max_concurrency=step.max_concurrency,
        fail_fast=True,
        job_limits=step.item_limits,
        executor=step.executor,
    )
    results, failed = done.started, done.failed
    output = [job.output for job in results]
    if failed:
        record.finish(False, output, "; ".join(f"{j.name} failed: {j.feedback}" for j in failed))
        return
    if done.paused:
        first = done.paused[0]
        record.pause(first.pause_message, first.feedback)
        return
    try:
        merge_contexts(
            frame.context,
            done.snapshot,
            [job.branch_context for job in results],
            MergeStrategy.CONTEXT_UPDATE,
        )
    except MergeConflict as conflict:
        record.metadata["merge_conflict"] = conflict.key
        record.finish(False, output, str(conflict))
        return
    record.finish(True, output)
