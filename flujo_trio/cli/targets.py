"""Finding the pipeline a CLI TARGET names: ``package.module:attr`` or ``file.py:attr``."""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from pathlib import Path

from ..dsl.pipeline import Pipeline, StepBase, as_pipeline
from ..errors import FlujoTrioError
from ..runtime.runner import Runner

_FORMS = "package.module:attr or path/to/file.py:attr"


class TargetError(FlujoTrioError):
    """The TARGET cannot be loaded or is not a pipeline; the message is one line."""


def _load_file(path: Path) -> object:
    if not path.is_file():
        raise TargetError(
            f"no such file: {path} (relative to {Path.cwd()}); "
            f"give TARGET as {_FORMS} with the file's right path"
        )
    # A stable module name per file, so classes defined there (contexts, outputs)
    # are found again by name when a later process resumes a stored run.
    # Named after the path as given (relative paths stay valid when a checkout moves).
    name = "flujo_target_" + re.sub(r"\W", "_", str(path))
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise TargetError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        del sys.modules[name]
        raise TargetError(f"importing {path} failed: {type(error).__name__}: {error}") from error
    return module


def load_target(target: str) -> Pipeline | StepBase | Runner:
    """The Pipeline, step or Runner that ``target`` names."""
    where, sep, attr = target.rpartition(":")
    if not sep or not where or not attr:
        raise TargetError(f"TARGET must look like {_FORMS}, got {target!r}")
    if where.endswith(".py") or "/" in where:
        module = _load_file(Path(where))
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as error:
            raise TargetError(
                f"cannot import module {where!r}: {error} (is it installed or on PYTHONPATH? "
                f"a file is given as path/to/file.py:attr)"
            ) from error
        except Exception as error:
            raise TargetError(
                f"importing {where!r} failed: {type(error).__name__}: {error}"
            ) from error
    try:
        value = getattr(module, attr)
    except AttributeError:
        raise TargetError(
            f"{where} has no attribute {attr!r}: name the Pipeline, step or Runner it defines"
        ) from None
    if isinstance(value, Pipeline | StepBase | Runner):
        return value
    raise TargetError(
        f"{target} is a {type(value).__name__}, not a Pipeline, step or Runner: "
        "point TARGET at one of those"
    )


def pipeline_of(loaded: Pipeline | StepBase | Runner) -> Pipeline:
    """The pipeline a loaded TARGET describes (a Runner's, or a single step's)."""
    if isinstance(loaded, Runner):
        return loaded.pipeline
    return as_pipeline("TARGET", loaded)
