"""flujo-trio: a Trio-native, actor-style runtime for AI-agent pipelines.

Every step runs as a task inside a nursery, a governor actor holds the budget under
fan-out, and run state is durable. This module only re-exports the public API.
"""

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
from .events import Event as Event
from .events import RunFinished as RunFinished
from .events import RunPaused as RunPaused
from .events import RunStarted as RunStarted
from .events import StepFinished as StepFinished
from .events import StepStarted as StepStarted
from .events import UsageUpdated as UsageUpdated
from .results import PipelineResult as PipelineResult
from .results import StepResult as StepResult
from .runtime.runner import Runner as Runner
from .state import MemoryStore as MemoryStore
from .state import RunState as RunState
from .state import RunSummary as RunSummary
from .state import SqliteCache as SqliteCache
from .state import SqliteStore as SqliteStore
from .state import StateStore as StateStore
from .usage import AgentResult as AgentResult
from .usage import Usage as Usage
from .usage import UsageLimits as UsageLimits

__version__ = "0.1.0"

__all__ = [
    "AbortRun",
    "AgentCallError",
    "AgentResult",
    "BranchFailure",
    "ConditionalStep",
    "ConfigurationError",
    "Event",
    "FlujoTrioError",
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
    "Processors",
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
    "Usage",
    "UsageLimitExceededError",
    "UsageLimits",
    "UsageUpdated",
    "ValidationResult",
]
