"""Attacks on the durability promises: tampered rows, crashes in odd places, stores misused.

Each test here once failed (or guards a promise no other test pinned down): a tampered
row must be refused with a clear error before a resume claims the run, leaving the
stored rows byte-identical; a crash anywhere must resume without redoing finished calls.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio

from flujo_trio import (
    AgentResult,
    HumanStep,
    Runner,
    RunStatus,
    SerializationError,
    Step,
    Usage,
)
from tests import test_store_contract as contract
from tests.test_store_contract import Stores, snapshot

# The store fixtures of the store contract (memory, SQLite, PostgreSQL; raw row access).
kind, stores, store = contract.kind, contract.stores, contract.store


def paying_pipeline(calls: list[str]) -> Any:
    def agent(name: str):
        async def run(data: Any) -> AgentResult[str]:
            calls.append(name)
            await trio.lowlevel.checkpoint()
            return AgentResult(f"{data}>{name}", Usage(0.1, 1))

        return run

    return Step("a", agent("a")) >> HumanStep("h") >> Step("b", agent("b"))


async def paused_run(stores: Stores) -> None:
    paused = await Runner(paying_pipeline([]), store=stores()).run("x", run_id="r1")
    assert paused.status is RunStatus.PAUSED


# -- tampered totals in the header row --------------------------------------------------------


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("total_cost_usd", "NaN"),
        ("total_cost_usd", "Infinity"),
        ("total_cost_usd", "-5"),
        ("total_tokens", -3),
        ("total_requests", -1),
    ],
)
async def test_tampered_totals_are_refused_before_the_run_is_claimed(stores, column, value):
    await paused_run(stores)
    stores.raw(f"UPDATE {{runs}} SET {column} = ? WHERE run_id = ?", (value, "r1"))
    before = await snapshot(stores)
    calls: list[str] = []
    with pytest.raises(SerializationError, match=rf"run 'r1'.*damaged.*{column}"):
        await Runner(paying_pipeline(calls), store=stores()).resume("r1", "ok")
    assert calls == []
    # not claimed: still paused, no owner (repr: a stored NaN is not equal to itself)
    assert repr(await snapshot(stores)) == repr(before)
    with pytest.raises(SerializationError, match=rf"run 'r1'.*damaged.*{column}"):
        await stores().load_run("r1")
    [summary] = await stores().list_runs()
    assert summary.error is not None and column in summary.error
