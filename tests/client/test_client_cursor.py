"""CursorTracker and classify_update: exactly-once, in-order bookkeeping, without sockets."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from liaotian.client.cursor import CursorTracker, Verdict, classify_update
from liaotian.protocol import ChatMessage, Update


def msg_update(seq: int, sender: str = "bob", cmid: str | None = None) -> Update:
    m = ChatMessage(
        id=seq,
        conv=1,
        pos=seq,
        sender=sender,
        to="alice",
        ts=1000 + seq,
        cmid=cmid or f"c{seq}",
        text=f"m{seq}",
    )
    return Update(seq=seq, kind=1, message=m)


def test_starts_at_the_given_cursor() -> None:
    t = CursorTracker(5)
    assert t.cursor == 5 and t.received == 5
    assert not t.is_new(5) and not t.is_new(1) and t.is_new(6)
    with pytest.raises(ValueError):
        CursorTracker(-1)


def test_duplicates_and_old_entries_are_refused() -> None:
    t = CursorTracker(2)
    assert not t.accept(1)
    assert not t.accept(2)
    assert t.accept(3)
    assert not t.accept(3)  # seen, still queued
    t.handed(3)
    assert t.cursor == 3
    assert not t.accept(3)  # below the cursor now


def test_cursor_advances_only_over_handed_entries() -> None:
    t = CursorTracker(0)
    for s in (1, 2, 3):
        assert t.accept(s)
    t.received_through(3)
    assert t.cursor == 0 and t.pending == 3
    t.handed(1)
    assert t.cursor == 1
    t.handed(2)
    t.handed(3)
    assert t.cursor == 3 and t.pending == 0


def test_gap_holds_the_cursor_until_filled() -> None:
    """Without a watermark the cursor is contiguous: seq 3 handed before 2 exists does not
    move it past 1."""
    t = CursorTracker(0)
    t.accept(1)
    t.handed(1)
    t.accept(3)
    t.handed(3)
    assert t.cursor == 1
    t.accept(2)
    t.handed(2)
    assert t.cursor == 3


def test_own_sends_count_as_handled() -> None:
    """SENT.seq of this connection's own send is marked seen: never delivered, and the
    cursor steps over it."""
    t = CursorTracker(0)
    assert t.skip(1)  # SENT seq 1
    assert t.cursor == 1
    assert not t.is_new(1)
    t.accept(2)
    assert t.skip(3)  # own send while 2 is still queued
    assert t.cursor == 1
    t.handed(2)
    assert t.cursor == 3
    assert not t.skip(3)


def test_own_send_seen_before_the_sync_page_that_repeats_it() -> None:
    """A SENT that arrives before live carries a seq the pending SYNC page repeats."""
    t = CursorTracker(0)
    t.skip(4)  # SENT for seq 4 before the sync reached it
    assert t.cursor == 0
    page = [1, 2, 3, 4, 5]
    delivered = [s for s in page if t.accept(s)]
    assert delivered == [1, 2, 3, 5]
    t.received_through(5)
    for s in delivered:
        t.handed(s)
    assert t.cursor == 5


def test_watermark_covers_holes_in_the_numbering() -> None:
    """A sync page covers (since, last] completely, so missing numbers do not exist."""
    t = CursorTracker(0)
    for s in (2, 5):
        t.accept(s)
    t.received_through(7)
    assert t.cursor == 1  # stops below the oldest queued entry
    t.handed(2)
    assert t.cursor == 4
    t.handed(5)
    assert t.cursor == 7


def test_overflow_freezes_the_watermark_and_refetch_resumes() -> None:
    t = CursorTracker(10)
    assert t.accept(11)
    t.drop(12)  # queue full
    assert t.overflowing
    t.drop(13)
    t.received_through(13)  # ignored while overflowing
    assert t.received == 10
    t.skip(14)  # our own send meanwhile
    t.handed(11)
    assert t.cursor == 11  # cannot pass the dropped 12
    assert t.refetch_since == 11  # the cursor: the server must not record more
    t.begin_sync()
    assert not t.overflowing
    # The refetch page repeats 12..14; 14 is ours and already seen.
    assert [s for s in (12, 13, 14) if t.accept(s)] == [12, 13]
    t.received_through(14)
    t.handed(12)
    t.handed(13)
    assert t.cursor == 14


def test_reset_jumps_and_forgets() -> None:
    t = CursorTracker(3)
    t.accept(4)
    t.skip(6)
    t.reset(10)
    assert t.cursor == 10 and t.received == 10 and t.pending == 0
    assert not t.is_new(6) and t.is_new(11)
    t.handed(4)  # a queued event from before the reset: harmless
    assert t.cursor == 10
    t.reset(0)  # backwards (a server whose data was reset)
    assert t.cursor == 0 and t.is_new(1) and t.is_new(6)


def test_classify_update() -> None:
    t = CursorTracker(5)
    assert classify_update(msg_update(5), t, "alice", set()) is Verdict.DUPLICATE
    assert classify_update(msg_update(6), t, "alice", set()) is Verdict.DELIVER
    own = msg_update(7, sender="alice", cmid="mine")
    assert classify_update(own, t, "alice", {"mine"}) is Verdict.OWN_SEND
    # From this account but not a pending send (another device, an earlier run): deliver.
    assert classify_update(own, t, "alice", {"other"}) is Verdict.DELIVER
    # Same cmid from someone else is not ours.
    assert classify_update(msg_update(8, cmid="mine"), t, "alice", {"mine"}) is Verdict.DELIVER
    unknown = Update(seq=9, kind=77, data={"x": 1})
    assert classify_update(unknown, t, "alice", set()) is Verdict.UNKNOWN_KIND
    t.accept(6)
    assert classify_update(msg_update(6), t, "alice", set()) is Verdict.DUPLICATE


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=1, max_value=60),
    st.randoms(use_true_random=False),
    st.integers(min_value=0, max_value=5),
)
def test_random_replays_deliver_each_entry_once_in_order(
    n: int, rnd: random.Random, reconnects: int
) -> None:
    """A log 1..n reaches the client as pushes, repeated SYNC pages after reconnects and
    SENTs of its own sends, in any mix; the application sees each foreign entry exactly
    once, in order, and the cursor ends at n."""
    own = {s for s in range(1, n + 1) if rnd.random() < 0.2}
    t = CursorTracker(0)
    delivered: list[int] = []
    queue: list[int] = []
    pos = 0  # how far the stream has got
    while pos < n:
        step = rnd.randint(1, 5)
        chunk = list(range(pos + 1, min(n, pos + step) + 1))
        for s in chunk:
            if s in own:
                t.skip(s)
            elif t.accept(s):
                queue.append(s)
        t.received_through(chunk[-1])
        pos = chunk[-1]
        # The application takes some of the queue.
        for _ in range(rnd.randint(0, len(queue))):
            s = queue.pop(0)
            t.handed(s)
            delivered.append(s)
        if reconnects and rnd.random() < 0.3:
            reconnects -= 1
            # Reconnect: SYNC from the cursor repeats everything above it.
            for s in range(t.cursor + 1, pos + 1):
                if s not in own and t.accept(s):
                    queue.append(s)
            t.received_through(pos)
    for s in queue:
        t.handed(s)
        delivered.append(s)
    assert delivered == [s for s in range(1, n + 1) if s not in own]
    assert t.cursor == n
