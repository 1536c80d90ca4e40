"""Which actor runs which step kind: the table the runner hands the kernel."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from ..dsl.conditional import ConditionalStep
from ..dsl.human import HumanStep
from ..dsl.loop import LoopStep
from ..dsl.map import MapStep
from ..dsl.parallel import ParallelStep
from ..dsl.pipeline import StepBase
from ..dsl.step import Step
from .agent_step import run_agent_step
from .conditional import run_conditional
from .human import run_human
from .kernel import Actor
from .loop import run_loop
from .map import run_map
from .parallel import run_parallel

ACTORS: Mapping[type[StepBase], Actor] = MappingProxyType(
    {
        Step: run_agent_step,
        LoopStep: run_loop,
        ConditionalStep: run_conditional,
        ParallelStep: run_parallel,
        MapStep: run_map,
        HumanStep: run_human,
    }
)
