"""A bot's edit and its callbacks at rule level (chat/rules/bots.py over chatworld's tiny
plan): the edit replaces the stored message and tells every member once; a press keeps
its callback pending in the same plan, the answer closes it."""

from __future__ import annotations

import msgpack
from chatworld import World
from liaotian.protocol import UpdateKind
from liaotian.server.chat.bot_ops import BotNotice, EditMessage, RemoveBot
from liaotian.server.chat.model import ROLE_OWNER
from liaotian.server.chat.ops import AddMembers, CreateGroup, SetRole

BUTTONS = {"buttons": [[{"text": "Yes", "data": "y"}]]}


def _stored(w: World, mid: int) -> dict:
    return msgpack.unpackb(w.messages[mid - 1][7])


def test_an_edit_replaces_the_stored_message_and_tells_each_member_once() -> None:
    w = World(ts=5_000)
    alice, bob, xbot = w.users("alice", "bob", "xbot")
    g = w.apply(CreateGroup(actor=alice, name="g", members=("bob", "xbot")))
    assert g.error is None and g.group is not None
    sent = w.send("xbot", "", "pick one", group=g.group.conv)
    original = _stored(w, sent.result.id)
    w.ts = 9_000
    op = w.apply(
        EditMessage(
            actor=xbot,
            message=original,
            text="picked: yes",
            meta=BUTTONS,
            users=(alice, bob, xbot),
        )
    )
    assert op.error is None
    m = _stored(w, sent.result.id)
    # the same message, its text and meta replaced, stamped with the batch's time
    assert m["text"] == "picked: yes" and m["meta"] == BUTTONS and m["edited"] == 9_000
    assert (m["id"], m["conv"], m["pos"], m["ts"], m["cmid"]) == (
        original["id"],
        original["conv"],
        original["pos"],
        original["ts"],
        original["cmid"],
    )
    for name in ("alice", "bob", "xbot"):
        (entry,) = w.entries(name, int(UpdateKind.MESSAGE_EDITED))
        assert entry["text"] == "picked: yes" and entry["edited"] == 9_000
        assert entry["group"] == original["conv"] and entry["from"] == "xbot"
    assert len(op.pushes) == 3  # pushed once to each member


def test_an_edit_of_a_direct_message_has_no_group_and_may_drop_the_buttons() -> None:
    w = World()
    alice, xbot = w.users("alice", "xbot")
    sent = w.send("xbot", "alice", "menu")
    op = w.apply(
        EditMessage(
            actor=xbot, message=_stored(w, sent.result.id), text="done", meta={}, users=(alice,)
        )
    )
    assert op.error is None
    m = _stored(w, sent.result.id)
    assert m["text"] == "done" and "meta" not in m and m["to"] == "alice"
    (entry,) = w.entries("alice", int(UpdateKind.MESSAGE_EDITED))
    assert "group" not in entry


def test_a_press_keeps_its_callback_and_the_answer_closes_it() -> None:
    w = World(ts=7_000)
    alice, xbot = w.users("alice", "xbot")
    data = msgpack.packb({"callback": 42, "from": "alice", "conv": 1, "pos": 1, "id": 1})
    press = w.apply(
        BotNotice(
            actor=alice,
            users=(xbot,),
            kind=int(UpdateKind.CALLBACK),
            data=data,
            callback=42,
            press_conv=1,
            press_pos=1,
        )
    )
    assert press.error is None
    cb = w.callbacks[42]
    assert (cb.bot, cb.presser, cb.conv, cb.pos, cb.created, cb.entry) == (
        xbot,
        alice,
        1,
        1,
        7_000,
        data,
    )
    assert [e["callback"] for e in w.entries("xbot", int(UpdateKind.CALLBACK))] == [42]
    answer = w.apply(
        BotNotice(
            actor=xbot,
            users=(alice,),
            kind=int(UpdateKind.CALLBACK_ANSWER),
            data=msgpack.packb({"callback": 42, "text": "ok"}),
            answers=42,
        )
    )
    assert answer.error is None and 42 not in w.callbacks
    assert ("drop_callback", 42) in w.writes


def test_a_deleted_bot_leaves_its_groups_and_hands_over_one_it_owned() -> None:
    w = World()
    alice, bob, carol, xbot = w.users("alice", "bob", "carol", "xbot")
    joined = w.apply(CreateGroup(actor=alice, name="a", members=("bob", "xbot")))
    w.ts += 1
    owned = w.apply(CreateGroup(actor=xbot, name="b", members=("carol",)))
    w.ts += 1
    add = w.apply(AddMembers(actor=xbot, group=owned.group.conv, users=("bob",)))
    w.ts += 1
    w.apply(SetRole(actor=xbot, group=owned.group.conv, user="bob", role="admin"))
    assert joined.error is None and owned.error is None and add.error is None
    g1, g2 = joined.group.conv, owned.group.conv
    op = w.apply(RemoveBot(actor=alice, bot=xbot, groups=(g1, g2, 999)))
    assert op.error is None
    assert xbot not in w.groups[g1].members and xbot not in w.groups[g2].members
    # the admin inherits the group, though carol has been a member longer
    assert w.groups[g2].owner == bob and w.groups[g2].members[bob].role == ROLE_OWNER
    events = [
        msgpack.unpackb(w.messages[mid - 1][7])["event"]
        for _s, _k, mid, _d in w.log_of("carol")
        if mid is not None
    ]
    assert events[-2:] == [
        {"type": "owner", "user": "bob"},
        {"type": "left", "users": ["xbot"], "deleted": True},
    ]
    assert w.texts("bob")[-1] == "left" and w.texts("alice")[-1] == "left"
    assert w.texts("xbot")[-1] == "left"  # the bot reads the event that ends it
    again = w.apply(RemoveBot(actor=alice, bot=xbot, groups=(g1,)))
    assert again.error is None and again.pushes == []  # nothing left to leave
    assert carol in w.groups[g2].members
