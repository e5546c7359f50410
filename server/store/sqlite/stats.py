"""What the group-commit writer spends its time on, for operators and the benchmark.

A few perf_counter readings per batch (not per message), summed until someone asks for a
summary; the server logs one periodically. Times are wall-clock: the loop keeps serving
sockets while the writer awaits its SQLite thread.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .checkpoint import Cycle


@dataclass(slots=True)
class WriterStats:
    batches: int = 0
    items: int = 0  # queued writes taken (sends, other ops, generic transactions)
    messages: int = 0  # message rows stored
    plan_s: float = 0.0  # planning batches, on the loop (database reads included)
    write_s: float = 0.0  # handing a batch to the writer thread until just before COMMIT
    commit_s: float = 0.0  # COMMIT: the WAL append and its fsync, in the writer thread
    dispatch_s: float = 0.0  # publishing, answering and pushing after the commit, on the loop
    lookups: int = 0  # batches planned twice: a stored client message id not in the cache
    checkpoints: int = 0  # checkpoint cycles run beside the writer
    checkpoint_s: float = 0.0
    checkpoint_passes: int = 0
    gated_passes: int = 0  # last passes run while the writer waited for them
    gated_s: float = 0.0
    slowest_gated_s: float = 0.0
    restarts: int = 0  # gated passes that copied the whole WAL, so that it starts over
    folded_rows: int = 0  # update-log rows written into `updates` (folded or direct)
    tail_rows: int = 0  # update-log rows in memory, not yet folded, after the last commit
    largest_batch: int = 0
    slowest_write_s: float = 0.0  # the longest statements + COMMIT of one batch
    slowest_dispatch_s: float = 0.0

    def record(
        self,
        items: int,
        messages: int,
        *,
        plan: float,
        write: float,
        commit: float,
        dispatch: float,
    ) -> None:
        self.batches += 1
        self.items += items
        self.messages += messages
        self.plan_s += plan
        self.write_s += write
        self.commit_s += commit
        self.dispatch_s += dispatch
        self.largest_batch = max(self.largest_batch, items)
        self.slowest_write_s = max(self.slowest_write_s, write + commit)
        self.slowest_dispatch_s = max(self.slowest_dispatch_s, dispatch)

    def record_checkpoint(self, cycle: Cycle) -> None:
        self.checkpoints += 1
        self.checkpoint_s += cycle.seconds
        self.checkpoint_passes += cycle.passes
        if cycle.gated_s is not None:
            self.gated_passes += 1
            self.gated_s += cycle.gated_s
            self.slowest_gated_s = max(self.slowest_gated_s, cycle.gated_s)
        self.restarts += cycle.restarted

    def summary(self, elapsed: float) -> str:
        """One line: rates over `elapsed` seconds and the mean time per batch in each phase."""
        n = max(1, self.batches)
        loop = self.plan_s + self.dispatch_s
        thread = self.write_s + self.commit_s

        def ms(v: float) -> str:
            return f"{1000 * v / n:.2f}"

        return (
            f"{self.batches / elapsed:.1f} commits/s, {self.messages / elapsed:.0f} messages/s, "
            f"{self.items / n:.0f} writes per commit (largest {self.largest_batch}); ms per "
            f"commit: plan {ms(self.plan_s)}, write {ms(self.write_s)}, commit "
            f"{ms(self.commit_s)}, dispatch {ms(self.dispatch_s)} (slowest write + commit "
            f"{1000 * self.slowest_write_s:.1f}, dispatch {1000 * self.slowest_dispatch_s:.1f});"
            f" writer thread busy "
            f"{100 * thread / elapsed:.0f}%, loop {100 * loop / elapsed:.0f}%; "
            f"{self.lookups} cmid lookups; {self.checkpoints} checkpoints "
            f"({1000 * self.checkpoint_s / max(1, self.checkpoints):.1f} ms and "
            f"{self.checkpoint_passes / max(1, self.checkpoints):.1f} passes each), "
            f"{self.restarts} WAL restarts; the writer waited for {self.gated_passes} gated "
            f"passes ({1000 * self.gated_s / max(1, self.gated_passes):.1f} ms each, at most "
            f"{1000 * self.slowest_gated_s:.1f}); {self.folded_rows / elapsed:.0f} log rows/s "
            f"into the per-user logs, {self.tail_rows} waiting in memory and the journal"
        )

    def reset(self) -> None:
        for f in fields(self):
            if f.name != "tail_rows":  # a gauge, not a sum
                setattr(self, f.name, f.default)
