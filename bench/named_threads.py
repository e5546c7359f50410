"""Run `python -m liaotian.server ARGS` with every Python thread named at the OS level.

`python -m bench.named_threads ARGS` is `python -m liaotian.server ARGS`, except that each
thread started through `threading` first writes its name (cut to the 15 bytes Linux keeps)
to `/proc/self/task/TID/comm`. The harness reads the names back to split the server's CPU
time by thread (bench/cpu.py). Nothing else changes: the same module runs as `__main__`.
It needs nothing from the server, so it names the threads of any build (A/B comparisons).
"""

from __future__ import annotations

import runpy
import threading
from typing import Any

_inner: Any = threading.Thread._bootstrap_inner  # type: ignore[attr-defined]


def _named(self: threading.Thread) -> None:
    try:
        with open(f"/proc/self/task/{threading.get_native_id()}/comm", "w") as fh:
            fh.write(self.name[:15])
    except OSError:  # not Linux, or /proc not mounted: nameless, as before
        pass
    _inner(self)


threading.Thread._bootstrap_inner = _named  # type: ignore[attr-defined]

if __name__ == "__main__":
    runpy.run_module("liaotian.server", run_name="__main__", alter_sys=True)
