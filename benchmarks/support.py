"""Shared pieces of the benchmarks: timing, peak RSS, tables, results files."""

from __future__ import annotations

import json
import pathlib
import platform
from collections.abc import Sequence
from typing import Any

RESULTS = pathlib.Path(__file__).parent / "results"


def current_rss_bytes() -> int | None:
    """This process's resident set size from /proc/self/status (Linux); None elsewhere."""
    try:
        for line in pathlib.Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def ratio(ours: float | None, floor: float | None) -> str:
    if ours is None or not floor:
        return "-"
    return f"{ours / floor:.1f}x"


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    print(f"\n{title}")
    print("  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))


def write_results(name: str, data: Any) -> pathlib.Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    meta = {"python": platform.python_version(), "machine": platform.machine()}
    path.write_text(json.dumps({**meta, "benchmark": name, "data": data}, indent=2))
    return path


def tree_cpu(root: int | None = None) -> dict[int, float]:
    """CPU time (user + system) of a process and each of its descendants, by pid, from
    /proc (Linux; empty elsewhere). Compare two with :func:`cpu_between`."""
    import os

    proc = pathlib.Path("/proc")
    clock = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in proc.iterdir() if proc.exists() else ():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        times[pid] = (int(fields[11]) + int(fields[12])) / clock
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    found: dict[int, float] = {}
    stack = [os.getpid() if root is None else root]
    while stack:
        pid = stack.pop()
        found[pid] = times.get(pid, 0.0)
        stack.extend(children.get(pid, ()))
    return found


def cpu_between(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds the tree spent between two :func:`tree_cpu` readings (processes
    that started meanwhile count whole; those that ended meanwhile are not seen)."""
    return sum(spent - before.get(pid, 0.0) for pid, spent in after.items())
