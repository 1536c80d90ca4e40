"""Every public name is exported from the package root, and the package is typed."""

from __future__ import annotations

import pathlib

import flujo_trio

CONTRACT = {
    "Step",
    "Pipeline",
    "Runner",
    "Usage",
    "UsageLimits",
    "UsageLimitExceededError",
    "AgentResult",
    "ValidationResult",
    "PluginOutcome",
    "Processors",
    "MemoryCache",
    "StepResult",
    "PipelineResult",
    "RunStatus",
    "PipelineContext",
    "HumanInteraction",
    "FlujoTrioError",
    "ConfigurationError",
    "MergeConflictError",
    "ResumeError",
    "SerializationError",
}


def test_contract_names_are_exported():
    assert set(flujo_trio.__all__) >= CONTRACT | {"SqliteStore", "SqliteCache", "PostgresStore"}
    for name in flujo_trio.__all__:
        value = getattr(flujo_trio, name)  # lazy names load here
        if name == "Event":  # a union of the event classes, for annotating hooks
            assert set(value.__args__) >= {flujo_trio.StepStarted, flujo_trio.RunFinished}
            continue
        assert value.__name__ == name and value.__module__.startswith("flujo_trio.")


def test_errors_share_one_root():
    for name in (
        "ConfigurationError",
        "UsageLimitExceededError",
        "MergeConflictError",
        "ResumeError",
        "SerializationError",
    ):
        assert issubclass(getattr(flujo_trio, name), flujo_trio.FlujoTrioError)


def test_package_ships_py_typed():
    assert (pathlib.Path(flujo_trio.__file__).parent / "py.typed").exists()
