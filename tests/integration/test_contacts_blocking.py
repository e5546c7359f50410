"""Contacts, blocking, profiles and privacy against a real server."""

from __future__ import annotations

import asyncio

from liaotian.protocol import Error, ErrorCode, Send, Sent, UpdateKind
from liaotian.protocol.social import (
    Block,
    ContactAccept,
    ContactCancel,
    ContactDecline,
    ContactRemove,
    ContactRequest,
    GetPresence,
    GetPrivacy,
    GetProfile,
    GroupAdd,
    GroupCreate,
    Ok,
    PresenceList,
    Privacy,
    Profile,
    SetPrivacy,
    SetProfile,
    TypingNotice,
    Unblock,
)
from socialclient import SocialClient, make_contacts, social_server


async def contact_entry(c: SocialClient) -> dict:
    upd = await c.entry(UpdateKind.CONTACT)
    return upd.data


async def lists(c: SocialClient) -> tuple[tuple[str, ...], ...]:
    cl = await c.contacts()
    return cl.contacts, cl.incoming, cl.outgoing, cl.blocked


async def visible_presence(c: SocialClient, *users: str) -> list[str]:
    pl = await c.get(GetPresence, PresenceList, users=users)
    return [p.user for p in pl.presence]


NONE: tuple[str, ...] = ()


# --------------------------------------------------------------------------- contacts


async def test_request_and_accept(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        await net.register("alice", "bob")
        alice = await net.user("alice")
        b1, b2 = await net.user("bob", "d1"), await net.user("bob", "d2")

        await alice.ok(ContactRequest, user="bob")
        for b in (b1, b2):
            assert await contact_entry(b) == {"event": "request", "user": "alice"}
        assert await contact_entry(alice) == {"event": "changed", "user": "bob"}
        assert await lists(alice) == (NONE, NONE, ("bob",), NONE)
        assert await lists(b2) == (NONE, ("alice",), NONE, NONE)

        await alice.ok(ContactRequest, user="bob")  # already pending: OK, nothing new
        for c in (alice, b1, b2):
            await c.assert_no_push()

        await b2.ok(ContactAccept, user="alice")
        assert await contact_entry(alice) == {"event": "accepted", "user": "bob"}
        for b in (b1, b2):  # the actor's own log: its other devices refresh the list
            assert await contact_entry(b) == {"event": "changed", "user": "alice"}
        assert await lists(alice) == (("bob",), NONE, NONE, NONE)
        assert await lists(b1) == (("alice",), NONE, NONE, NONE)

        await alice.fail(ContactRequest, ErrorCode.CONFLICT, user="bob")  # already contacts
        await b1.fail(ContactAccept, ErrorCode.CONFLICT, user="alice")  # nothing to accept
        for c in (alice, b1, b2):
            await c.assert_no_push()
        # a device that syncs later finds the same story in the log
        log = [u.data for u in await alice.log_entries() if u.kind == UpdateKind.CONTACT]
        assert log == [{"event": "changed", "user": "bob"}, {"event": "accepted", "user": "bob"}]


async def test_crossing_requests_become_contacts(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        carol, dave, erin, fred = await net.users("carol", "dave", "erin", "fred")
        await carol.ok(ContactRequest, user="dave")
        await dave.ok(ContactRequest, user="carol")  # dave asks back: that is an accept
        assert await contact_entry(dave) == {"event": "request", "user": "carol"}
        assert await contact_entry(dave) == {"event": "changed", "user": "carol"}
        assert await contact_entry(carol) == {"event": "changed", "user": "dave"}
        assert await contact_entry(carol) == {"event": "accepted", "user": "dave"}
        assert await lists(carol) == (("dave",), NONE, NONE, NONE)
        assert await lists(dave) == (("carol",), NONE, NONE, NONE)

        # truly simultaneous requests also end as contacts, whatever the order
        r1 = ContactRequest(rid=erin.rid(), user="fred")
        r2 = ContactRequest(rid=fred.rid(), user="erin")
        await asyncio.gather(erin.write(r1), fred.write(r2))
        assert isinstance(await erin.answer(r1.rid), Ok)
        assert isinstance(await fred.answer(r2.rid), Ok)
        assert await lists(erin) == (("fred",), NONE, NONE, NONE)
        assert await lists(fred) == (("erin",), NONE, NONE, NONE)


async def test_decline_cancel_remove(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        alice, bob, eve, fred = await net.users("alice", "bob", "eve", "fred")
        # decline
        await eve.ok(ContactRequest, user="alice")
        await contact_entry(eve)
        await contact_entry(alice)
        await alice.ok(ContactDecline, user="eve")
        assert await contact_entry(eve) == {"event": "declined", "user": "alice"}
        assert await contact_entry(alice) == {"event": "changed", "user": "eve"}
        assert await lists(alice) == (NONE, NONE, NONE, NONE)
        assert await lists(eve) == (NONE, NONE, NONE, NONE)
        await alice.fail(ContactDecline, ErrorCode.CONFLICT, user="eve")
        await alice.fail(ContactAccept, ErrorCode.CONFLICT, user="eve")

        # cancel
        await alice.ok(ContactRequest, user="fred")
        await contact_entry(fred)
        await contact_entry(alice)
        await alice.ok(ContactCancel, user="fred")
        assert await contact_entry(fred) == {"event": "cancelled", "user": "alice"}
        assert await contact_entry(alice) == {"event": "changed", "user": "fred"}
        assert await lists(fred) == (NONE, NONE, NONE, NONE)
        assert await lists(alice) == (NONE, NONE, NONE, NONE)
        await fred.fail(ContactAccept, ErrorCode.CONFLICT, user="alice")

        # remove
        await make_contacts(alice, bob)
        await alice.ok(ContactRemove, user="bob")
        assert await contact_entry(bob) == {"event": "removed", "user": "alice"}
        assert await contact_entry(alice) == {"event": "changed", "user": "bob"}
        assert await lists(alice) == (NONE, NONE, NONE, NONE)
        assert await lists(bob) == (NONE, NONE, NONE, NONE)
        await bob.fail(ContactRemove, ErrorCode.CONFLICT, user="alice")
        for c in (alice, bob, eve, fred):
            await c.assert_no_push()


async def test_contact_refusals(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        (alice,) = await net.users("alice")
        await net.register("bob")
        for cls in (
            ContactRequest,
            ContactAccept,
            ContactDecline,
            ContactCancel,
            ContactRemove,
            Block,
            Unblock,
        ):
            await alice.fail(cls, ErrorCode.CONFLICT, user="alice")  # oneself
        await alice.fail(ContactAccept, ErrorCode.CONFLICT, user="bob")
        await alice.fail(ContactDecline, ErrorCode.CONFLICT, user="bob")
        await alice.fail(ContactRemove, ErrorCode.CONFLICT, user="bob")
        for cls in (
            ContactRequest,
            ContactAccept,
            ContactDecline,
            ContactCancel,
            ContactRemove,
            Block,
            Unblock,
            GetProfile,
        ):
            await alice.fail(cls, ErrorCode.UNKNOWN_USER, user="ghost")
        await alice.assert_no_push()
        assert await lists(alice) == (NONE, NONE, NONE, NONE)


async def test_cancel_without_a_request_is_ok_and_changes_nothing(tmp_path) -> None:
    # SPEC 22.5.4: OK also when nothing is pending (social.md said 3008; SPEC.md rules)
    async with social_server(tmp_path) as net:
        alice, bob = await net.users("alice", "bob")
        await alice.ok(ContactCancel, user="bob")
        for c in (alice, bob):
            await c.assert_no_push()
            assert await lists(c) == (NONE, NONE, NONE, NONE)
        await alice.fail(ContactCancel, ErrorCode.CONFLICT, user="alice")
        await alice.fail(ContactCancel, ErrorCode.UNKNOWN_USER, user="ghost")


# --------------------------------------------------------------------------- blocking


async def test_block_refusal_is_indistinguishable_from_contacts_only(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        alice, bob, carol = await net.users("alice", "bob", "carol")
        await bob.ok(Block, user="alice")
        assert await contact_entry(bob) == {"event": "changed", "user": "alice"}
        await bob.ok(Block, user="alice")  # idempotent
        await carol.ok(SetPrivacy, messages="contacts")

        blocked = await alice.fail(Send, ErrorCode.NOT_ALLOWED, to="bob", cmid="b", text="hi")
        private = await alice.fail(Send, ErrorCode.NOT_ALLOWED, to="carol", cmid="c", text="hi")
        assert isinstance(blocked, Error) and isinstance(private, Error)
        assert (blocked.code, blocked.message, blocked.retry_after, blocked.data) == (
            private.code,
            private.message,
            private.retry_after,
            private.data,
        )
        for c in (alice, bob, carol):
            await c.assert_no_push()  # the blocked user is told nothing, nothing delivered
        assert (await bob.history("alice")).messages == ()
        assert await lists(alice) == (NONE, NONE, NONE, NONE)
        assert await lists(bob) == (NONE, NONE, NONE, ("alice",))

        # the other direction is not blocked: bob may still write to alice
        await bob.send("alice", "one way")
        await alice.entry(UpdateKind.MESSAGE)

        # contacts-only admits contacts
        await make_contacts(alice, carol)
        s = await alice.send("carol", "now allowed")
        assert (await carol.message()).id == s.id

        # unblock restores sending (the contact relation is not restored)
        await bob.ok(Unblock, user="alice")
        assert await contact_entry(bob) == {"event": "changed", "user": "alice"}
        await bob.ok(Unblock, user="alice")  # idempotent
        s = await alice.send("bob", "hello again")
        assert (await bob.message()).id == s.id
        assert await lists(bob) == (NONE, NONE, NONE, NONE)


async def test_block_drops_contact_requests_silently(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        alice, bob = await net.users("alice", "bob")
        await bob.ok(Block, user="alice")
        await contact_entry(bob)
        await alice.ok(ContactRequest, user="bob")  # OK: alice cannot tell
        await bob.assert_no_push()
        assert await lists(bob) == (NONE, NONE, NONE, ("alice",))
        await bob.fail(ContactAccept, ErrorCode.CONFLICT, user="alice")


async def test_blocked_requester_cannot_tell(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        alice, bob, carol = await net.users("alice", "bob", "carol")
        await bob.ok(Block, user="alice")
        await contact_entry(bob)
        await alice.ok(ContactRequest, user="carol")  # an ordinary request, for comparison
        assert await contact_entry(alice) == {"event": "changed", "user": "carol"}
        assert await contact_entry(carol) == {"event": "request", "user": "alice"}
        await alice.ok(ContactRequest, user="bob")
        # what alice sees is what she sees for the ordinary request...
        assert await contact_entry(alice) == {"event": "changed", "user": "bob"}
        assert await lists(alice) == (NONE, NONE, ("bob", "carol"), NONE)
        await alice.ok(ContactRequest, user="bob")  # "already pending", as for anyone
        await alice.assert_no_push()
        # ...while bob sees nothing at all
        await bob.assert_no_push()
        assert await lists(bob) == (NONE, NONE, NONE, ("alice",))
        # withdrawing it works as usual, and bob still hears nothing
        await alice.ok(ContactCancel, user="bob")
        assert await contact_entry(alice) == {"event": "changed", "user": "bob"}
        assert await lists(alice) == (NONE, NONE, ("carol",), NONE)
        await bob.assert_no_push()
        # one may not ask someone one has blocked (unblock first)
        await bob.fail(ContactRequest, ErrorCode.CONFLICT, user="alice")


async def test_dropped_request_is_delivered_on_unblock_and_leaves_nothing_behind(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        alice, bob = await net.users("alice", "bob")
        await bob.ok(Block, user="alice")
        await alice.ok(ContactRequest, user="bob")  # dropped: only alice's side lists it
        assert await lists(alice) == (NONE, NONE, ("bob",), NONE)
        assert await lists(bob) == (NONE, NONE, NONE, ("alice",))
        await bob.ok(Unblock, user="alice")  # the pending request arrives now (SPEC 22)
        assert await lists(bob) == (NONE, ("alice",), NONE, NONE)
        await bob.ok(ContactRequest, user="alice")  # she asked first: this accepts
        assert await lists(alice) == (("bob",), NONE, NONE, NONE)
        await net.close_all()
        await net.srv.restart()
        alice = await net.user("alice")
        bob = await net.user("bob")
        assert await lists(bob) == (("alice",), NONE, NONE, NONE)
        assert await lists(alice) == (("bob",), NONE, NONE, NONE)


async def test_block_removes_contact_and_pending_requests_both_ways(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        alice, bob, dave, erin = await net.users("alice", "bob", "dave", "erin")
        await make_contacts(alice, bob)
        await dave.ok(ContactRequest, user="bob")
        await bob.ok(ContactRequest, user="erin")
        await bob.ok(Block, user="alice")
        await bob.ok(Block, user="dave")
        await bob.ok(Block, user="erin")
        assert await lists(bob) == (NONE, NONE, NONE, ("alice", "dave", "erin"))
        for c in (alice, dave, erin):
            assert await lists(c) == (NONE, NONE, NONE, NONE)
        # blocking is silent: alice got only what make_contacts produced, dave only his
        # own "changed", erin only bob's request
        await alice.assert_no_push()
        assert await contact_entry(dave) == {"event": "changed", "user": "bob"}
        await dave.assert_no_push()
        assert await contact_entry(erin) == {"event": "request", "user": "bob"}
        await erin.assert_no_push()
        # unblocking restores none of it
        await bob.ok(Unblock, user="alice")
        assert await lists(bob) == (NONE, NONE, NONE, ("dave", "erin"))
        assert await lists(alice) == (NONE, NONE, NONE, NONE)


async def test_blocked_user_loses_presence_and_profile(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        alice, bob, carol = await net.users("alice", "bob", "carol")
        await bob.ok(SetPrivacy, presence="everyone")
        await bob.ok(SetProfile, display_name="Bob", status="here")
        assert await visible_presence(alice, "bob", "carol") == ["bob"]
        assert (await alice.get(GetProfile, Profile, user="bob")).display_name == "Bob"

        await bob.ok(Block, user="alice")
        assert await visible_presence(alice, "bob", "carol") == []
        await alice.fail(GetProfile, ErrorCode.NOT_ALLOWED, user="bob")
        # others are unaffected, and bob still sees alice (profile default everyone)
        assert await visible_presence(carol, "bob") == ["bob"]
        assert (await carol.get(GetProfile, Profile, user="bob")).status == "here"
        assert (await bob.get(GetProfile, Profile, user="alice")).user == "alice"

        await bob.ok(Unblock, user="alice")
        assert await visible_presence(alice, "bob") == ["bob"]
        assert (await alice.get(GetProfile, Profile, user="bob")).display_name == "Bob"


async def test_typing_from_blocked_user_is_dropped(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        alice, bob, carol = await net.users("alice", "bob", "carol")
        await bob.ok(Block, user="alice")
        await contact_entry(bob)
        await carol.ok(SetPrivacy, messages="contacts")
        await alice.typing(True, to="bob")  # dropped: blocked
        await alice.typing(True, to="carol")  # dropped: contacts only
        await alice.assert_no_push()  # no error either: alice cannot tell
        await bob.ok(Unblock, user="alice")
        await contact_entry(bob)
        await alice.typing(False, to="bob")
        # the first notice bob ever sees is the one sent after the unblock
        notice = await bob.push_of(TypingNotice)
        assert (notice.user, notice.typing, notice.group) == ("alice", False, None)
        await bob.assert_no_push()
        await carol.assert_no_push()


async def test_blocked_user_cannot_add_the_blocker_to_a_group(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        alice, bob, carol = await net.users("alice", "bob", "carol")
        await bob.ok(Block, user="alice")
        await contact_entry(bob)
        await alice.fail(GroupCreate, ErrorCode.NOT_ALLOWED, name="g", members=("bob",))
        g = (await alice.create_group("mine", ["carol"])).group
        await alice.fail(GroupAdd, ErrorCode.NOT_ALLOWED, group=g, users=("bob",))
        await bob.assert_no_push()
        # a group made by someone else may hold both; there, alice's messages reach bob
        shared = (await carol.create_group("shared", ["alice", "bob"])).group
        await bob.event("created")
        s = await alice.gsend(shared, "in the group")
        m = await bob.message()
        assert (m.id, m.sender, m.text) == (s.id, "alice", "in the group")
        await alice.typing(True, group=shared)  # nor are typing notices in a group
        n = await bob.push_of(TypingNotice)
        assert (n.user, n.group) == ("alice", shared)


# --------------------------------------------------------------------------- profiles, privacy


async def test_profiles(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        alice, bob = await net.users("alice", "bob")
        p = await bob.get(GetProfile, Profile, user="alice")
        assert (p.user, p.display_name, p.status) == ("alice", "", "")
        await alice.ok(SetProfile, display_name="Alice A.", status="busy")
        p = await bob.get(GetProfile, Profile, user="alice")
        assert (p.user, p.display_name, p.status) == ("alice", "Alice A.", "busy")
        await alice.ok(SetProfile, status="free")  # fields left out stay as they were
        p = await alice.get(GetProfile, Profile, user="alice")
        assert (p.display_name, p.status) == ("Alice A.", "free")
        await alice.ok(SetProfile, display_name="")
        assert (await bob.get(GetProfile, Profile, user="alice")).display_name == ""
        await alice.fail(SetProfile, ErrorCode.INVALID_FIELD, display_name="x" * 65)
        await alice.fail(SetProfile, ErrorCode.INVALID_FIELD, status="x" * 257)
        await alice.ok(SetProfile, display_name="x" * 64, status="y" * 256)
        await bob.fail(GetProfile, ErrorCode.UNKNOWN_USER, user="ghost")


async def test_profile_privacy(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        alice, bob, carol = await net.users("alice", "bob", "carol")
        await make_contacts(alice, carol)
        await alice.ok(SetProfile, display_name="A", status="s")
        await alice.ok(SetPrivacy, profile="contacts")
        await bob.fail(GetProfile, ErrorCode.NOT_ALLOWED, user="alice")
        assert (await carol.get(GetProfile, Profile, user="alice")).display_name == "A"
        assert (await alice.get(GetProfile, Profile, user="alice")).display_name == "A"
        await alice.ok(SetPrivacy, profile="nobody")
        await bob.fail(GetProfile, ErrorCode.NOT_ALLOWED, user="alice")
        await carol.fail(GetProfile, ErrorCode.NOT_ALLOWED, user="alice")
        assert (await alice.get(GetProfile, Profile, user="alice")).status == "s"  # own: always
        await alice.ok(SetPrivacy, profile="everyone")
        assert (await bob.get(GetProfile, Profile, user="alice")).status == "s"


async def test_privacy_defaults_and_partial_updates(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        (alice,) = await net.users("alice")

        async def privacy() -> tuple[str, str, str]:
            p = await alice.get(GetPrivacy, Privacy)
            return p.presence, p.profile, p.messages

        assert await privacy() == ("contacts", "everyone", "everyone")
        await alice.ok(SetPrivacy, messages="contacts")
        assert await privacy() == ("contacts", "everyone", "contacts")
        await alice.ok(SetPrivacy, presence="nobody", profile="contacts")
        assert await privacy() == ("nobody", "contacts", "contacts")
        await alice.ok(SetPrivacy)  # nothing to change
        assert await privacy() == ("nobody", "contacts", "contacts")
        await alice.fail(SetPrivacy, ErrorCode.INVALID_FIELD, messages="nobody")
        await alice.fail(SetPrivacy, ErrorCode.INVALID_FIELD, presence="friends")
        assert await privacy() == ("nobody", "contacts", "contacts")
        # settings survive a new session
        await alice.close()
        alice = await net.user("alice", "d2")
        assert await privacy() == ("nobody", "contacts", "contacts")


async def test_contacts_only_privacy_refuses_non_contacts_until_they_are_contacts(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        alice, bob = await net.users("alice", "bob")
        await bob.ok(SetPrivacy, messages="contacts")
        await alice.fail(Send, ErrorCode.NOT_ALLOWED, to="bob", cmid="first", text="hi")
        await make_contacts(alice, bob)
        sent = await alice.send("bob", "hi")
        assert isinstance(sent, Sent)
        assert (await bob.message()).id == sent.id
        await bob.ok(ContactRemove, user="alice")
        await alice.fail(Send, ErrorCode.NOT_ALLOWED, to="bob", cmid="again", text="hi")
