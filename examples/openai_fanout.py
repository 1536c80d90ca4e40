"""A budgeted parallel pipeline on real models through any OpenAI-compatible endpoint.

Three reviewers run in parallel under a cost limit; each call reserves an upper bound
of its usage first (``reserve=agent.reservation``), so the total never exceeds the
limit. Point it at an endpoint with the OpenAI SDK's environment variables:

    OPENAI_API_KEY=sk-...                       # OpenAI, or any string for local servers
    OPENAI_BASE_URL=http://localhost:11434/v1   # Ollama / vLLM / LiteLLM (optional)
    FLUJO_MODEL=gpt-4o-mini                     # the model name the endpoint expects

    python examples/openai_fanout.py "Structured concurrency for agent pipelines"
"""

from __future__ import annotations

import os
import sys

from flujo_trio import ParallelStep, Runner, Step, UsageLimitExceededError, UsageLimits
from flujo_trio.agents import Pricing
from flujo_trio.agents.openai import ChatAgent

# Example prices (USD per million tokens); use your provider's.
PRICING = Pricing(input_per_mtok=0.15, output_per_mtok=0.60)


def reviewer(aspect: str, model: str) -> Step:
    agent = ChatAgent(
        model,
        system_prompt=f"You review text for {aspect}. Answer in two sentences.",
        pricing=PRICING,
        max_tokens=200,
    )
    return Step(f"review_{aspect}", agent, reserve=agent.reservation, timeout_s=60)


def build(model: str) -> Runner:
    reviews = ParallelStep(
        "reviews", {aspect: reviewer(aspect, model) for aspect in ("clarity", "facts", "tone")}
    )
    return Runner(reviews, limits=UsageLimits(total_cost_usd_limit=0.01))


def main() -> int:
    if not os.environ.get("OPENAI_API_KEY"):
        print(__doc__)
        print("OPENAI_API_KEY is not set: nothing to call.")
        return 0
    runner = build(os.environ.get("FLUJO_MODEL", "gpt-4o-mini"))
    text = sys.argv[1] if len(sys.argv) > 1 else "Trio makes cancellation reliable."
    try:
        result = runner.run_sync(text)
    except UsageLimitExceededError as error:
        print(f"{error}; spent ${error.result.total_cost_usd:.6f}")
        return 3
    for aspect, review in result.output.items():
        print(f"{aspect}: {review}")
    print(f"total: ${result.total_cost_usd:.6f}, {result.total_tokens} tokens")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
