"""The server's CPU time per message, in total and by thread, from /proc (Linux).

Issue 18 steers by CPU per message rather than by latency: on a shared 2-core machine a
neighbour moves the latency percentiles a lot, but the CPU time the server process itself
burns for a given amount of work hardly at all. `ThreadMeter` samples
`/proc/PID/stat` (utime + stime of the whole process, threads that already ended included)
and `/proc/PID/task/*/stat` at the start and end of a window, and splits the time into:

* `loop`: the main thread, the asyncio event loop (TID == PID);
* `writer`: the store's writer thread (statements, COMMIT and fsync of each group commit);
* `checkpointer`: the WAL checkpoints, on their own thread and connection;
* `other`: everything else (the aiosqlite reader, libuv and executor threads, threads
  that ended during the window), i.e. the process total minus the three above.

Threads are told apart by their OS name (`/proc/PID/task/TID/comm`). Python does not name
OS threads, so the harness starts the server through `bench/named_threads.py`, which gives
every Python thread its `threading` name ("liaotian-writer_0" shows as "liaotian-writer",
"liaotian-checkpoint_0" as "liaotian-checkp"); it works the same for any build of the
server, which is what an A/B comparison needs.
"""

from __future__ import annotations

import os
import time
from typing import Any

THREADS = ("loop", "writer", "checkpointer", "other")
_HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _ticks(path: str) -> int:
    with open(path) as fh:
        rest = fh.read().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])  # utime + stime


def _kind(pid: int, tid: int) -> str:
    if tid == pid:
        return "loop"
    try:
        with open(f"/proc/{pid}/task/{tid}/comm") as fh:
            name = fh.read().strip()
    except OSError:
        return "other"
    if name.startswith("liaotian-writer"):
        return "writer"
    if name.startswith("liaotian-checkp"):
        return "checkpointer"
    return "other"


def _system(path: str) -> int:
    with open(path) as fh:
        return int(fh.read().rsplit(")", 1)[1].split()[12])  # stime


def sample(pid: int) -> dict[str, int] | None:
    """Clock ticks used so far: "total" and "system" (the process; system: in the kernel,
    which for a loopback socket write includes the receiver's TCP processing) and per
    thread id."""
    try:
        out = {"total": _ticks(f"/proc/{pid}/stat"), "system": _system(f"/proc/{pid}/stat")}
        for name in os.listdir(f"/proc/{pid}/task"):
            try:
                out[name] = _ticks(f"/proc/{pid}/task/{name}/stat")
            except (OSError, IndexError, ValueError):
                continue  # the thread ended meanwhile: counted in "other" via the total
        return out
    except (OSError, IndexError, ValueError):
        return None


class ThreadMeter:
    """CPU seconds of one process over a window, split by thread kind."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.t0 = time.monotonic()
        self.start = sample(pid) if pid else None

    def stop(self) -> dict[str, Any]:
        """{"wall_s", "cpu_s", "cores", "threads": {kind: cpu seconds}} or {} off Linux."""
        if self.pid is None or self.start is None:
            return {}
        end = sample(self.pid)
        wall = time.monotonic() - self.t0
        if end is None or wall <= 0:
            return {}
        total = (end["total"] - self.start["total"]) / _HZ
        split = dict.fromkeys(THREADS, 0.0)
        system = (end["system"] - self.start["system"]) / _HZ
        for tid, ticks in end.items():
            if tid in ("total", "system"):
                continue
            kind = _kind(self.pid, int(tid))
            if kind != "other":
                split[kind] += (ticks - self.start.get(tid, 0)) / _HZ
        split["other"] = max(0.0, total - split["loop"] - split["writer"] - split["checkpointer"])
        return {
            "wall_s": round(wall, 3),
            "cpu_s": round(total, 3),
            "system_s": round(system, 3),
            "cores": round(total / wall, 3),
            "threads": {k: round(v, 3) for k, v in split.items()},
        }


def per_message(window: dict[str, Any], messages: float) -> dict[str, Any]:
    """CPU microseconds per message, in total and by thread kind, of a ThreadMeter window."""
    if not window or messages <= 0:
        return {}
    us = 1e6 / messages
    return {
        "messages": round(messages),
        "cpu_us_per_msg": round(window["cpu_s"] * us, 2),
        "system_us_per_msg": round(window["system_s"] * us, 2),
        "by_thread_us_per_msg": {k: round(v * us, 2) for k, v in window["threads"].items()},
        **window,
    }
