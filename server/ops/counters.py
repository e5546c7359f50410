"""Plain counters the serving path bumps, read by the metrics collector and the stats line.

Nothing here is a prometheus object: the hot path adds 1 to an int in a list (frames by
type number) or a dict (errors and closes by code), and the collector (metrics.py) turns
them into metric families when scraped. Where the counts are taken (hook points, each
marked "ops:" in the file):

- frames received by type: `Router.dispatch`, per decoded message;
- frames sent by type: `ServerConnection.send` / `send_frame`, and the batch answers and
  live UPDATES pushes written by `MessagingService.committed` (it writes to the protocol
  connection directly); UPDATES through `ServerConnection.send_frame` answer a SYNC: those
  are the sync pages;
- errors by code: requests refused through the router, protocol violations answered by
  the protocol core, and refused writes answered after a group commit (`Ops` wraps the
  store's commit callback);
- connections opened, authenticated and closed by close code: the hub's lifecycle hooks
  (lifecycle.py);
- group-commit batch sizes and durations: `WriterMeter`, the store's statistics object.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Sequence

from liaotian.protocol import MessageType

from ..store.sqlite.checkpoint import Cycle
from ..store.sqlite.stats import WriterStats

N_TYPES = max(MessageType) + 1  # frame counters are lists indexed by type number


class Histogram:
    """Fixed buckets of plain ints: `counts[i]` holds observations <= bounds[i] and above
    the bound before it; the last holds the rest (+Inf)."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def observe_many(self, value: float, n: int) -> None:
        """`n` observations of the same value."""
        self.counts[bisect_left(self.bounds, value)] += n
        self.sum += value * n

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[float, int]]:
        """Prometheus buckets: (upper bound, observations at or below it), inf last."""
        out, total = [], 0
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            total += n
            out.append((float(bound), total))
        return out

    def quantile(self, q: float, since: Sequence[int] | None = None) -> float | None:
        """Estimated q-quantile of the observations (those after the snapshot `since`, a
        copy of `counts` taken earlier), interpolated within its bucket; None if none."""
        counts = (
            self.counts
            if since is None
            else [a - b for a, b in zip(self.counts, since, strict=True)]
        )
        total = sum(counts)
        if total <= 0:
            return None
        rank = q * total
        seen = 0
        for i, n in enumerate(counts):
            if n and seen + n >= rank:
                lo = self.bounds[i - 1] if i > 0 else 0.0
                if i >= len(self.bounds):  # beyond the last bound: say the last bound
                    return float(self.bounds[-1])
                return lo + (self.bounds[i] - lo) * (rank - seen) / n
            seen += n
        return float(self.bounds[-1])


# Bucket bounds, chosen for what each measures.
COMMIT_SECONDS = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.03,
    0.05,
    0.075,
    0.1,
    0.15,
    0.25,
    0.5,
    1.0,
    2.5,
)
BATCH_SIZES = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
FANOUT_SIZES = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


class Counters:
    """The server's running totals; created once per Server, never reset."""

    __slots__ = (
        "authenticated",
        "closes",
        "errors",
        "fanout",
        "frames_in",
        "frames_out",
        "opened",
        "pushes",
    )

    def __init__(self) -> None:
        self.frames_in = [0] * N_TYPES  # decoded client messages, by type number
        self.frames_out = [0] * N_TYPES  # frames queued to clients, by type (pushes apart)
        self.pushes = 0  # live UPDATES frames written after a commit (rid 0)
        self.errors: defaultdict[int, int] = defaultdict(int)  # ERROR frames, by code
        self.closes: defaultdict[int, int] = defaultdict(int)  # ended connections, by
        # close code; 0: ended without a CLOSE (end of stream, reset)
        self.opened = 0  # connections accepted (TCP)
        self.authenticated = 0  # LOGIN or AUTH succeeded
        self.fanout = Histogram(FANOUT_SIZES)  # users a stored message is written to


class WriterMeter(WriterStats):
    """The store's WriterStats, also keeping histograms and totals that are never reset
    (WriterStats' sums are reset by every statistics line). Installed as `store.stats`
    before the store opens; one observation per group commit, none per message."""

    __slots__ = ("batch_sizes", "checkpoints_total", "commit_seconds", "restarts_total")

    def __init__(self) -> None:
        super().__init__()
        self.batch_sizes = Histogram(BATCH_SIZES)  # writes per group commit
        self.commit_seconds = Histogram(COMMIT_SECONDS)  # statements + COMMIT, per batch
        self.checkpoints_total = 0
        self.restarts_total = 0

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
        WriterStats.record(
            self, items, messages, plan=plan, write=write, commit=commit, dispatch=dispatch
        )
        self.batch_sizes.observe(items)
        self.commit_seconds.observe(write + commit)

    def record_checkpoint(self, cycle: Cycle) -> None:
        WriterStats.record_checkpoint(self, cycle)
        self.checkpoints_total += 1
        self.restarts_total += cycle.restarted
