"""Summarise a py-spy profile in raw (collapsed stack) format.

    python -m bench.profile FILE [--top N]

`python -m bench --profile DIR` records one of the server with
`py-spy record -p PID -d DURATION -r 100 --threads --idle --native -f raw` during an extra,
unmeasured throughput phase, and writes DIR/summary.txt with this module.

Each input line is `frame;frame;...;frame COUNT`, outermost first; the first frame names the
thread. With --idle every thread is sampled all the time, so a thread's samples are wall
time; this summary splits them into *waiting* (blocked in epoll or on a lock/queue: the
thread has nothing to do) and *busy* (running Python, running C code such as SQLite, or in a
system call that does work: write, fdatasync, pwrite, ...). Without --native the wait/busy
split relies on the Python frames only (queue and condition waits) and is less exact.

Threads of the liaotian server: MainThread runs the uvloop event loop (all protocol work,
routing, the group-commit planning and the fan-out); "liaotian-writer_0" is the writer
thread (every commit's statements and fsync, one call per batch); "liaotian-checkpoint_0"
runs the checkpoints; "aiosqlite worker 1" is the reader connection; "uvloop_N (executor)" are
the default executor's threads (argon2 during setup; idle under message load).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter, defaultdict
from typing import Any

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
_THREAD = re.compile(r"^thread \((?P<id>[^)]*)\)(?::\s*(?P<name>.*))?$")

# innermost Python frames that mean "this thread is blocked waiting for work":
# (function, file suffix, line or None)
_PY_WAITS = (
    ("_worker", "futures/thread.py", None),  # executor worker: work_queue.get
    ("_connection_worker_thread", "aiosqlite/core.py", "59"),  # aiosqlite worker: tx.get()
    ("Condition.wait", "threading.py", None),
    ("Queue.get", "queue.py", None),
    ("Event.wait", "threading.py", None),
)
_SYSCALL_CATEGORY = {
    "epoll_wait": "wait: epoll (event loop idle)",
    "epoll_pwait": "wait: epoll (event loop idle)",
    "fdatasync": "disk: fdatasync",
    "fsync": "disk: fsync",
    "pwrite64": "disk: pwrite",
    "pread64": "disk: pread",
    "write": "syscall: write",
    "writev": "syscall: writev",
    "send": "syscall: send",
    "sendmsg": "syscall: sendmsg",
    "read": "syscall: read",
    "recv": "syscall: recv",
    "close": "syscall: close",
    "gc_collect_main": "python: garbage collection",
    "take_gil": "wait: GIL",
    "drop_gil": "python: GIL hand-off",
}


def _short(path: str) -> str:
    parts = path.replace("\\", "/").split("/")
    for anchor in ("site-packages", "python3.11", "lib"):
        if anchor in parts[:-1]:
            i = len(parts) - 1 - parts[::-1].index(anchor)
            return "/".join(parts[i + 1 :])
    if len(parts) >= 3 and parts[-3] in ("server", "protocol", "client"):
        return "/".join(parts[-3:])
    return "/".join(parts[-2:])


def _parse(frame: str) -> tuple[str, str, str | None, bool]:
    """(function, short file, line, is_python)"""
    m = _FRAME.match(frame)
    if not m:
        return frame, "", None, False
    f = m["file"]
    is_py = f.endswith(".py") or f.startswith("<")
    return m["func"], _short(f) if is_py else f, m["line"], is_py


def _label(func: str, file: str, line: str | None = None) -> str:
    return f"{func} ({file}{':' + line if line else ''})"


def _is_wait(func: str, file: str, line: str | None) -> bool:
    return any(
        func == f and file.endswith(suffix) and (ln is None or ln == line)
        for f, suffix, ln in _PY_WAITS
    )


def _classify(frames: list[str]) -> tuple[str, str | None, str | None]:
    """(category, innermost Python frame, the same with its line)"""
    py = py_line = None
    waiting = False
    for fr in reversed(frames):
        func, file, line, is_py = _parse(fr)
        if is_py:
            py, py_line = _label(func, file), _label(func, file, line)
            waiting = _is_wait(func, file, line)
            break
    leaf_func, leaf_file, _, leaf_py = _parse(frames[-1])
    if leaf_py:
        return ("wait: lock/queue (thread idle)" if waiting else "python: bytecode"), py, py_line
    cat = _SYSCALL_CATEGORY.get(leaf_func)
    if cat:
        return cat, py, py_line
    if waiting or "futex" in leaf_func or leaf_func.startswith(("sem_", "pthread_cond")):
        return "wait: lock/queue (thread idle)", py, py_line
    if leaf_func.startswith("sqlite3") or "libsqlite3" in leaf_file:
        return "sqlite: C code", py, py_line
    if "uvloop" in leaf_file or "loop.cpython" in leaf_file:
        return "uvloop: C code", py, py_line
    if "msgpack" in leaf_file:
        return "msgpack: C code", py, py_line
    if "argon2" in leaf_file:
        return "argon2", py, py_line
    if "libpython" in leaf_file or leaf_file.endswith((".c", ".h")):
        return "python: interpreter/C API", py, py_line
    if leaf_func.startswith("0x"):
        return "native: unresolved (" + leaf_file + ")", py, py_line
    return "native: " + leaf_func + " (" + leaf_file + ")", py, py_line


def summarize(text: str, top: int = 25) -> dict[str, Any]:
    total = 0
    threads: Counter[str] = Counter()
    thread_cats: dict[str, Counter[str]] = defaultdict(Counter)
    busy_py: dict[str, Counter[str]] = defaultdict(Counter)
    busy_line: dict[str, Counter[str]] = defaultdict(Counter)
    busy_incl: dict[str, Counter[str]] = defaultdict(Counter)
    for raw in text.splitlines():
        raw = raw.strip()
        if not raw or " " not in raw:
            continue
        stack, _, count_s = raw.rpartition(" ")
        try:
            count = int(count_s)
        except ValueError:
            continue
        frames = stack.split(";")
        if frames and frames[0].startswith("process "):
            frames = frames[1:]
        thread = "?"
        if frames and frames[0].startswith("thread "):
            m = _THREAD.match(frames[0])
            thread = (m["name"] or m["id"]) if m else frames[0]
            thread = re.sub(r"^(uvloop|ThreadPoolExecutor-\d+)_\d+$", r"\1_N (executor)", thread)
            thread = re.sub(
                r"^Thread-(\d+) \(_connection_worker_thread\)$", r"aiosqlite worker \1", thread
            )
            frames = frames[1:]
        total += count
        threads[thread] += count
        if not frames:
            continue
        cat, py, py_line = _classify(frames)
        thread_cats[thread][cat] += count
        if not cat.startswith("wait"):
            busy_py[thread][py or "(no Python frame)"] += count
            busy_line[thread][py_line or "(no Python frame)"] += count
            for f in {_label(*_parse(f)[:2]) for f in frames if _parse(f)[3]}:
                busy_incl[thread][f] += count

    def table(c: Counter[str], denom: int, n: int = top) -> list[dict[str, Any]]:
        return [
            {"name": k, "samples": v, "pct": round(100.0 * v / denom, 1) if denom else 0.0}
            for k, v in c.most_common(n)
        ]

    out_threads = []
    for name, n in threads.most_common():
        cats = thread_cats[name]
        busy = sum(v for k, v in cats.items() if not k.startswith("wait"))
        out_threads.append(
            {
                "thread": name,
                "samples": n,
                "busy_pct": round(100.0 * busy / n, 1) if n else 0.0,
                "categories": table(cats, n, 50),
                "busy_python_self": table(busy_py[name], n),
                "busy_python_lines": table(busy_line[name], n),
                "busy_python_inclusive": table(busy_incl[name], n),
            }
        )
    return {"samples": total, "threads": out_threads}


def format_summary(s: dict[str, Any], top: int = 25) -> str:
    out = [f"py-spy samples: {s['samples']} (per thread: % of that thread's wall time)"]
    out.append("")
    out.append("== threads")
    for t in s["threads"]:
        out.append(f"  {t['thread']:<34} {t['samples']:6d} samples, busy {t['busy_pct']:5.1f}%")
    shown: set[str] = set()
    for t in s["threads"]:
        if t["busy_pct"] < 1.0 or t["thread"] in shown:
            continue
        shown.add(t["thread"])
        out.append("")
        out.append(f"== {t['thread']}: where its time goes")
        for row in t["categories"]:
            out.append(f"  {row['pct']:6.1f}%  {row['name']}")
        for key, title in (
            ("busy_python_self", "busy samples by innermost Python function"),
            ("busy_python_lines", "busy samples by innermost Python line"),
            ("busy_python_inclusive", "busy samples by Python function, inclusive"),
        ):
            out.append(f"  -- {title}")
            for row in t[key][:top]:
                out.append(f"  {row['pct']:6.1f}%  {row['name']}")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.split("\n")[0])
    ap.add_argument("file")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args(argv)
    with open(args.file) as fh:
        print(format_summary(summarize(fh.read(), args.top), args.top), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
