"""Contacts, blocking and privacy rules (chat/rules/contacts.py) on a tiny in-memory plan."""

from __future__ import annotations

from chatworld import World
from liaotian.protocol import ErrorCode, UpdateKind
from liaotian.server.chat.model import VIS_CONTACTS, VIS_EVERYONE, VIS_NOBODY, Social
from liaotian.server.chat.ops import (
    AcceptContact,
    BlockUser,
    CancelContact,
    DeclineContact,
    RemoveContact,
    RequestContact,
    SetPrivacy,
    UnblockUser,
)
from liaotian.server.chat.rules.contacts import shows


def contact_events(w: World, name: str) -> list[tuple[str, str]]:
    return [(e["event"], e["user"]) for e in w.entries(name, UpdateKind.CONTACT)]


def test_request_and_accept() -> None:
    w = World()
    a, b = w.users("alice", "bob")
    assert w.apply(RequestContact(actor=a, user="bob")).error is None
    assert w.social[b].incoming == {a} and w.social[a].outgoing == {b}
    assert contact_events(w, "bob") == [("request", "alice")]
    assert w.apply(AcceptContact(actor=b, user="alice")).error is None
    assert w.social[a].contacts == {b} and w.social[b].contacts == {a}
    assert not (w.social[a].outgoing or w.social[b].incoming)
    assert contact_events(w, "alice") == [("changed", "bob"), ("accepted", "bob")]


def test_crossing_requests_become_contacts() -> None:
    w = World()
    a, b = w.users("alice", "bob")
    w.apply(RequestContact(actor=a, user="bob"))
    w.apply(RequestContact(actor=b, user="alice"))  # an accept
    assert w.social[a].contacts == {b} and w.social[b].contacts == {a}


def test_a_request_to_someone_who_blocked_you_is_silently_dropped() -> None:
    w = World()
    a, b = w.users("alice", "mallory")
    w.apply(BlockUser(actor=a, user="mallory"))
    op = w.apply(RequestContact(actor=b, user="alice"))
    assert op.error is None  # mallory cannot tell
    assert w.social[b].outgoing == {a} and w.social[a].incoming == set()
    assert contact_events(w, "alice") == [("changed", "mallory")]  # only alice's own block
    # lifting the block delivers it, as if it had been in transit
    w.apply(UnblockUser(actor=a, user="mallory"))
    assert w.social[a].incoming == {b}
    assert contact_events(w, "alice")[-1] == ("request", "mallory")


def test_blocking_ends_a_contact_and_requests_both_ways() -> None:
    w = World()
    a, b = w.users("alice", "bob")
    w.apply(RequestContact(actor=a, user="bob"))
    w.apply(AcceptContact(actor=b, user="alice"))
    w.apply(BlockUser(actor=b, user="alice"))
    assert w.social[b].blocked == {a}
    assert not (w.social[a].contacts or w.social[b].contacts)
    assert contact_events(w, "alice") == [("changed", "bob"), ("accepted", "bob")]  # told nothing


def test_refusals() -> None:
    w = World()
    a, _b = w.users("alice", "bob")
    assert w.apply(RequestContact(actor=a, user="nobody")).error == ErrorCode.UNKNOWN_USER
    assert w.apply(RequestContact(actor=a, user="alice")).error == ErrorCode.CONFLICT
    assert w.apply(AcceptContact(actor=a, user="bob")).error == ErrorCode.CONFLICT
    assert w.apply(DeclineContact(actor=a, user="bob")).error == ErrorCode.CONFLICT
    assert w.apply(RemoveContact(actor=a, user="bob")).error == ErrorCode.CONFLICT
    assert w.apply(CancelContact(actor=a, user="bob")).error is None  # idempotent
    w.apply(BlockUser(actor=a, user="bob"))
    assert w.apply(RequestContact(actor=a, user="bob")).error == ErrorCode.CONFLICT


def test_decline_and_cancel_tell_the_other_side() -> None:
    w = World()
    a, b = w.users("alice", "bob")
    w.apply(RequestContact(actor=a, user="bob"))
    w.apply(DeclineContact(actor=b, user="alice"))
    assert contact_events(w, "alice")[-1] == ("declined", "bob")
    assert not w.social[a].outgoing
    w.apply(RequestContact(actor=a, user="bob"))
    w.apply(CancelContact(actor=a, user="bob"))
    assert contact_events(w, "bob")[-1] == ("cancelled", "alice")
    assert not w.social[b].incoming


def test_privacy_settings_and_who_sees_what() -> None:
    w = World()
    a, _b = w.users("alice", "bob")
    w.apply(SetPrivacy(actor=a, presence="nobody", profile="contacts"))
    s = w.social[a]
    assert (s.presence, s.profile, s.messages) == (VIS_NOBODY, VIS_CONTACTS, VIS_EVERYONE)
    owner = Social(contacts={2}, blocked={3})
    assert shows(owner, VIS_EVERYONE, 9) and not shows(owner, VIS_EVERYONE, 3)
    assert shows(owner, VIS_CONTACTS, 2) and not shows(owner, VIS_CONTACTS, 9)
    assert not shows(owner, VIS_NOBODY, 2)
