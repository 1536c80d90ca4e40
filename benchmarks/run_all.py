"""Every benchmark in one process run, with tables, JSON and charts.

``make bench`` runs ``python -m benchmarks.run_all``; ``make bench-flujo`` adds
``--with-flujo`` to run the same workloads on the incumbent (Flujo 0.6.11) in its own
virtual environment and put its figures beside ours. Results land in
``benchmarks/results/*.json`` and the charts in ``benchmarks/results/*.png``.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time
from typing import Any

from . import budget_chart, cancellation, core, fanout, governance, overhead
from .incumbent import IncumbentUnavailable, run_workloads
from .support import RESULTS, print_table, ratio, write_results


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(","))


def incumbent_table(ours: dict[str, Any], flujo: dict[str, Any]) -> None:
    rows: list[list[Any]] = []
    by_steps = {r["steps"]: r for r in ours["overhead"]}
    for r in flujo.get("overhead", []):
        mine = by_steps.get(r["steps"])
        if mine:
            rows.append(
                [
                    f"sequential {r['steps']} steps, µs/step",
                    f"{r['us_per_step']:.1f}",
                    f"{mine['ours_us_per_step']:.1f}",
                    ratio(r["us_per_step"], mine["ours_us_per_step"]),
                ]
            )
    by_k = {r["k"]: r for r in ours["fanout"]}
    for r in flujo.get("fanout", []):
        mine = by_k.get(r["k"])
        if mine:
            rows.append(
                [
                    f"fan-out K={r['k']} x {r['m']}, s",
                    f"{r['seconds']:.3f}",
                    f"{mine['ours_s']:.3f}",
                    ratio(r["seconds"], mine["ours_s"]),
                ]
            )
            if r.get("bytes_per_branch"):
                # Not the same measure (Flujo: in-process RSS growth, a lower bound;
                # ours: traced Python allocations), so no ratio.
                rows.append(
                    [
                        f"fan-out K={r['k']}, bytes/branch (RSS | traced)",
                        f"{r['bytes_per_branch']:.0f}",
                        f"{mine['ours_bytes_per_branch']:.0f}",
                        "-",
                    ]
                )
    gov = {r["k"]: r for r in ours["governance"]["shape"]}
    for r in flujo.get("governance", []):
        mine = gov.get(r["k"])
        if mine:
            rows.append(
                [
                    f"limit at half, K={r['k']}: spend over limit %",
                    f"{r['over_pct']:.1f}",
                    f"{mine['ours_limit']['over_pct']:.1f} (reserved: "
                    f"{mine['ours_reserved']['over_pct']:.1f})",
                    "-",
                ]
            )
            rows.append(
                [
                    f"limit at half, K={r['k']}: reported/spent tokens",
                    f"{r.get('reported_tokens')}/{r['spent_tokens']}",
                    f"{mine['ours_limit'].get('reported')}/{mine['ours_limit']['spent']}",
                    "-",
                ]
            )
    cancel = {r["in_flight"]: r for r in ours["cancellation"]}
    for r in flujo.get("cancellation", []):
        mine = cancel.get(r["in_flight"])
        if mine:
            how = "returned a result" if r["returned_result"] else "raised"
            if r.get("agents_still_running"):
                how += f", {r['agents_still_running']} agents still running"
            rows.append(
                [
                    f"cancel {r['in_flight']} in flight, ms ({how})",
                    f"{r['ms']:.1f}",
                    f"{mine['ours_ms']:.1f} (raised)",
                    ratio(r["ms"], mine["ours_ms"]),
                ]
            )
    print_table(
        f"Incumbent: Flujo {flujo.get('flujo_version')} on Python {flujo.get('python')} "
        "vs flujo-trio (ratio = Flujo / flujo-trio)",
        ["workload", "Flujo", "flujo-trio", "ratio"],
        rows,
    )
    for name, message in flujo.get("errors", {}).items():
        print(f"  incumbent {name}: {message}")


def pydantic_ai_peers(ks: tuple[int, ...]) -> dict[str, Any]:
    """pydantic-ai's own UsageLimits on the governance workloads (if it is installed)."""
    try:
        from . import governance_peers
    except ImportError as error:
        print(f"\npydantic-ai not measured: {error}")
        return {}
    return governance_peers.run(ks)


def governance_peers(pydantic_ai: dict[str, Any], flujo: dict[str, Any] | None) -> dict[str, Any]:
    """The peers' runs keyed the way :func:`governance.report` puts them beside ours."""
    utilization: dict[str, dict[int, Any]] = {}
    scoped: dict[str, Any] = {}
    delegation: dict[str, Any] = {}
    if pydantic_ai:
        version = pydantic_ai.get("pydantic_ai_version", "")
        for name, by_k in pydantic_ai["utilization"].items():
            utilization[f"{name} {version}"] = {int(k): v for k, v in by_k.items()}
        for _, figures in pydantic_ai["scoped"].items():
            scoped[f"pydantic-ai {version}: own UsageLimits per delegation"] = figures
        delegation.update(pydantic_ai["delegation"])
    budgets = (flujo or {}).get("budgets") or {}
    if budgets:
        version = flujo.get("flujo_version", "") if flujo else ""
        for row in budgets.get("utilization", []):
            name = f"Flujo {version}" + (", expected_tokens=20" if row["reserve"] else "")
            utilization.setdefault(name, {})[row["k"]] = row
        names = {
            "step_limits": f"Flujo {version}: Step usage_limits per item",
            "split": f"Flujo {version}: run limit split per branch, expected_tokens",
        }
        for row in budgets.get("scoped", []):
            scoped[names[row["how"]]] = row
        requests = budgets.get("requests", {})
        if "not_expressible" in requests:
            delegation[f"Flujo {version}"] = {"not_expressible": requests["not_expressible"]}
    return {"utilization": utilization, "scoped": scoped, "delegation": delegation}


def charts(ours: dict[str, Any], flujo: dict[str, Any] | None, out: pathlib.Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    # The two-panel charts are shown at about two thirds of their size in the docs.
    with plt.rc_context({"font.size": 11}):
        return _draw(plt, ours, flujo, out)


def _draw(
    plt: Any, ours: dict[str, Any], flujo: dict[str, Any] | None, out: pathlib.Path
) -> list[str]:
    written = []

    def save(fig: Any, name: str) -> None:
        fig.tight_layout()
        path = out / f"{name}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(str(path))

    # Per-step cost spans two orders of magnitude (floor ~20 µs, incumbent ~1500 µs):
    # on a linear axis the two fast series sit flat on the floor, so the axis is log,
    # and the values are points, not bars (a bar's length on a log axis means nothing).
    from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter

    fig, ax = plt.subplots(figsize=(6, 3.5))
    sizes = [r["steps"] for r in ours["overhead"]]
    series = {
        "flujo-trio": ([r["ours_us_per_step"] for r in ours["overhead"]], "o-"),
        "trio floor": ([r["floor_us_per_step"] for r in ours["overhead"]], "o--"),
    }
    if flujo and flujo.get("overhead"):
        by = {r["steps"]: r["us_per_step"] for r in flujo["overhead"]}
        series["Flujo 0.6.11"] = ([by.get(n, float("nan")) for n in sizes], "s-")
    xs = list(range(len(sizes)))
    for label, (values, style) in series.items():
        ax.plot(xs, values, style, label=label)
        for x, value in zip(xs, values, strict=True):
            ax.annotate(
                f"{value:.0f}", (x, value), textcoords="offset points", xytext=(8, -3), fontsize=8
            )
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(FixedLocator([10, 30, 100, 300, 1000, 3000]))
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_locator(NullLocator())
    ax.set_xlim(-0.4, len(sizes) - 0.6)
    ax.set_xticks(xs)
    ax.set_xticklabels([f"{n} steps" for n in sizes])
    ax.set_ylabel("µs per step (log scale)")
    ax.set_title("Sequential pipeline overhead (lower is better)")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, 0.86))
    save(fig, "overhead")

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    ks = [r["k"] for r in ours["fanout"]]
    left.loglog(ks, [r["ours_s"] for r in ours["fanout"]], "o-", label="flujo-trio")
    left.loglog(ks, [r["floor_s"] for r in ours["fanout"]], "o--", label="trio floor")
    right.semilogx(
        ks, [r["ours_bytes_per_branch"] / 1024 for r in ours["fanout"]], "o-", label="flujo-trio"
    )
    right.semilogx(
        ks, [r["floor_bytes_per_branch"] / 1024 for r in ours["fanout"]], "o--", label="trio floor"
    )
    if flujo and flujo.get("fanout"):
        fk = [r["k"] for r in flujo["fanout"]]
        left.loglog(fk, [r["seconds"] for r in flujo["fanout"]], "s-", label="Flujo 0.6.11")
        right.semilogx(
            fk,
            [(r["bytes_per_branch"] or 0) / 1024 for r in flujo["fanout"]],
            "s-",
            label="Flujo 0.6.11",
        )
    left.set(xlabel="branches (K)", ylabel="seconds", title="Fan-out wall time")
    right.set(
        xlabel="branches (K)",
        ylabel="KiB per branch",
        title="Memory (traced allocations; Flujo: RSS growth)",
    )
    left.legend()
    right.legend()
    save(fig, "fanout")

    fig, ax = plt.subplots(figsize=(6, 3.5))
    shape = ours["governance"]["shape"]
    gk = [r["k"] for r in shape]
    ax.semilogx(
        gk,
        [r["ours_limit"]["over_pct"] for r in shape],
        "o-",
        label="flujo-trio, no reservations",
    )
    ax.semilogx(
        gk,
        [r["ours_reserved"]["over_pct"] for r in shape],
        "o-",
        label="flujo-trio, reservations",
    )
    ax.semilogx(
        gk,
        [r["floor_limit"]["over_pct"] for r in shape],
        "o--",
        label="naive fire-and-forget ledger",
    )
    if flujo and flujo.get("governance"):
        ax.semilogx(
            [r["k"] for r in flujo["governance"]],
            [r["over_pct"] for r in flujo["governance"]],
            "s-",
            label="Flujo 0.6.11",
        )
    ax.set(
        xlabel="branches (K)",
        ylabel="spend over the limit (%)",
        title="Token limit at half the demand",
    )
    ax.legend(fontsize=8)
    save(fig, "governance")

    # Flujo does not cancel: run() returns a normal result within milliseconds while
    # every agent call keeps running. Drawn as a time beside ours it would read as the
    # fastest line, so the time panel holds only runtimes that cancel, and a second
    # panel counts the calls still running after the cancel.
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    ns = [r["in_flight"] for r in ours["cancellation"]]
    left.loglog(ns, [r["ours_ms"] for r in ours["cancellation"]], "o-", label="flujo-trio")
    left.loglog(ns, [r["floor_ms"] for r in ours["cancellation"]], "o--", label="trio floor")
    left.set(
        xlabel="agent calls in flight",
        ylabel="ms from cancel to all unwound",
        title="Caller cancellation: time to unwind",
    )
    left.legend(fontsize=8, loc="upper left")
    labels = ["flujo-trio", "trio floor"]
    still: list[list[float]] = [[0.0] * len(ns), [0.0] * len(ns)]
    if flujo and flujo.get("cancellation"):
        by_n = {r["in_flight"]: r for r in flujo["cancellation"]}
        labels.append("Flujo 0.6.11")
        still.append(
            [
                float(by_n[n].get("agents_still_running") or 0) if n in by_n else float("nan")
                for n in ns
            ]
        )
        left.text(
            0.98,
            0.04,
            "Flujo 0.6.11 is not drawn here:\nit does not cancel (run() returns a\n"
            "result, its calls keep running)",
            transform=left.transAxes,
            ha="right",
            va="bottom",
            fontsize=8,
            color="#c92a2a",
        )
    width = 0.8 / len(labels)
    for i, (label, counts) in enumerate(zip(labels, still, strict=True)):
        bars = right.bar([x + i * width for x in range(len(counts))], counts, width, label=label)
        right.bar_label(bars, fmt="%d", fontsize=8, padding=2)
    right.set_xticks([x + width * (len(labels) - 1) / 2 for x in range(len(ns))])
    right.set_xticklabels([f"{n} in flight" for n in ns])
    right.set_ylim(0, max(ns) * 1.15)
    right.set(ylabel="agent calls", title="Calls still running after the cancel")
    right.legend(fontsize=8, loc="upper left")
    save(fig, "cancellation")

    if "utilization" in ours["governance"]:
        fig = _utilization_chart(plt, ours, flujo)
        save(fig, "governance_utilization")
    if ours.get("spend_over_time"):
        written.append(str(budget_chart.draw(ours["spend_over_time"], out / "spend_over_time.png")))
    return written


def _utilization_chart(plt: Any, ours: dict[str, Any], flujo: dict[str, Any] | None) -> Any:
    """Spend at the end as % of the limit, by K; a tick where the first denial came."""
    rows = ours["governance"]["utilization"]
    ks = [r["k"] for r in rows]
    series: dict[str, dict[int, Any]] = {
        name: {r["k"]: r["runs"][name] for r in rows}
        for name in ("flujo-trio", "floor: refuse on first misfit", "floor: naive ledger")
    }
    series.update(governance_peers(ours.get("governance_peers") or {}, flujo)["utilization"])
    labels = {
        "floor: refuse on first misfit": "refuse on first misfit (old policy)",
        "floor: naive ledger": "naive ledger (no admission)",
    }
    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.8 / len(series)
    for i, (name, by_k) in enumerate(series.items()):
        xs = [x + (i - (len(series) - 1) / 2) * width for x in range(len(ks))]
        values = [by_k.get(k, {}).get("util_end_pct", float("nan")) for k in ks]
        bars = ax.bar(xs, values, width, label=labels.get(name, name))
        ax.bar_label(bars, fmt="%.0f", fontsize=7, padding=1)
        firsts = [by_k.get(k, {}).get("util_first_denial_pct") for k in ks]
        for x, first in zip(xs, firsts, strict=True):
            if first is not None:
                ax.plot([x - width / 2, x + width / 2], [first, first], color="black", lw=1.5)
    ax.axhline(100, color="#c92a2a", linewidth=1)
    ax.set_xticks(range(len(ks)))
    ax.set_xticklabels([f"K={k}" for k in ks])
    ax.set_ylabel("spent, % of the limit")
    ax.set_ylim(0, 140)
    ax.set_title(
        "Spend at the end, token limit at half the demand\n"
        "(reservations 2x mean usage; black tick: spend at the first denial)",
        fontsize=10,
    )
    ax.legend(fontsize=7, loc="upper center", ncol=3, bbox_to_anchor=(0.5, -0.1))
    return fig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--with-flujo", action="store_true", help="also run the incumbent")
    parser.add_argument("--ks", default="10,100,1000,10000", help="fan-out sizes")
    parser.add_argument("--flujo-ks", default="10,100,1000", help="fan-out sizes for Flujo")
    parser.add_argument("--cancel-ns", default="1000,10000")
    parser.add_argument(
        "--peer-ks",
        default="10,100",
        help="budget utilization widths for pydantic-ai and Flujo (make bench-flujo adds 1000)",
    )
    parser.add_argument("--no-charts", action="store_true")
    parser.add_argument(
        "--charts-only", action="store_true", help="redraw charts from the saved results"
    )
    parser.add_argument(
        "--charts-dir",
        type=pathlib.Path,
        default=RESULTS,
        help="where the charts go (the docs use docs/_static/benchmarks)",
    )
    args = parser.parse_args()
    if args.charts_only:
        saved = {p.stem: json.loads(p.read_text())["data"] for p in RESULTS.glob("*.json")}
        incumbent = saved.pop("flujo", None)
        for path in charts(saved, incumbent, args.charts_dir):
            print(f"chart: {path}")
        return
    started = time.perf_counter()
    ks = _ints(args.ks)
    ours: dict[str, Any] = {
        "overhead": overhead.run(),
        "fanout": fanout.run(ks),
        "governance": governance.run(ks),
        "cancellation": cancellation.run(_ints(args.cancel_ns)),
        "governance_peers": pydantic_ai_peers(_ints(args.peer_ks)),
        "spend_over_time": budget_chart.measure(),
        "core": core.run(),
    }
    core.report(ours["core"])
    overhead.report(ours["overhead"])
    fanout.report(ours["fanout"])
    cancellation.report(ours["cancellation"])
    for name, rows in ours.items():
        write_results(name, rows)
    flujo: dict[str, Any] | None = None
    if args.with_flujo:
        try:
            flujo = run_workloads(
                [
                    *("--ks", args.flujo_ks, "--cancel-ns", args.cancel_ns),
                    *("--budget-ks", args.peer_ks),
                ]
            )
        except IncumbentUnavailable as error:
            print(f"\nIncumbent not measured: {error}")
        else:
            write_results("flujo", flujo)
    governance.report(ours["governance"], governance_peers(ours["governance_peers"], flujo))
    if flujo is not None:
        incumbent_table(ours, flujo)
    if not args.no_charts:
        for path in charts(ours, flujo, args.charts_dir):
            print(f"chart: {path}")
    print(f"\nresults in {RESULTS} ({time.perf_counter() - started:.0f}s)")


if __name__ == "__main__":
    main()
