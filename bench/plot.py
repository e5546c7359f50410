"""Charts of a bench result: `python -m bench --plot DIR`, or `python -m bench.plot JSON DIR`.

Every chart sets liaotian against the raw relay measured in the same run (bench/relay.py:
the same load through a process that only forwards frames, storing nothing), because
absolute figures on a shared VM move by a third from hour to hour while the ratio moves
little. Each PNG carries the machine, the commit and the date in its footer, so a chart
copied into a README still says where it came from.

Three charts, each one PNG:
- throughput.png: 1:1 messages/s per run, liaotian beside the raw relay, the ratio above.
- latency.png: 1:1 and group latency p50/p90/p99 (ms) at the phase's offered rate.
- group.png: group messages/s and deliveries/s (log rows and live pushes) per run.
matplotlib draws off-screen (the Agg backend): no display is needed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

CHARTS = ("throughput.png", "latency.png", "group.png")


def plot(doc: dict[str, Any], out_dir: str | Path) -> list[Path]:
    """Write the charts of one bench JSON document into out_dir; returns the files written.

    A chart whose phase did not run (no group phase, say) is not written."""
    import matplotlib

    matplotlib.use("Agg")  # before pyplot: never look for a display
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs = [r["details"] for r in doc.get("per_run", [])]
    footer = _footer(doc)
    written: list[Path] = []

    tp = [
        (r["throughput"]["msgs_per_s"], r["relay"]["msgs_per_s"])
        for r in runs
        if "throughput" in r and "relay" in r
    ]
    if tp:
        fig, ax = plt.subplots(figsize=(7, 4))
        xs = range(1, len(tp) + 1)
        width = 0.38
        ax.bar([x - width / 2 for x in xs], [a for a, _ in tp], width, label="liaotian (durable)")
        ax.bar(
            [x + width / 2 for x in xs],
            [b for _, b in tp],
            width,
            label="raw relay (nothing stored)",
        )
        for x, (a, b) in zip(xs, tp, strict=True):
            ax.annotate(f"{a / b:.2f}x", (x - width / 2, a), ha="center", va="bottom", fontsize=9)
        ax.set_xticks(list(xs), [f"run {x}" for x in xs])
        ax.set_ylabel("messages/s")
        ax.set_title("1:1 throughput at saturation, against the raw relay (same run)")
        ax.legend(loc="upper left")
        written.append(_save(fig, out / "throughput.png", footer))

    lat = []
    for name, key in (("1:1", "latency"), ("group", "group_latency")):
        got = [r[key] for r in runs if key in r]
        if got:
            values = [_median([g[p] for g in got]) for p in ("p50_ms", "p90_ms", "p99_ms")]
            lat.append((name, values, _median([g["achieved_rate"] for g in got])))
    if lat:
        fig, ax = plt.subplots(figsize=(7, 4))
        width = 0.8 / len(lat)
        for i, (name, values, rate) in enumerate(lat):
            xs2 = [x + (i - (len(lat) - 1) / 2) * width for x in range(3)]
            ax.bar(xs2, values, width, label=f"{name} at {rate:,.0f} msgs/s")
            for x, v in zip(xs2, values, strict=True):
                ax.annotate(f"{v:.1f}", (x, v), ha="center", va="bottom", fontsize=9)
        ax.set_xticks(range(3), ["p50", "p90", "p99"])
        ax.set_ylabel("ms, send to delivery (median over runs)")
        fixed = (doc.get("config") or {}).get("latency_rate")
        ax.set_title(
            f"Latency at a fixed {fixed:,.0f} msgs/s"
            if fixed
            else "Latency at 20% of the measured throughput"
        )
        ax.legend()
        written.append(_save(fig, out / "latency.png", footer))

    grp = [r["group_throughput"] for r in runs if "group_throughput" in r]
    if grp:
        fig, ax = plt.subplots(figsize=(7, 4))
        xs = range(1, len(grp) + 1)
        width = 0.27
        series = (
            ("messages/s", "messages_per_s"),
            ("log rows/s", "deliveries_per_s"),
            ("live pushes/s", "push_deliveries_per_s"),
        )
        for i, (label, key) in enumerate(series):
            ax.bar([x + (i - 1) * width for x in xs], [g[key] for g in grp], width, label=label)
        ax.set_yscale("log")
        ax.set_xticks(list(xs), [f"run {x}" for x in xs])
        g0 = grp[0]
        ax.set_title(f"Group of {g0['members']} ({g0['online']} online, {g0['senders']} senders)")
        ax.legend()
        written.append(_save(fig, out / "group.png", footer))
    return written


def _footer(doc: dict[str, Any]) -> str:
    m = doc.get("machine", {})
    git = m.get("git") or {}
    commit = git.get("commit", "?") + ("+dirty" if git.get("dirty") else "")
    mode = "quick" if doc.get("quick") else "full"
    return (
        f"{m.get('nproc', '?')} CPU {m.get('cpu_model', '?')}, Python {m.get('python', '?')}, "
        f"SQLite {m.get('sqlite', '?')}; commit {commit}; {doc.get('date', '?')[:16]}; "
        f"{mode} bench, {doc.get('runs', '?')} run(s)"
    )


def _save(fig: Any, path: Path, footer: str) -> Path:
    fig.text(0.01, 0.01, footer, fontsize=7, color="0.4")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def _median(values: list[float]) -> float:
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m bench.plot RESULT.json DIR", file=sys.stderr)
        return 2
    try:
        doc = json.loads(Path(args[0]).read_text())
    except (OSError, ValueError) as exc:
        print(f"python -m bench.plot: cannot read {args[0]}: {exc}", file=sys.stderr)
        return 2
    for path in plot(doc, args[1]):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
