from __future__ import annotations

import pytest

from flujo_trio.testing import StubAgent


async def test_stub_agent_returns_outputs_in_order_and_records_calls():
    agent = StubAgent(["a", ValueError("boom"), "c"])
    assert await agent.run("x") == "a"
    with pytest.raises(ValueError, match="boom"):
        await agent.run("y", context=None)
    assert await agent.run("z") == "c"
    with pytest.raises(IndexError, match="No more outputs available"):
        await agent.run("late")
    assert agent.inputs == ["x", "y", "z", "late"]
    assert agent.call_count == 4
