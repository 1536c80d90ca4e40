"""What an agent may ask of the runtime while its call runs.

Offered as keyword arguments, like ``context`` and ``feedback``, only to agents
whose signature accepts them:

- ``emit`` (:class:`Emitter`): stream text to ``runner.stream()`` consumers as
  :class:`~flujo_trio.AgentDelta` events, and report tool calls
  (:class:`~flujo_trio.ToolCalled`, :class:`~flujo_trio.ToolReturned`). Emitting
  waits for the consumer, exactly like every other event (backpressure).
- ``meter`` (:class:`UsageMeter`): report usage while the call runs, so a call
  cancelled half-way is charged what it really used rather than its whole
  reservation; and reserve each further model request of a multi-request call
  (a tool loop) against the run's governor, so a budget holds across rounds.

The rule for usage: the step's reservation covers the call's first request. An
agent that makes more requests opens ``async with meter.request(reserve) as req``
around each later one and settles it (``req.settle(actual)``). The
:class:`~flujo_trio.AgentResult` the agent returns reports the usage of the whole
call, every request included; the runtime subtracts what the extra requests
already settled, so nothing is counted twice.

.. versionadded:: 0.2
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol, final

import trio

from .errors import AgentCallError, ConfigurationError
from .events import AgentDelta, Event, ToolCalled, ToolReturned
from .usage import Usage

#: Sends one event through the run's bus (hooks, then the stream consumer).
Send = Callable[[Event], Awaitable[None]]


class RequestDenied(AgentCallError):
    """The governor refused a further model request of a call (the budget cannot fit it).

    Not retryable: another attempt would be refused the same way.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


class Gate(Protocol):
    """The runtime's side of :meth:`UsageMeter.request` (implemented by the governor)."""

    async def admit(self, reserve: Usage) -> object:
        """Wait until ``reserve`` fits; a grant token, or raise :class:`RequestDenied`."""
        ...

    def settle(self, grant: object, actual: Usage, *, estimated: bool) -> None:
        """Replace the grant's reservation by what the request spent."""
        ...


@final
class Emitter:
    """Streams what an agent produces to the run's event consumers."""

    __slots__ = ("_run_id", "_send", "_step")

    def __init__(self, send: Send | None, run_id: str, step: str) -> None:
        self._send, self._run_id, self._step = send, run_id, step

    @property
    def active(self) -> bool:
        """Whether anybody listens (an agent may skip building text nobody reads)."""
        return self._send is not None

    async def __call__(self, text: str) -> None:
        """Emit a piece of generated text (an :class:`~flujo_trio.AgentDelta`)."""
        if self._send is not None and text:
            await self._send(AgentDelta(self._run_id, self._step, text))

    async def tool_called(
        self, tool: str, arguments: Any = None, *, call_id: str | None = None
    ) -> None:
        if self._send is not None:
            await self._send(ToolCalled(self._run_id, self._step, tool, arguments, call_id))

    async def tool_returned(
        self,
        tool: str,
        *,
        result: Any = None,
        error: str | None = None,
        call_id: str | None = None,
    ) -> None:
        if self._send is not None:
            await self._send(ToolReturned(self._run_id, self._step, tool, result, error, call_id))


@final
class Request:
    """One further model request inside a call, admitted by the governor."""

    __slots__ = ("_meter", "grant", "reserve", "settled", "used")

    def __init__(self, meter: UsageMeter, grant: object, reserve: Usage) -> None:
        self._meter, self.grant, self.reserve = meter, grant, reserve
        self.used: Usage | None = None
        self.settled = False

    def add(self, usage: Usage) -> None:
        """Usage this request has incurred so far (e.g. while streaming)."""
        _check_usage(usage)
        self.used = usage if self.used is None else self.used + usage

    def settle(self, actual: Usage) -> None:
        """What the request really cost; frees the rest of its reservation at once."""
        _check_usage(actual)
        if self.settled:
            raise ConfigurationError("this request was settled already")
        self._meter._settle(self, actual, estimated=False)


@final
class UsageMeter:
    """Usage reporting and further request admission for one agent call."""

    __slots__ = ("_gate", "_used", "estimated", "extra", "reported")

    def __init__(self, gate: Gate | None = None) -> None:
        self._gate = gate
        self._used = Usage()
        self.reported = False
        """Whether :meth:`add` was called (the runtime then charges ``used`` on cancel)."""
        self.extra = Usage()
        """Usage already settled through :meth:`request` blocks."""
        self.estimated = False
        """A request ended with nothing reported and was charged its reservation."""

    @property
    def gate(self) -> Gate | None:
        """The runtime's side of this meter (None outside a run)."""
        return self._gate

    @property
    def used(self) -> Usage:
        """Usage of the call's first request reported so far through :meth:`add`."""
        return self._used

    def add(self, usage: Usage) -> None:
        """Report usage of the call's first request as it is incurred."""
        _check_usage(usage)
        self._used = self._used + usage
        self.reported = True

    @asynccontextmanager
    async def request(self, reserve: Usage | None = None) -> AsyncIterator[Request]:
        """Admit one further model request (waits for room; raises :class:`RequestDenied`).

        Settle it inside the block with ``req.settle(actual)``. A request left
        unsettled is charged what it reported through ``req.add`` when it ended
        with an error, and its reservation when it was cancelled with nothing
        reported (an estimate: ``metadata["usage_estimated"]``).
        """
        reserve = Usage() if reserve is None else reserve
        _check_usage(reserve)
        grant = await self._gate.admit(reserve) if self._gate is not None else None
        request = Request(self, grant, reserve)
        try:
            yield request
        except trio.Cancelled:
            if not request.settled:
                if request.used is not None:
                    self._settle(request, request.used, estimated=False)
                else:
                    self._settle(request, reserve, estimated=True)
            raise
        except BaseException:
            if not request.settled:
                self._settle(request, request.used or Usage(), estimated=False)
            raise
        if not request.settled:
            self._settle(request, request.used or Usage(), estimated=False)

    def _settle(self, request: Request, actual: Usage, *, estimated: bool) -> None:
        request.settled = True
        self.extra = self.extra + actual
        if estimated:
            self.estimated = True
        if self._gate is not None:
            self._gate.settle(request.grant, actual, estimated=estimated)


def _check_usage(usage: object) -> None:
    if not isinstance(usage, Usage):
        raise ConfigurationError(f"expected a Usage, got {usage!r}")
