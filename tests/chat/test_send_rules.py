"""SEND's rules (chat/rules/send.py) on a tiny in-memory plan: no store, no socket."""

from __future__ import annotations

import msgpack
from chatworld import World
from liaotian.protocol import ErrorCode, UpdateKind
from liaotian.server.chat.model import VIS_CONTACTS, Social
from liaotian.server.chat.ops import BlockUser, CreateGroup, RemoveMember, SetPrivacy
from liaotian.server.chat.rules.send import may_message


def test_a_blocked_user_cannot_message_me() -> None:
    w = World()
    w.user("alice")
    w.user("mallory")
    assert w.send("mallory", "alice", "hello").result is not None
    assert w.apply(BlockUser(actor=w.ids["alice"], user="mallory")).error is None
    refused = w.send("mallory", "alice", "let me in")
    assert refused.error == ErrorCode.NOT_ALLOWED and refused.result is None
    assert w.texts("alice") == ["hello"]  # nothing reached alice's log
    assert w.texts("mallory") == ["hello"]  # nor the sender's: nothing was stored
    # the block is one-way: alice can still write to mallory
    assert w.send("alice", "mallory", "go away").result is not None


def test_may_message_is_the_rule_behind_it() -> None:
    me = Social()
    assert may_message(me, 7)
    me.blocked.add(7)
    assert not may_message(me, 7) and may_message(me, 8)
    me.messages = VIS_CONTACTS
    me.contacts.add(8)
    assert may_message(me, 8) and not may_message(me, 9)
    me.contacts.add(7)  # a block wins over being a contact
    assert not may_message(me, 7)


def test_privacy_messages_contacts_refuses_strangers_alike() -> None:
    w = World()
    w.user("alice")
    w.user("bob")
    w.apply(SetPrivacy(actor=w.ids["alice"], messages="contacts"))
    refused = w.send("bob", "alice")
    assert refused.error == ErrorCode.NOT_ALLOWED  # the same answer as a block


def test_a_direct_send_writes_one_message_and_two_log_entries() -> None:
    w = World()
    w.user("alice")
    w.user("bob")
    first = w.send("alice", "bob", "one").result
    second = w.send("bob", "alice", "two").result
    assert first is not None and second is not None
    assert (first.pos, second.pos) == (1, 2) and first.conv == second.conv
    assert (first.sender_seq, first.recipient_seq) == (1, 1)
    assert (second.sender_seq, second.recipient_seq) == (2, 2)
    assert w.texts("alice") == w.texts("bob") == ["one", "two"]
    body = msgpack.unpackb(first.body)
    assert (body["from"], body["to"], body["text"]) == ("alice", "bob", "one")


def test_a_note_to_self_is_one_entry() -> None:
    w = World()
    w.user("alice")
    r = w.send("alice", "alice", "note").result
    assert r is not None and r.sender_seq == r.recipient_seq == 1
    assert len(w.log_of("alice")) == 1


def test_unknown_recipient() -> None:
    w = World()
    w.user("alice")
    assert w.send("alice", "nobody").error == ErrorCode.UNKNOWN_USER


def test_a_retry_in_the_same_batch_is_a_duplicate() -> None:
    w = World()
    w.user("alice")
    w.user("bob")
    first = w.send("alice", "bob", "x", cmid="same").result
    retry = w.send("alice", "bob", "y", cmid="same").result
    assert first is not None and retry is not None
    assert retry.duplicate and retry.id == first.id and retry.body == b""
    assert w.texts("bob") == ["x"]


def test_group_send_reaches_every_member_and_only_members() -> None:
    w = World()
    w.users("alice", "bob", "carol", "dave")
    g = w.apply(CreateGroup(actor=w.ids["alice"], name="g", members=("bob", "carol"))).group
    assert g is not None
    r = w.send("bob", "", "hello group", group=g.conv).result
    assert r is not None
    assert sorted(u for u, _ in r.fanout) == [w.ids["alice"], w.ids["carol"]]
    assert w.texts("carol") == ["created", "hello group"]
    assert w.send("dave", "", "let me in", group=g.conv).error == ErrorCode.NOT_MEMBER
    assert w.texts("dave") == []


def test_a_removed_member_sends_nothing_after_the_removal() -> None:
    w = World()
    w.users("alice", "bob")
    g = w.apply(CreateGroup(actor=w.ids["alice"], name="g", members=("bob",))).group
    assert g is not None
    assert w.apply(RemoveMember(actor=w.ids["alice"], group=g.conv, user="bob")).error is None
    assert w.send("bob", "", "still here?", group=g.conv).error == ErrorCode.NOT_MEMBER
    # bob's log ends with the event that removed him
    assert w.texts("bob") == ["created", "removed"]
    assert [k for _s, k, _m, _d in w.log_of("bob")] == [UpdateKind.MESSAGE] * 2
