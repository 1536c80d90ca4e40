"""Fixtures shared by the ChatAgent tests: a real HTTP server on 127.0.0.1, the SDK as
client, and recorders for what an agent reports to the runtime (events, requests).

Import the fixtures into a test module with ``from tests.openai_support import *``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import attrs
import openai
import pytest
import trio

from flujo_trio.agent_api import Emitter, RequestDenied
from flujo_trio.agents import Pricing
from flujo_trio.agents.openai import ChatAgent
from flujo_trio.usage import Usage
from tests.fake_openai import FakeOpenAI, LoopbackServer

__all__ = ["PRICING", "Gate", "agent", "client", "emitter", "events", "offline_tokens", "server"]

PRICING = Pricing(input_per_mtok=2.0, output_per_mtok=8.0)


@pytest.fixture(autouse=True)
def offline_tokens(tmp_path, monkeypatch):
    """An empty tiktoken cache: token estimates never depend on what this machine has
    cached, and nothing reaches for the network."""
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "tiktoken-cache"))


S = TypeVar("S", bound=LoopbackServer)


async def started(nursery: trio.Nursery, server: S) -> S:
    """``server`` listening, served until ``nursery`` ends."""
    await nursery.start(server.serve)
    return server


def sdk_client(server: LoopbackServer) -> openai.AsyncOpenAI:
    """The SDK talking to ``server``, with no retries of its own; use as ``async with``."""
    return openai.AsyncOpenAI(api_key="test-key", base_url=server.base_url, max_retries=0)


def chat_agents(client: openai.AsyncOpenAI) -> Callable[..., ChatAgent]:
    """A maker of ChatAgents on ``client``, priced at ``PRICING`` unless told otherwise."""

    def make(server: object = None, **options: Any) -> ChatAgent:
        options.setdefault("pricing", PRICING)
        return ChatAgent("test-model", client=client, **options)

    return make


@pytest.fixture
async def server(nursery):
    return await started(nursery, FakeOpenAI())


@pytest.fixture
async def client(server):
    async with sdk_client(server) as client:
        yield client


@pytest.fixture
def agent(client):
    return chat_agents(client)


@pytest.fixture
def events() -> list[Any]:
    return []


@pytest.fixture
def emitter(events):
    """An Emitter whose events land in ``events`` (what the runtime would pass on)."""

    async def send(event: Any) -> None:
        events.append(event)

    return Emitter(send, "run-1", "chat")


@attrs.define
class Gate:
    """The governor's side of ``meter.request``, recording what it admits and settles.

    ``room`` is the spendable amount of cost (None: unlimited); a request whose
    reservation does not fit is denied, as the governor denies one that can never fit.
    """

    room: float | None = None
    admitted: list[Usage] = attrs.field(factory=list)
    settled: list[tuple[Usage, Usage, bool]] = attrs.field(factory=list)

    async def admit(self, reserve: Usage) -> object:
        if self.room is not None and reserve.cost_usd > self.room:
            raise RequestDenied(f"the request needs ${reserve.cost_usd}, ${self.room} is left")
        self.admitted.append(reserve)
        return reserve

    def settle(self, grant: object, actual: Usage, *, estimated: bool) -> None:
        assert isinstance(grant, Usage)
        self.settled.append((grant, actual, estimated))
        if self.room is not None:
            self.room -= actual.cost_usd
