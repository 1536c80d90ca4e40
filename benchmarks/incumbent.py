"""Running the same workloads on the incumbent, Flujo 0.6.11, in a venv of its own.

Flujo 0.6.11 needs Python >= 3.13 (found through pyenv on these machines) and
``opentelemetry-api<1.44`` (newer ones break its import). It runs in a subprocess, so
neither library's imports or event loop touch the other's measurements.
"""

from __future__ import annotations

import glob
import json
import os
import pathlib
import shutil
import subprocess
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent
VENV = ROOT / ".bench-flujo-venv"
REQUIREMENTS = ["flujo==0.6.11", "opentelemetry-api<1.44"]


class IncumbentUnavailable(Exception):
    """Why the incumbent could not be measured (said once, and ours still runs)."""


def _is_python313(candidate: str) -> bool:
    """Runs, and is 3.13 or newer (a pyenv shim for a version not selected fails here)."""
    try:
        done = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info >= (3, 13))"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and done.stdout.strip() == "True"


def find_python313() -> str:
    pyenv_root = os.environ.get("PYENV_ROOT", str(pathlib.Path.home() / ".pyenv"))
    candidates = sorted(glob.glob(f"{pyenv_root}/versions/3.1[3-9]*/bin/python3"), reverse=True)
    candidates += [shutil.which(name) or "" for name in ("python3.14", "python3.13")]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK) and _is_python313(candidate):
            return candidate
    raise IncumbentUnavailable(
        "Flujo 0.6.11 needs Python >= 3.13 and none was found under "
        f"{pyenv_root}/versions or on PATH (install one with: pyenv install 3.13)"
    )


def ensure_venv() -> pathlib.Path:
    python = VENV / "bin" / "python"
    marker = VENV / ".installed"
    if marker.exists() and marker.read_text() == " ".join(REQUIREMENTS):
        return python
    base = find_python313()
    steps = [
        [base, "-m", "venv", "--clear", str(VENV)],
        [str(python), "-m", "pip", "install", "--quiet", *REQUIREMENTS],
    ]
    for command in steps:
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise IncumbentUnavailable(
                f"could not install the incumbent ({' '.join(command[:4])} ...): "
                + " | ".join(tail)
            )
    marker.write_text(" ".join(REQUIREMENTS))
    return python


def run_workloads(arguments: list[str], timeout_s: float = 1200) -> dict[str, Any]:
    python = ensure_venv()
    script = ROOT / "benchmarks" / "flujo_workloads.py"
    try:
        done = subprocess.run(
            [str(python), str(script), *arguments],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            cwd=ROOT,
        )
    except subprocess.TimeoutExpired as error:
        raise IncumbentUnavailable(
            f"the incumbent's workloads took over {timeout_s:.0f}s"
        ) from error
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-3:]
        raise IncumbentUnavailable("the incumbent's workloads failed: " + " | ".join(tail))
    try:
        data: dict[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError as error:
        raise IncumbentUnavailable(f"the incumbent printed no JSON document ({error})") from error
    return data
