"""The explicit frame every step actor receives: nothing lives on the DSL or in globals.

:class:`RunContext` is what every actor of one execution shares (the kernel that runs
nested steps, the governor, the journal, the event bus); :class:`Frame` is one
actor's view: its branch's context, its budget scope, and where it sits (``path``
for events, ``address`` and ``position`` for the journal).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..context import PipelineContext
from ..state.journal import Address
from .bus import EventBus
from .control import RunControl
from .governor import Governor
from .journal import RunJournal
from .ledger import BudgetScope
from .replay import Replay

if TYPE_CHECKING:
    from .kernel import Kernel


class RunContext:
    """Shared by the actors of one execution of one run."""

    __slots__ = (
        "bus",
        "control",
        "governor",
        "journal",
        "kernel",
        "replay",
        "resources",
        "run_id",
    )

    def __init__(
        self,
        *,
        run_id: str,
        kernel: Kernel,
        governor: Governor,
        control: RunControl,
        bus: EventBus,
        journal: RunJournal,
        replay: Replay | None,
        resources: Any,
    ) -> None:
        self.run_id = run_id
        self.kernel = kernel
        self.governor = governor
        self.control = control
        self.bus = bus
        self.journal = journal
        self.replay = replay
        self.resources = resources


class Frame:
    """One actor's view of the run."""

    __slots__ = ("address", "context", "path", "position", "run", "scope")

    def __init__(
        self,
        run: RunContext,
        context: PipelineContext,
        scope: BudgetScope,
        path: tuple[str, ...] = (),
        address: Address = (),
        position: tuple[int, ...] = (),
    ) -> None:
        self.run = run
        self.context = context
        self.scope = scope
        self.path = path
        self.address = address
        self.position = position

    def child(self, name: str, index: int) -> Frame:
        """The frame of the step ``name``, the ``index``-th of its siblings."""
        path = (*self.path, name)
        # Outside loops a step's address is its path: one tuple, not two equal ones
        # (a fan-out keeps a few frames alive per branch).
        address = path if self.address is self.path else (*self.address, name)
        return Frame(self.run, self.context, self.scope, path, address, (*self.position, index))

    def iteration(self, number: int) -> Frame:
        """The frame a loop body's steps run in during iteration ``number`` (1-based)."""
        return Frame(
            self.run,
            self.context,
            self.scope,
            self.path,
            (*self.address, number),
            (*self.position, number),
        )

    def with_context(self, context: PipelineContext) -> Frame:
        return Frame(self.run, context, self.scope, self.path, self.address, self.position)

    def with_scope(self, scope: BudgetScope) -> Frame:
        return Frame(self.run, self.context, scope, self.path, self.address, self.position)

    @property
    def step_label(self) -> str:
        """The step's path as one string (``"reviews/facts/review_facts"``)."""
        return "/".join(self.path)

    @property
    def task_name(self) -> str:
        return "flujo-step:" + self.step_label
