"""Finding the pipeline a CLI TARGET names: ``package.module:attr`` or ``file.py:attr``.

A run records its TARGET (``origin``) so that ``resume`` finds the pipeline again,
from any directory: a file is recorded by its absolute path, or as a module path
when the file is importable as a module from an absolute ``sys.path`` entry (an
installed package, or ``PYTHONPATH``). A file is always imported under a module
name made from its absolute path, so the classes it defines are stored under the
same names by every process that runs or resumes it.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import re
import sys
from pathlib import Path

from ..dsl.pipeline import Pipeline, StepBase, as_pipeline
from ..errors import FlujoTrioError
from ..runtime.runner import Runner

_FORMS = "package.module:attr or path/to/file.py:attr"


class TargetError(FlujoTrioError):
    """The TARGET cannot be loaded or is not a pipeline; the message is one line."""


def _file_module_name(path: Path) -> str:
    """A module name that is the same for a file in every process (and differs between
    files), so classes defined there are found again by name when a run resumes."""
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:10]
    stem = re.sub(r"\W", "_", path.stem)
    return f"flujo_file_{stem}_{digest}"


def _load_file(path: Path) -> object:
    if not path.is_file():
        where = "" if path.is_absolute() else f" (relative to {Path.cwd()})"
        raise TargetError(
            f"no such file: {path}{where}; give TARGET as {_FORMS} with the file's right path"
        )
    name = _file_module_name(path.resolve())
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise TargetError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as error:
        del sys.modules[name]
        raise TargetError(_import_failed(str(path), error)) from error
    return module


def _import_failed(where: str, error: BaseException) -> str:
    if isinstance(error, SystemExit):
        # A script's sys.exit() at import would end the CLI with its code and no word.
        return (
            f"importing {where} called sys.exit({error.code!r}): the module must define the "
            "pipeline without running anything (guard a script with if __name__ == '__main__')"
        )
    return f"importing {where} failed: {type(error).__name__}: {error}"


def load_target(target: str) -> Pipeline | StepBase | Runner:
    """The Pipeline, step or Runner that ``target`` names."""
    where, attr = _split(target)
    if _is_file(where):
        module = _load_file(Path(where))
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as error:
            raise TargetError(
                f"cannot import module {where!r}: {error} (is it installed or on PYTHONPATH? "
                f"a file is given as path/to/file.py:attr)"
            ) from error
        except (Exception, SystemExit) as error:
            raise TargetError(_import_failed(repr(where), error)) from error
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


def _split(target: str) -> tuple[str, str]:
    where, sep, attr = target.rpartition(":")
    if not sep or not where or not attr:
        raise TargetError(f"TARGET must look like {_FORMS}, got {target!r}")
    return where, attr


def _is_file(where: str) -> bool:
    return where.endswith(".py") or "/" in where or os.sep in where


def _module_of(path: Path) -> str | None:
    """The module name ``path`` is importable as from an absolute ``sys.path`` entry
    (a relative entry, such as the current directory, works only from there)."""
    for entry in sys.path:
        if not entry or not os.path.isabs(entry):
            continue
        try:
            parts = path.relative_to(Path(entry).resolve()).with_suffix("").parts
        except (ValueError, OSError):
            continue
        if not parts or not all(part.isidentifier() for part in parts):
            continue
        name = ".".join(parts)
        try:
            spec = importlib.util.find_spec(name)
        except Exception:  # a package on the way that fails to import: not this way
            continue
        if spec is not None and spec.origin and Path(spec.origin).resolve() == path:
            return name
    return None


def canonical_target(target: str) -> str:
    """``target`` as a run records it: unchanged for a module, else the file's absolute
    path, or its module path when it is importable as one."""
    where, attr = _split(target)
    if not _is_file(where):
        return target
    path = Path(where)
    if not path.is_file():
        _load_file(path)  # raises the error that names the missing file
    path = path.resolve()
    module = _module_of(path)
    return f"{module}:{attr}" if module is not None else f"{path}:{attr}"


def pipeline_of(loaded: Pipeline | StepBase | Runner) -> Pipeline:
    """The pipeline a loaded TARGET describes (a Runner's, or a single step's)."""
    if isinstance(loaded, Runner):
        return loaded.pipeline
    return as_pipeline("TARGET", loaded)


def load_origin(run_id: str, origin: str) -> Pipeline | StepBase | Runner:
    """The pipeline a stored run was started from. A file that is gone, or a module that
    cannot be imported here, is an error naming the recorded origin and what to do."""
    where, _ = _split(origin)
    if _is_file(where) and not Path(where).is_file():
        raise TargetError(
            f"run {run_id!r} was started from {origin}, but {where} is gone: "
            "put the pipeline file back at that path, then resume again"
        )
    try:
        return load_target(origin)
    except TargetError as error:
        raise TargetError(f"run {run_id!r} was started from {origin}: {error}") from None
