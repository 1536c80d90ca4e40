"""The agent-step actor: retries, feedback, processors, plugins, validators, fallback."""

from __future__ import annotations

import attrs
import pytest
import trio

from flujo_trio import (
    AgentResult,
    PluginOutcome,
    Processors,
    Runner,
    RunStatus,
    Step,
    Usage,
    ValidationResult,
)
from flujo_trio.testing import StubAgent


class Flaky:
    """Fails the first ``failures`` calls, then echoes; records what it was given."""

    def __init__(self, failures: int = 1) -> None:
        self.failures = failures
        self.calls: list[tuple[object, list[str]]] = []

    async def run(self, data, *, feedback):
        self.calls.append((data, feedback))
        if len(self.calls) <= self.failures:
            raise RuntimeError(f"boom {len(self.calls)}")
        return AgentResult(f"ok:{data}", Usage(0.25, 5))


async def run_one(step: Step, data: object = "in"):
    result = await Runner(step).run(data)
    return result, result.step_history[0]


async def test_flaky_agent_is_retried_with_the_same_input_and_feedback():
    agent = Flaky(failures=1)
    data = {"question": "why"}
    result, step = await run_one(Step("s", agent, max_retries=1), data)
    assert step.success and step.attempts == 2
    assert step.output == "ok:{'question': 'why'}"
    assert [call[0] for call in agent.calls] == [data, data]
    assert agent.calls[0][0] is agent.calls[1][0]
    assert data == {"question": "why"}
    assert agent.calls[0][1] == [] and agent.calls[1][1] == ["boom 1"]
    assert result.status is RunStatus.COMPLETED and result.success


async def test_retries_exhausted_fail_the_step_and_the_run():
    agent = Flaky(failures=5)
    result, step = await run_one(Step("s", agent, max_retries=2))
    assert not step.success and step.attempts == 3 and len(agent.calls) == 3
    assert "boom 3" in step.feedback
    assert agent.calls[2][1] == ["boom 1", "boom 2"]
    assert result.status is RunStatus.FAILED and not result.success


async def test_failed_attempts_that_report_usage_are_counted():
    class Costly(Exception):
        usage = Usage(0.1, 7)

    agent = StubAgent([Costly("rate limited"), AgentResult("ok", Usage(0.2, 3))])
    result, step = await run_one(Step("s", agent))
    assert step.cost_usd == pytest.approx(0.3) and step.token_counts == 10
    assert result.total_cost_usd == pytest.approx(0.3) and result.total_tokens == 10


async def test_usage_is_read_from_output_attributes():
    @attrs.define
    class Reply:
        text: str
        cost_usd: float
        token_counts: int

    result, step = await run_one(Step("s", StubAgent([Reply("hi", 0.02, 40)])))
    assert step.output == Reply("hi", 0.02, 40)
    assert (step.cost_usd, step.token_counts) == (0.02, 40)
    assert result.total_tokens == 40


async def test_failing_validator_never_reruns_the_agent():
    agent = StubAgent(["draft", "unused"])
    calls = []

    def too_short(output, context):
        calls.append(output)
        return ValidationResult(False, "too short")

    result, step = await run_one(Step("s", agent, max_retries=3, validators=[too_short]))
    assert agent.call_count == 1 and step.attempts == 1
    assert not step.success and step.output == "draft"
    assert step.feedback.startswith("Validation failed: ") and "too short" in step.feedback
    assert result.status is RunStatus.FAILED


async def test_validation_drop_and_warn():
    async def reject(output, context):
        return False

    _, dropped = await run_one(Step("s", StubAgent(["x"]), validators=[reject], validation="drop"))
    assert not dropped.success and dropped.output is None
    result, warned = await run_one(
        Step("s", StubAgent(["x"]), validators=[reject], validation="warn")
    )
    assert warned.success and warned.output == "x"
    assert warned.metadata["validation_passed"] is False
    assert warned.feedback.startswith("Validation failed: ")
    assert result.success


async def test_passing_validators_mark_validation_passed():
    _, step = await run_one(Step("s", StubAgent(["x"]), validators=[lambda o, c: True]))
    assert step.success and step.metadata["validation_passed"] is True


async def test_order_is_input_processors_agent_output_processors_plugins_validators():
    seen: list[str] = []

    def inp(data, ctx):
        seen.append(f"in:{data}")
        return data + "+in"

    async def agent(data):
        seen.append(f"agent:{data}")
        return data + "+agent"

    async def out(data, ctx):
        seen.append(f"out:{data}")
        return data + "+out"

    def plugin(output, ctx):
        seen.append(f"plugin:{output}")
        return PluginOutcome(True, new_output=output + "+plugin")

    def validator(output, ctx):
        seen.append(f"validator:{output}")
        return True

    step = Step(
        "s",
        agent,
        processors=Processors(input=[inp], output=[out]),
        plugins=[plugin],
        validators=[validator],
    )
    _, result = await run_one(step, "x")
    assert result.output == "x+in+agent+out+plugin"
    assert seen == [
        "in:x",
        "agent:x+in",
        "out:x+in+agent",
        "plugin:x+in+agent+out",
        "validator:x+in+agent+out+plugin",
    ]


async def test_processor_error_fails_the_step_with_its_message():
    def broken(data, ctx):
        raise ValueError("bad shape")

    agent = StubAgent(["x"])
    _, step = await run_one(Step("s", agent, processors=Processors(input=[broken])))
    assert not step.success and "bad shape" in step.feedback
    assert agent.call_count == 0


async def test_plugin_failure_with_fallback_sums_metrics():
    primary = StubAgent([AgentResult("draft", Usage(0.1, 10))])
    backup = StubAgent([AgentResult("safe", Usage(0.2, 20))])

    def reject(output, ctx):
        return PluginOutcome(False, feedback="unsafe content")

    step = Step("s", primary, max_retries=3, plugins=[reject], fallback=Step("backup", backup))
    result, res = await run_one(step, "q")
    assert primary.call_count == 1 and backup.call_count == 1
    assert backup.inputs == ["q"]
    assert res.name == "s" and res.success and res.output == "safe"
    assert res.attempts == 2
    assert res.cost_usd == pytest.approx(0.3) and res.token_counts == 30
    assert res.metadata["fallback_triggered"] is True
    assert res.metadata["original_error"].startswith("Plugin failed: ")
    assert "unsafe content" in res.metadata["original_error"]
    assert result.total_cost_usd == pytest.approx(0.3)


async def test_failed_fallback_reports_both_errors():
    step = Step(
        "s",
        StubAgent([RuntimeError("primary down")]),
        max_retries=0,
        fallback=Step("fb", StubAgent([RuntimeError("backup down")]), max_retries=0),
    )
    _, res = await run_one(step)
    assert not res.success and res.attempts == 2
    assert res.feedback.startswith("Original error: ")
    assert "primary down" in res.feedback and "; Fallback error: " in res.feedback
    assert "backup down" in res.feedback


async def test_fallback_gets_the_primary_input_and_applies_its_own_processors():
    fb_agent = StubAgent(["fb"])
    step = Step(
        "s",
        StubAgent([RuntimeError("x")]),
        max_retries=0,
        processors=Processors(input=[lambda d, c: d + "+primary"]),
        fallback=Step("fb", fb_agent, processors=Processors(input=[lambda d, c: d + "+fb"])),
    )
    _, res = await run_one(step, "q")
    assert fb_agent.inputs == ["q+fb"] and res.success


async def test_timeout_is_retried_under_a_mock_clock(autojump_clock):
    calls = []

    async def slow_then_fast(data):
        calls.append(trio.current_time())
        if len(calls) == 1:
            await trio.sleep(60)
        return "done"

    _, res = await run_one(Step("s", slow_then_fast, timeout_s=2, max_retries=1))
    assert res.success and res.attempts == 2 and res.output == "done"
    assert calls[1] - calls[0] == pytest.approx(2)


async def test_timeout_on_every_attempt_fails_with_a_clear_message(autojump_clock):
    async def hang(data):
        await trio.sleep(3600)

    _, res = await run_one(Step("s", hang, timeout_s=1.5, max_retries=2))
    assert not res.success and res.attempts == 3
    assert "timed out after 1.5s" in res.feedback
    assert res.latency_s == pytest.approx(4.5)


async def test_context_is_passed_only_to_agents_that_accept_it():
    seen = []

    async def with_context(data, context):
        seen.append(context)
        return data

    result = await Runner(Step("s", with_context)).run("x")
    assert seen == [result.final_context]


async def test_sync_callables_work_as_agents():
    result = await Runner(Step.from_callable(str.upper, name="upper")).run("abc")
    assert result.output == "ABC"
