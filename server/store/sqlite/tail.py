"""The update logs' recent tail: kept in memory and in an append-only journal, folded later.

Every message a user must see takes a row in that user's update log, the `updates` table,
clustered by (user, seq) so that a device's SYNC reads one contiguous range. Written
there at once, a one-to-one message changes two scattered pages (the sender's and the
recipient's part of the log) in every commit, and every checkpoint copies them all:
measured on the bench, those pages were most of the WAL and the checkpoints' random
writes, and the latency tail came from them (p99 at 7,000 msgs/s: 15-24 ms with the rows
written in place, 7-8 ms with the same rows appended).

So a commit appends its log rows to `update_journal` (ordered by its own id: the rows of
one commit share a page or two), and the loop keeps the published rows of each user in
memory, here, until they are folded: copied into `updates` by a later commit, all of one
user's pending rows at once, when the oldest is `fold_age_ms` old (or sooner when the
tail holds more than `max_rows`). A user's page then changes once per fold instead of
once per commit. Journal rows every user has had folded are deleted by id range. A user
with DIRECT_ROWS rows in one commit (a group's members) has them written into `updates`
at once instead, its tail folded in the same commit.

Reads see the union: `updates` (the folded part of each log) and this tail (the rest),
which overlap while a fold's rows are in both. A reader copies the tail before it asks
the database, so a fold published in between cannot hide rows: a fold is published only
after its COMMIT returned, so a read started after that sees the rows in `updates`.
Rows published while the read awaits the database may be in neither; the SYNC handler
reads again when its page came back empty that way (handlers/messaging.py).
After a crash the journal holds the unfolded rows; opening the store folds them all
(fold_journal in sql.py) before anything is served, and so does a clean close.
"""

from __future__ import annotations

from collections import Counter, OrderedDict, deque
from operator import itemgetter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .batch import Batch

# A log row: (its commit's journal id, user, seq, kind, message id or None, data or None,
# ts ms), as the batch planned it; the tail keeps these very tuples.
JournalRow = tuple[int, int, int, int, int | None, bytes | None, int]
MessageRow = tuple[Any, ...]  # (id, conv, pos, sender, sender seq, cmid, ts, body)

_user = itemgetter(1)

FOLD_AGE_MS = 1000
MAX_ROWS = 200_000  # beyond this many rows in memory, fold the oldest users at once
# A commit folds due users until it has copied FOLD_SHARE times as many rows as it
# appends (at least one user): folds keep pace with the appends and are spread evenly
# over the commits. Folding every due user at once made single commits of ~4,000 rows
# and 256 scattered pages (30-60 ms) and the latency p99 with them.
FOLD_SHARE = 1.5
FOLD_USERS = 256  # users folded by one commit, at most
# A user with this many log rows in one commit has them written straight into `updates`
# (with the user's tail folded in the same commit): a page written per ~10 rows is cheaper
# than journalling and folding them (a group message gives 500 members a row each).
DIRECT_ROWS = 10
TRIM_EVERY_MS = 250  # how often the journal's folded prefix is deleted


class UpdateTail:
    """Per user, the published log rows not yet known folded into `updates`, oldest first.

    Users are kept in the order their oldest pending row arrived (roughly: a user folded
    in part goes to the back), so the users due for a fold are at the front. A message's
    body stays with its batch's message rows, kept by journal id while any row of the
    batch is in the tail: publishing a batch allocates nothing per row.
    """

    def __init__(self, *, fold_age_ms: int = FOLD_AGE_MS, max_rows: int = MAX_ROWS) -> None:
        self.fold_age_ms = fold_age_ms
        self.max_rows = max_rows
        self._logs: OrderedDict[int, deque[JournalRow]] = OrderedDict()
        self._messages: dict[int, list[MessageRow]] = {}  # journal id -> its batch's
        self.rows = 0
        self.next_jid = 1  # the journal id after the last published batch
        self._inflight: list[dict[int, int]] = []  # folds of batches launched, not finished
        self._trimmed_below = 0  # journal ids below this are deleted (or being deleted)
        self._trim_at = 0
        self.due_before_ms = 0  # rows older than this are due at once (before a prune)

    # ------------------------------------------------------------------ reads

    def after(self, uid: int, since: int) -> list[tuple[int, int, bytes]]:
        """(seq, kind, data) of uid's rows past `since`, resolved now: take it before
        reading `updates` (a trim published during the read may drop the bodies)."""
        log = self._logs.get(uid)
        if not log:
            return []
        data = self.data
        return [(row[2], row[3], data(row)) for row in log if row[2] > since]

    def message(self, row: JournalRow) -> MessageRow:
        """The message row a log row refers to (in its own batch)."""
        msgs = self._messages[row[0]]
        mid = row[4]
        assert mid is not None
        i = mid - msgs[0][0]  # a batch's message ids are consecutive (Batch.run)
        m: MessageRow = (
            msgs[i]
            if 0 <= i < len(msgs) and msgs[i][0] == mid
            else next(m for m in msgs if m[0] == mid)
        )
        return m

    def data(self, row: JournalRow) -> bytes:
        """What a SYNC page carries for the row: the message body, or the entry's data."""
        return self.message(row)[7] if row[4] is not None else row[5] or b""

    def oldest_ms(self) -> int | None:
        """The timestamp of the oldest row in memory (None when there is none)."""
        return min((log[0][6] for log in self._logs.values()), default=None)

    def last_in_conv(self, uid: int, upto: int, conv: int) -> tuple[int, int] | None:
        """(seq, position) of the newest message of `conv` in uid's tail at or below seq
        `upto`, if the tail has one."""
        log = self._logs.get(uid)
        if not log:
            return None
        for row in reversed(log):
            if row[4] is not None and row[2] <= upto:
                m = self.message(row)
                if m[1] == conv:
                    return row[2], int(m[2])
        return None

    def chats_of(self, uid: int) -> dict[int, int]:
        """{conv: ts of its newest message} over uid's rows in the tail (the part of the
        chat list's index not folded yet, chat_list.py)."""
        log = self._logs.get(uid)
        if not log:
            return {}
        message = self.message
        return {message(row)[1]: row[6] for row in log if row[4] is not None}

    # ------------------------------------------------------------------ writes

    def plan_fold(self, batch: Batch, now_ms: int) -> None:
        """Add to `batch` the folds that are due and, now and then, the journal trim."""
        if len(batch.updates) >= DIRECT_ROWS:
            self._plan_direct(batch)
        logs = self._logs
        cutoff = max(now_ms - self.fold_age_ms, self.due_before_ms - 1)
        over = self.rows > self.max_rows
        if self.due_before_ms:  # a prune waits: fold everything due, as fast as allowed
            budget = float("inf")
        elif over:
            budget = self.rows - self.max_rows
        else:
            budget = FOLD_SHARE * len(batch.updates)
        busy = self._inflight
        users = rows = 0
        for uid, log in logs.items():
            if users >= FOLD_USERS or (users and rows >= budget):
                break
            if not over and log[0][6] > cutoff:
                break  # the rest arrived later (near enough)
            if uid in batch.folded or any(uid in f for f in busy):
                continue  # a fold of its rows is committing: let it finish first
            batch.folds.extend(log)
            batch.folded[uid] = log[-1][2]
            users += 1
            rows += len(log)
        if now_ms >= self._trim_at:  # also when the tail is empty: the journal may not be
            self._trim_at = now_ms + TRIM_EVERY_MS
            below = min([log[0][0] for log in logs.values()], default=self.next_jid)
            below = min(below, self.next_jid)
            if below > self._trimmed_below:
                batch.journal_below = below
        if batch.folded:
            busy.append(batch.folded)
        batch.chat_rows = self.chat_rows(batch)

    def chat_rows(self, batch: Batch) -> list[tuple[int, int, int, int, int]]:
        """The chat list's index rows for what `batch` writes into `updates`: per user and
        conversation, (user, conv, ts, seq, pos) of the newest message row (sql.py). Also
        PostgreSQL's, whose rows are all direct (postgres/writer.py)."""
        newest: dict[tuple[int, int], tuple[int, int, int]] = {}
        message = self.message
        batches = self._messages
        for row in batch.folds:  # grouped by user, in seq order: the last one is newest
            mid = row[4]
            if mid is not None:
                # message() inlined for its common case (a fold is ~2 rows per message)
                msgs = batches[row[0]]
                i = mid - msgs[0][0]
                m = msgs[i] if 0 <= i < len(msgs) and msgs[i][0] == mid else message(row)
                newest[(row[1], m[1])] = (row[6], row[2], m[2])
        if batch.direct_rows:
            own = {m[0]: m for m in batch.messages}
            for row in batch.direct_rows:
                mine = own.get(row[4]) if row[4] is not None else None
                if mine is not None:
                    newest[(row[1], mine[1])] = (row[6], row[2], mine[2])
        return [(u, c, ts, seq, pos) for (u, c), (ts, seq, pos) in newest.items()]

    def _plan_direct(self, batch: Batch) -> None:
        """Write the rows of the users with DIRECT_ROWS rows in `batch` straight into
        `updates`, their tails folded first in the same commit, so that `updates` still
        holds a prefix of each log. Not for a user with rows in the parent batch: those
        may reach the tail only after this batch is planned."""
        counts = Counter(map(_user, batch.updates))
        direct = {uid for uid, n in counts.items() if n >= DIRECT_ROWS}
        if direct and batch.parent_updates:
            direct -= set(map(_user, batch.parent_updates))
        if not direct:
            return
        keep: list[JournalRow] = []
        rows: dict[int, list[JournalRow]] = {uid: [] for uid in direct}
        for row in batch.updates:
            own = rows.get(row[1])
            (keep if own is None else own).append(row)
        batch.updates = keep
        for uid, mine in rows.items():  # a user's rows together, in seq order
            log = self._logs.get(uid)
            if log:  # a fold of it may be committing too: copies are ignored
                batch.folds.extend(log)
                batch.folded[uid] = log[-1][2]
            batch.direct_rows.extend(mine)

    def forget(self, batch: Batch) -> None:
        """The batch failed or is planned again: its folds did not happen."""
        self._drop_inflight(batch.folded)
        batch.journal_below = 0

    def publish(self, batch: Batch) -> None:
        """The batch committed: trim what it folded, then take in its log rows."""
        logs = self._logs
        if batch.folded:
            self._drop_inflight(batch.folded)
            for uid, upto in batch.folded.items():
                log = logs.get(uid)
                if log is None:
                    continue
                n = 0
                while log and log[0][2] <= upto:
                    log.popleft()
                    n += 1
                self.rows -= n
                if log:
                    logs.move_to_end(uid)
                else:
                    del logs[uid]
        if batch.journal_below > self._trimmed_below:
            self._trimmed_below = below = batch.journal_below
            msgs = self._messages
            while msgs and next(iter(msgs)) < below:
                del msgs[next(iter(msgs))]
        for mid, _conv, _pos, body in batch.edits:
            self._replace_body(mid, body)
        if batch.updates:
            if batch.messages:
                self._messages[batch.jid] = batch.messages
            for row in batch.updates:
                log = logs.get(row[1])
                if log is None:
                    logs[row[1]] = log = deque()
                log.append(row)
            self.rows += len(batch.updates)
        self.next_jid = batch.jid + 1

    def _replace_body(self, mid: int, body: bytes) -> None:
        """A bot's edit committed: a SYNC served from the tail carries the new map too (the
        database's copy changed in the same commit). Edits are rare; the batches in memory
        are few hundred at most, each a run of consecutive message ids."""
        for msgs in self._messages.values():
            if msgs and msgs[0][0] <= mid <= msgs[-1][0]:
                for i, m in enumerate(msgs):
                    if m[0] == mid:
                        msgs[i] = (*m[:7], body)
                        return

    def _drop_inflight(self, folded: dict[int, int]) -> None:
        for i, f in enumerate(self._inflight):
            if f is folded:
                del self._inflight[i]
                return

    def __len__(self) -> int:
        return len(self._logs)
