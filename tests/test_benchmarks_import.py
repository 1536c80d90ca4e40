"""Every benchmark module imports: ``make bench`` is not run by CI, and a name removed
from one module once broke it unnoticed (budget_chart imported a deleted helper)."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import benchmarks

MODULES = sorted(info.name for info in pkgutil.iter_modules(benchmarks.__path__))


@pytest.mark.parametrize("name", MODULES)
def test_benchmark_module_imports(name):
    importlib.import_module(f"benchmarks.{name}")


def test_the_suite_runner_is_among_them():
    assert "run_all" in MODULES and "core" in MODULES
