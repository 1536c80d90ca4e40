"""An offline pipeline, end to end: draft, check, polish under a budget.

Run with ``make demo``. The agents are plain async functions that report usage the
way a real model adapter would, so the demo needs no network and no API key.
"""

from __future__ import annotations

import trio

from flujo_trio import (
    AgentResult,
    PluginOutcome,
    Runner,
    Step,
    Usage,
    UsageLimits,
    ValidationResult,
)


async def draft(topic: str, *, feedback: list[str]) -> AgentResult[str]:
    await trio.sleep(0.01)
    text = f"Trio keeps {topic} structured"
    if feedback:  # a second attempt sees why the first one failed
        text += " and cancellable"
    return AgentResult(text, Usage(cost_usd=0.002, tokens=120))


class FlakyPolisher:
    """Fails its first call the way a rate-limited API does, then succeeds."""

    def __init__(self) -> None:
        self.calls = 0

    async def run(self, text: str, *, feedback: list[str]) -> AgentResult[str]:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("429 Too Many Requests")
        return AgentResult(text + ".", Usage(cost_usd=0.001, tokens=40))


def mentions_trio(output: str, context: object) -> ValidationResult:
    return ValidationResult("Trio" in output, feedback="the draft must mention Trio")


def no_shouting(output: str, context: object) -> PluginOutcome:
    return PluginOutcome(True, new_output=output.replace("!", ""))


def main() -> None:
    pipeline = Step("draft", draft, validators=[mentions_trio], reserve=Usage(0.005, 500)) >> Step(
        "polish", FlakyPolisher(), max_retries=2, plugins=[no_shouting]
    )
    runner = Runner(pipeline, limits=UsageLimits(total_cost_usd_limit=0.05))
    result = runner.run_sync("agent pipelines")
    print(f"run {result.run_id}: {result.status.value}")
    for step in result.step_history:
        print(
            f"  {step.name:<8} success={step.success} attempts={step.attempts} "
            f"cost=${step.cost_usd:.4f} tokens={step.token_counts}"
        )
    print(f"output: {result.output!r}")
    print(f"total: ${result.total_cost_usd:.4f}, {result.total_tokens} tokens")


if __name__ == "__main__":
    main()
