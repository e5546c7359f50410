"""bench/cpu.py: a process's CPU time split by thread, the threads told apart by OS name."""

from __future__ import annotations

import os
import sys
import threading
import time

import pytest

from bench import cpu

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")


def _burn(seconds: float) -> None:
    """Use `seconds` of this thread's CPU time (not wall time: a busy machine only delays it)."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_a_named_writer_threads_cpu_is_counted_as_the_writers() -> None:
    meter = cpu.ThreadMeter(os.getpid())
    burnt = threading.Event()
    finish = threading.Event()

    def writer() -> None:
        with open(f"/proc/self/task/{threading.get_native_id()}/comm", "w") as fh:
            fh.write("liaotian-writer")
        _burn(0.3)
        burnt.set()
        finish.wait(60)  # alive at stop(): its own stat is read, not only the total

    t = threading.Thread(target=writer)
    t.start()
    try:
        assert burnt.wait(60)
        window = meter.stop()
    finally:
        finish.set()
        t.join()
    assert window["threads"]["writer"] >= 0.2  # /proc counts in 10 ms ticks
    assert window["cpu_s"] >= window["threads"]["writer"]
    assert window["threads"]["loop"] < window["threads"]["writer"]
    per = cpu.per_message(window, 1000)
    assert per["by_thread_us_per_msg"]["writer"] == pytest.approx(
        window["threads"]["writer"] * 1000, rel=0.01
    )
