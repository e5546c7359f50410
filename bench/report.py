"""Statistics, machine description, the results table and the JSON document."""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

# (key, unit, digits) in table order; the keys are also the JSON top-level keys
METRICS: list[tuple[str, str, int]] = [
    ("throughput_msgs_per_s", "msgs/s", 0),
    ("latency_ms_p50", "ms", 2),
    ("latency_ms_p99", "ms", 2),
    ("offline_sync_msgs_per_s", "msgs/s", 0),
    ("raw_relay_msgs_per_s", "msgs/s", 0),
    ("ratio_to_raw_relay", "", 3),
    ("cpu_us_per_msg_saturated", "us/msg", 1),
    ("cpu_us_per_msg_at_5k", "us/msg", 1),
    ("group_messages_per_s", "msgs/s", 0),
    ("group_deliveries_per_s", "deliveries/s", 0),
    ("group_push_deliveries_per_s", "pushes/s", 0),
    ("group_latency_ms_p50", "ms", 2),
    ("group_latency_ms_p99", "ms", 2),
    ("rss_kib_per_idle_conn", "KiB", 2),
    ("crash_acked", "msgs", 0),
    ("crash_lost", "msgs", 0),
    ("crash_duplicated", "msgs", 0),
    ("slow_consumer_p99_ms_without", "ms", 2),
    ("slow_consumer_p99_ms_with", "ms", 2),
    ("media_upload_mib_per_s", "MiB/s", 1),
    ("media_download_mib_per_s", "MiB/s", 1),
    ("media_dedup_upload_ms", "ms", 3),
    ("chat_p99_ms_under_media", "ms", 2),
    ("nearby_query_ms_p50", "ms", 3),
    ("nearby_query_ms_p99", "ms", 3),
    ("nearby_updates_per_s", "updates/s", 0),
    ("nearby_jumps_per_s", "updates/s", 0),
    ("orders_per_s", "orders/s", 0),
    ("channel_posts_per_s_1k", "posts/s", 0),
    ("channel_posts_per_s_100k", "posts/s", 0),
    ("channel_post_notice_ms_p99", "ms", 2),
    ("channel_notices_per_s", "notices/s", 0),
    ("channel_catch_up_posts_per_s", "posts/s", 0),
    ("channel_rss_bytes_per_member", "B", 1),
    ("wallet_transfers_per_s", "transfers/s", 0),
    ("red_packet_claims_per_s", "claims/s", 0),
    ("red_packet_claim_ms_p99", "ms", 2),
    ("wallet_invariant_violations", "", 0),
    ("bot_command_ms_p50", "ms", 2),
    ("bot_command_ms_p99", "ms", 2),
    ("bot_press_ms_p50", "ms", 2),
    ("bot_press_ms_p99", "ms", 2),
    ("sqlite_throughput_msgs_per_s", "msgs/s", 0),
    ("pg_throughput_msgs_per_s", "msgs/s", 0),
    ("pg_2_nodes_throughput_msgs_per_s", "msgs/s", 0),
]


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile, q in 0..100."""
    if not values:
        return float("nan")
    xs = sorted(values)
    k = (len(xs) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def summarize(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """median/min/max per metric over all runs, plus the median over the runs whose phase
    for that metric was not disturbed by other processes (see runner.Bench.measured)."""
    out: dict[str, dict[str, Any]] = {}
    for key, unit, _ in METRICS:
        vals = [r[key] for r in runs if r.get(key) is not None]
        clean = [
            r[key]
            for r in runs
            if r.get(key) is not None and not (r.get("disturbed") or {}).get(key)
        ]
        out[key] = {
            "median": statistics.median(vals) if vals else None,
            "min": min(vals) if vals else None,
            "max": max(vals) if vals else None,
            "unit": unit,
            "median_undisturbed": statistics.median(clean) if clean else None,
            "undisturbed_runs": len(clean),
        }
    return out


def _fmt(v: Any, digits: int) -> str:
    if v is None:
        return "-"
    if digits == 0:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}"


def format_table(summary: dict[str, dict[str, Any]], runs: int) -> str:
    head = (
        "metric",
        f"median ({runs} run{'s' if runs != 1 else ''})",
        "min",
        "max",
        "unit",
        "undisturbed: median (runs)",
    )
    rows = [head]
    for key, unit, digits in METRICS:
        s = summary[key]
        clean = (
            f"{_fmt(s['median_undisturbed'], digits)} ({s['undisturbed_runs']})"
            if s.get("undisturbed_runs")
            else "- (0)"
        )
        rows.append(
            (
                key,
                _fmt(s["median"], digits),
                _fmt(s["min"], digits),
                _fmt(s["max"], digits),
                unit,
                clean,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = []
    for n, r in enumerate(rows):
        cells = [r[0].ljust(widths[0])] + [r[i].rjust(widths[i]) for i in (1, 2, 3)]
        cells.append(r[4].ljust(widths[4]))
        cells.append(r[5].rjust(widths[5]))
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _git(repo: Path) -> dict[str, Any] | None:
    try:
        rev = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if rev.returncode != 0:
        return None
    return {"commit": rev.stdout.strip(), "dirty": bool(dirty.stdout.strip())}


def machine_info() -> dict[str, Any]:
    try:
        import uvloop

        uv = uvloop.__version__
    except ImportError:
        uv = None
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    mem = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "nproc": affinity or os.cpu_count(),
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "mem_gib": mem,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "python_impl": platform.python_implementation(),
        "uvloop": uv,
        "sqlite": sqlite3.sqlite_version,
        "msgpack": _version("msgpack"),
        "aiosqlite": _version("aiosqlite"),
        "liaotian": _version("liaotian"),
        "git": _git(Path(__file__).resolve().parent.parent),
    }


def format_machine(m: dict[str, Any]) -> str:
    git = m.get("git") or {}
    rev = f"{git.get('commit')}{' (dirty)' if git.get('dirty') else ''}" if git else "?"
    return (
        f"machine: {m['nproc']} CPU ({m['cpu_model']}), {m['mem_gib']} GiB, "
        f"{m['platform']}\n"
        f"software: Python {m['python']}, uvloop {m['uvloop']}, SQLite {m['sqlite']}, "
        f"msgpack {m['msgpack']}, aiosqlite {m['aiosqlite']}, liaotian {m['liaotian']} "
        f"@ {rev}"
    )


def write_json(path: str, doc: dict[str, Any]) -> None:
    p = Path(path)
    if p.parent and not p.parent.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")
    tmp.replace(p)
