"""The demo pipeline: draft, three reviewers in parallel under a cost limit, a person's
approval, publish.

``make demo`` drives it through the CLI on the embedded SQLite store
(``./flujo_trio.db``): ``flujo-trio run examples/demo_pipeline.py:runner`` pauses at the
approval, ``flujo-trio resume RUN_ID --input '{"approved": true}'`` finishes it and
``flujo-trio runs show RUN_ID`` prints the step tree. Running this file directly does
the same from Python. The agents are plain async functions that report usage the way
a model adapter would: no network, no API key.
"""

from __future__ import annotations

import os
import sys

import attrs
import trio

from flujo_trio import (
    AgentResult,
    HumanStep,
    ParallelStep,
    PipelineContext,
    PipelineResult,
    Runner,
    SqliteStore,
    Step,
    StepResult,
    Usage,
    UsageLimits,
    ValidationResult,
)


@attrs.define
class Approval:
    approved: bool
    note: str = ""


@attrs.define
class DemoContext(PipelineContext):
    reviews: list[str] = attrs.field(factory=list)


async def draft(topic: str, *, feedback: list[str]) -> AgentResult[str]:
    await trio.sleep(0.01)
    return AgentResult(f"Trio keeps {topic} structured", Usage(cost_usd=0.002, tokens=120))


def reviewer(aspect: str, cost: float):
    async def review(text: str, context: DemoContext) -> AgentResult[str]:
        await trio.sleep(0.01)
        context.reviews.append(aspect)
        return AgentResult(f"{aspect}: fine", Usage(cost_usd=cost, tokens=60))

    review.__name__ = f"review_{aspect}"
    return review


def mentions_trio(output: str, context: object) -> ValidationResult:
    return ValidationResult("Trio" in output, feedback="the draft must mention Trio")


async def publish(approval: Approval, context: DemoContext) -> AgentResult[str]:
    verdict = "published" if approval.approved else "shelved"
    return AgentResult(f"{verdict} after {len(context.reviews)} reviews", Usage(0.001, 20))


def build_runner(db: str = "flujo_trio.db") -> Runner:
    reviews = ParallelStep(
        "reviews",
        {
            aspect: Step(f"review_{aspect}", reviewer(aspect, cost), reserve=Usage(0.01, 200))
            for aspect, cost in (("style", 0.003), ("facts", 0.004), ("tone", 0.002))
        },
    )
    pipeline = (
        Step("draft", draft, validators=[mentions_trio], reserve=Usage(0.01, 500))
        >> reviews
        >> HumanStep("approve", message="Publish the reviewed draft?", input_type=Approval)
        >> Step("publish", publish)
    )
    return Runner(
        pipeline,
        limits=UsageLimits(total_cost_usd_limit=0.05),
        context_type=DemoContext,
        store=SqliteStore(db),
        name="demo",
    )


def show(title: str, result: PipelineResult) -> None:
    print(f"\n== {title}: run {result.run_id} is {result.status.value}")

    def tree(steps: list[StepResult], depth: int) -> None:
        for step in steps:
            state = "paused" if step.metadata.get("paused") else "ok" if step.success else "FAIL"
            print(
                f"  {'  ' * depth}{step.name:<16} {state:<6} attempts={step.attempts} "
                f"${step.cost_usd:.4f} {step.token_counts} tok"
            )
            tree(step.step_history, depth + 1)

    tree(result.step_history, 0)
    print(f"  total ${result.total_cost_usd:.4f}, {result.total_tokens} tokens")


async def main(db: str) -> None:
    paused = await build_runner(db).run("agent pipelines")
    show("first run", paused)
    print(f"  waiting on a person: {paused.final_context.pause_message!r}")

    # A new Runner (as another process would make) resumes from the SQLite store.
    done = await build_runner(db).resume(paused.run_id, {"approved": True, "note": "ship it"})
    show("after resume", done)
    print(f"  output: {done.output!r}")

    runs = await SqliteStore(db).list_runs()
    print(f"\n{len(runs)} run(s) in {db}; latest: {runs[0].run_id} {runs[0].status.value}")


#: What the CLI runs: ``flujo-trio run examples/demo_pipeline.py:runner``.
runner = build_runner()

if __name__ == "__main__":
    default_db = os.environ.get("FLUJO_DB", "flujo_trio.db")
    trio.run(main, sys.argv[1] if len(sys.argv) > 1 else default_db)
