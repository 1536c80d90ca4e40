"""Running the real ``flujo-trio`` console script in a subprocess, as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CLI = str(Path(sys.executable).parent / "flujo-trio")
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def flujo(
    *args: str,
    stdin: str | None = None,
    cwd: Path = ROOT,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``flujo-trio ARGS`` with ``stdin`` as its standard input (empty when None) and
    ``env`` added to the environment."""
    return subprocess.run(
        [CLI, *args],
        input=stdin or "",
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**ENV, **(env or {})},
        timeout=120,
    )


def ok_json(done: subprocess.CompletedProcess[str], code: int = 0) -> Any:
    """The JSON document a command printed, checked to have ended with ``code``."""
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    return json.loads(done.stdout)


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    """The single ``flujo-trio: error:`` line a failed command printed, checked as such."""
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert done.stderr.startswith("flujo-trio: error: "), done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    return done.stderr
