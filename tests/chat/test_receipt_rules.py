"""Read markers and receipts (chat/rules/receipts.py) on a tiny in-memory plan."""

from __future__ import annotations

from chatworld import World
from liaotian.protocol import ErrorCode, UpdateKind
from liaotian.server.chat.model import VIS_EVERYONE, VIS_NOBODY, Social
from liaotian.server.chat.ops import MarkRead
from liaotian.server.chat.rules.receipts import shows_delivered, shows_read, unread_after


def test_reading_tells_my_devices_and_the_sender_if_my_privacy_allows() -> None:
    w = World()
    a, b = w.users("alice", "bob")
    r = w.send("alice", "bob", "hi").result
    assert r is not None
    op = w.apply(MarkRead(actor=b, conv=r.conv, read_pos=1, peer=a))
    assert op.error is None and w.markers[(b, r.conv)] == 1
    assert len(w.entries("bob", UpdateKind.READ)) == 1
    assert w.entries("alice", UpdateKind.READ) == []  # receipts default to contacts
    w.social[b].receipts = VIS_EVERYONE
    w.send("alice", "bob", "again")
    w.apply(MarkRead(actor=b, conv=r.conv, read_pos=2, peer=a))
    assert w.entries("alice", UpdateKind.READ) == [{"conv": r.conv, "user": "bob", "pos": 2}]


def test_a_marker_beyond_the_end_is_refused() -> None:
    w = World()
    a, b = w.users("alice", "bob")
    r = w.send("alice", "bob").result
    assert r is not None
    op = w.apply(MarkRead(actor=b, conv=r.conv, read_pos=5, peer=a))
    assert op.error == ErrorCode.INVALID_FIELD and (b, r.conv) not in w.markers


def test_visibility_of_positions() -> None:
    owner = Social(contacts={2}, blocked={3}, receipts=VIS_EVERYONE, presence=VIS_NOBODY)
    assert shows_read(owner, 9) and not shows_read(owner, 3)
    assert not shows_delivered(owner, 2)  # presence nobody hides delivered positions


def test_unread_counts_start_at_the_marker_or_the_join_point() -> None:
    assert unread_after(read_pos=0, joined_pos=1) == 0
    assert unread_after(read_pos=0, joined_pos=7) == 6
    assert unread_after(read_pos=9, joined_pos=7) == 9
