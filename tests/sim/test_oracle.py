"""The oracle's invariants on hand-made logs: each one fires on its violation, and a
consistent history passes them all."""

from __future__ import annotations

from typing import Any

from liaotian.protocol import Sent
from liaotian.sim.oracle import Entry, HistoryRecord, OkRecord, Oracle, SentRecord, freeze

G = 10  # a group's conversation id


def msg(
    mid: int,
    conv: int,
    pos: int,
    sender: str,
    *,
    to: str = "",
    group: int | None = None,
    cmid: str = "",
    text: str = "hi",
    event: dict[str, Any] | None = None,
) -> Entry:
    return ("m", mid, conv, pos, sender, to, group, 1000 + mid, cmid, text, freeze(event))


def event(mid: int, pos: int, actor: str, kind: str, users: list[str]) -> Entry:
    return msg(mid, G, pos, actor, group=G, event={"type": kind, "users": users})


def changed(user: str) -> Entry:
    return ("k", 3, freeze({"event": "changed", "user": user}))


def feed(o: Oracle, logs: dict[str, list[Entry]]) -> None:
    for user, entries in logs.items():
        for seq, e in enumerate(entries, 1):
            o.accept(user, "d0", seq, e)


def names(o: Oracle) -> list[str]:
    return [f.invariant for f in o.failures]


def group_history() -> dict[str, list[Entry]]:
    """alice creates a group with bob, adds carol at 3, removes bob at 4."""
    created = event(1, 1, "alice", "created", ["alice", "bob"])
    m2 = msg(2, G, 2, "bob", group=G, cmid="b-1")
    added = event(3, 3, "alice", "added", ["carol"])
    removed = event(4, 4, "alice", "removed", ["bob"])
    m5 = msg(5, G, 5, "carol", group=G, cmid="c-1")
    return {
        "alice": [created, m2, added, removed, m5],
        "bob": [created, m2, added, removed],
        "carol": [added, removed, m5],
    }


def test_a_consistent_history_passes() -> None:
    o = Oracle()
    feed(o, group_history())
    o.sent_answer(
        SentRecord(
            "carol", "", G, "hi", Sent(rid=1, id=5, conv=G, pos=5, ts=1005, seq=3, cmid="c-1")
        )
    )
    o.ok_answer(OkRecord("alice", G, 4, "removed"))
    o.history_answer(HistoryRecord("carol", G, (group_history()["carol"][0],)))
    o.final({"alice": 5, "bob": 4, "carol": 3})
    assert o.failures == []


def test_a_removed_member_gets_nothing_after_the_removal() -> None:
    o = Oracle()
    logs = group_history()
    logs["bob"].append(logs["alice"][4])
    feed(o, logs)
    assert names(o) == ["members-only"]


def test_a_member_misses_nothing_of_their_membership() -> None:
    o = Oracle()
    logs = group_history()
    del logs["carol"][2]  # carol never got pos 5
    feed(o, logs)
    o.final({"alice": 5, "bob": 4, "carol": 2})
    assert "members-only" in names(o)


def test_history_before_the_join_is_caught() -> None:
    o = Oracle()
    logs = group_history()
    feed(o, logs)
    o.history_answer(HistoryRecord("carol", G, tuple(logs["alice"][:3])))
    o.final({"alice": 5, "bob": 4, "carol": 3})
    assert names(o) == ["history-joined"]


def test_a_blocked_sender_is_caught_by_the_recipients_own_log() -> None:
    o = Oracle()
    hello = msg(1, 3, 1, "alice", to="bob", cmid="a-1")
    later = msg(2, 3, 2, "alice", to="bob", cmid="a-2")
    feed(o, {"bob": [hello, changed("alice"), later]})
    assert names(o) == ["not-blocked"]
    o = Oracle()
    feed(o, {"bob": [hello, changed("alice"), changed("alice"), later]})  # unblocked again
    assert o.failures == []


def test_a_message_twice_and_a_cmid_naming_two_messages() -> None:
    o = Oracle()
    one = msg(1, 3, 1, "alice", to="bob", cmid="a-1")
    again = msg(2, 3, 2, "alice", to="bob", cmid="a-1")
    feed(o, {"bob": [one, again, one]})
    assert names(o) == ["cmid-once", "exactly-once", "in-order"]


def test_devices_and_participants_must_agree() -> None:
    o = Oracle()
    o.accept("bob", "d0", 1, msg(1, 3, 1, "alice", to="bob", text="hi"))
    o.accept("bob", "d1", 1, msg(1, 3, 1, "alice", to="bob", text="ho"))
    o.accept("alice", "d0", 1, msg(1, 3, 1, "alice", to="bob", text="hey"))
    assert names(o) == ["devices-agree", "timeline-agrees"]
