"""flujo-trio: a Trio-native, actor-style runtime for AI-agent pipelines.

Every step runs as a task inside a nursery, a governor actor holds the budget under
fan-out, and run state is durable. This module only re-exports the public API.
"""

from typing import TYPE_CHECKING, Any

from .agent_api import Emitter as Emitter
from .agent_api import RequestDenied as RequestDenied
from .agent_api import UsageMeter as UsageMeter
from .backoff import Backoff as Backoff
from .cache import MemoryCache as MemoryCache
from .cache import StepCache as StepCache
from .checks import PluginOutcome as PluginOutcome
from .checks import Processors as Processors
from .checks import ValidationResult as ValidationResult
from .context import HumanInteraction as HumanInteraction
from .context import PipelineContext as PipelineContext
from .context import RunStatus as RunStatus
from .dsl.conditional import ConditionalStep as ConditionalStep
from .dsl.human import HumanStep as HumanStep
from .dsl.loop import LoopStep as LoopStep
from .dsl.map import MapStep as MapStep
from .dsl.parallel import BranchFailure as BranchFailure
from .dsl.parallel import MergeStrategy as MergeStrategy
from .dsl.parallel import ParallelStep as ParallelStep
from .dsl.pipeline import Pipeline as Pipeline
from .dsl.step import Step as Step
from .errors import AbortRun as AbortRun
from .errors import AgentCallError as AgentCallError
from .errors import ConfigurationError as ConfigurationError
from .errors import FlujoTrioError as FlujoTrioError
from .errors import HumanInputError as HumanInputError
from .errors import MergeConflictError as MergeConflictError
from .errors import OutputParseError as OutputParseError
from .errors import ResumeError as ResumeError
from .errors import SerializationError as SerializationError
from .errors import StoreError as StoreError
from .errors import UsageLimitExceededError as UsageLimitExceededError
from .events import AgentDelta as AgentDelta
from .events import Event as Event
from .events import RunFinished as RunFinished
from .events import RunPaused as RunPaused
from .events import RunStarted as RunStarted
from .events import StepFinished as StepFinished
from .events import StepStarted as StepStarted
from .events import ToolCalled as ToolCalled
from .events import ToolReturned as ToolReturned
from .events import UsageUpdated as UsageUpdated
from .governance import GovernorStatistics as GovernorStatistics
from .results import PipelineResult as PipelineResult
from .results import StepResult as StepResult
from .runtime.runner import Runner as Runner
from .state.memory import MemoryStore as MemoryStore
from .state.protocol import StateStore as StateStore
from .state.records import RunState as RunState
from .state.records import RunSummary as RunSummary
from .usage import AgentResult as AgentResult
from .usage import Usage as Usage
from .usage import UsageLimits as UsageLimits

if TYPE_CHECKING:
    from .executors.ray import RayExecutor as RayExecutor
    from .state.postgres import PostgresStore as PostgresStore
    from .state.sqlite import SqliteStore as SqliteStore
    from .state.sqlite_cache import SqliteCache as SqliteCache

__version__ = "0.2.0"

#: Loaded on first use, so ``import flujo_trio`` loads neither sqlite3, psycopg, Ray nor
#: the converter.
_LAZY = {
    "RayExecutor": "flujo_trio.executors.ray",
    "PostgresStore": "flujo_trio.state.postgres",
    "SqliteStore": "flujo_trio.state.sqlite",
    "SqliteCache": "flujo_trio.state.sqlite_cache",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'flujo_trio' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "AbortRun",
    "AgentCallError",
    "AgentDelta",
    "AgentResult",
    "Backoff",
    "BranchFailure",
    "ConditionalStep",
    "ConfigurationError",
    "Emitter",
    "Event",
    "FlujoTrioError",
    "GovernorStatistics",
    "HumanInputError",
    "HumanInteraction",
    "HumanStep",
    "LoopStep",
    "MapStep",
    "MemoryCache",
    "MemoryStore",
    "MergeConflictError",
    "MergeStrategy",
    "OutputParseError",
    "ParallelStep",
    "Pipeline",
    "PipelineContext",
    "PipelineResult",
    "PluginOutcome",
    "PostgresStore",
    "Processors",
    "RayExecutor",
    "RequestDenied",
    "ResumeError",
    "RunFinished",
    "RunPaused",
    "RunStarted",
    "RunState",
    "RunStatus",
    "RunSummary",
    "Runner",
    "SerializationError",
    "SqliteCache",
    "SqliteStore",
    "StateStore",
    "Step",
    "StepCache",
    "StepFinished",
    "StepResult",
    "StepStarted",
    "StoreError",
    "ToolCalled",
    "ToolReturned",
    "Usage",
    "UsageLimitExceededError",
    "UsageLimits",
    "UsageMeter",
    "UsageUpdated",
    "ValidationResult",
]
