"""Presence (coalesced pushes to contacts, GET_PRESENCE visibility) and typing notices
against a real server.

"Nothing arrived" is always decided by order, never by waiting: a presence publication
writes to every recipient in one pass, so once one recipient has its PRESENCE, a PING
answered afterwards on another connection proves that connection was sent none. Where no
recipient exists to wait for, the test calls PresenceService.publish itself (with the
periodic publication an hour away) and checks after it returns.
"""

from __future__ import annotations

from liaotian.protocol import Error, ErrorCode
from liaotian.protocol.social import (
    Block,
    GetPresence,
    Presence,
    PresenceList,
    SetPrivacy,
    TypingNotice,
)
from liaotian.protocol.social import Typing as TypingMsg
from socialclient import Net, SocialClient, make_contacts, social_server


async def publish(net: Net, *names: str) -> None:
    """Run one coalesced presence publication for these users, now."""
    assert net.srv.server is not None
    await net.srv.server.presence.publish({await net.uid(n) for n in names})


async def presence_push(c: SocialClient) -> Presence:
    return await c.push_of(Presence)


async def presence_of(c: SocialClient, *users: str) -> dict[str, tuple[bool, int]]:
    pl = await c.get(GetPresence, PresenceList, users=users)
    return {p.user: (p.online, p.last_seen) for p in pl.presence}


# --------------------------------------------------------------------------- presence pushes


async def test_contact_sees_online_and_offline(tmp_path) -> None:
    async with social_server(tmp_path) as net:  # set-up, with no presence publication
        alice, bob, _carol = await net.users("alice", "bob", "carol")
        await make_contacts(alice, bob)
    async with social_server(tmp_path, presence_interval=0.2) as net:
        bob = await net.user("bob")
        carol = await net.user("carol")  # online, but not alice's contact
        alice = await net.user("alice")
        p = await presence_push(bob)
        assert (p.user, p.online) == ("alice", True)
        await carol.assert_no_push()  # published in the same pass as bob's: she got none

        t0 = await alice.server_ms()
        await alice.close_gracefully()
        p = await presence_push(bob)
        assert (p.user, p.online) == ("alice", False)
        assert p.last_seen >= t0 and p.last_seen > 0
        await carol.assert_no_push()
        await bob.assert_no_push()
        assert (await presence_of(bob, "alice"))["alice"] == (False, p.last_seen)

        # with two devices, alice is online until the last one closes
        a1 = await net.user("alice", "d1")
        assert (await presence_push(bob)).online is True
        a2 = await net.user("alice", "d2")
        await a1.close_gracefully()
        await publish(net, "alice")  # what the next periodic pass would see
        await bob.assert_no_push()
        assert (await presence_of(bob, "alice"))["alice"][0] is True
        await a2.close_gracefully()
        p = await presence_push(bob)
        assert (p.user, p.online) == ("alice", False)


async def test_flap_within_the_interval_publishes_nothing(tmp_path) -> None:
    async with social_server(tmp_path) as net:  # periodic publication an hour away
        alice, bob = await net.users("alice", "bob")
        await make_contacts(alice, bob)
        await publish(net, "alice", "bob")
        assert (await presence_push(bob)).user == "alice"
        assert (await presence_push(alice)).user == "bob"

        await alice.close_gracefully()  # offline...
        alice = await net.user("alice")  # ...and back before the next publication
        await publish(net, "alice")
        await bob.assert_no_push()

        await alice.close_gracefully()  # a real change is published
        await publish(net, "alice")
        gone = await presence_push(bob)
        assert (gone.user, gone.online) == ("alice", False) and gone.last_seen > 0
        alice = await net.user("alice")
        await publish(net, "alice")
        p = await presence_push(bob)
        # online again: last_seen keeps the time of the previous disconnection
        assert (p.user, p.online, p.last_seen) == ("alice", True, gone.last_seen)
        assert (await presence_of(bob, "alice"))["alice"] == (True, gone.last_seen)
        await bob.assert_no_push()


async def test_presence_push_after_restart_keeps_the_stored_last_seen(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        alice, bob = await net.users("alice", "bob")
        await make_contacts(alice, bob)
        await alice.close_gracefully()  # last_seen is stored with the next commit
        await bob.barrier()
    async with social_server(tmp_path) as net:  # a new server process, same database
        bob = await net.user("bob")
        seen = (await presence_of(bob, "alice"))["alice"]
        assert seen[0] is False and seen[1] > 0
        alice = await net.user("alice")
        await publish(net, "alice")
        p = await presence_push(bob)
        assert (p.user, p.online) == ("alice", True)
        assert (await presence_of(bob, "alice"))["alice"] == (True, seen[1])
        assert p.last_seen == seen[1]


async def test_presence_pushes_respect_privacy_and_blocking(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        alice, bob, carol, dave, erin = await net.users("alice", "bob", "carol", "dave", "erin")
        for c in (bob, carol, dave):
            await make_contacts(alice, c)
        await publish(net, "alice", "bob", "carol", "dave", "erin")
        for c in (bob, carol, dave):
            assert (await presence_push(c)).user == "alice"
        for _ in range(3):
            await presence_push(alice)

        # nobody: no pushes at all, not even to contacts
        await alice.ok(SetPrivacy, presence="nobody")
        await alice.close_gracefully()
        await publish(net, "alice")
        for c in (bob, carol, dave, erin):
            await c.assert_no_push()

        # everyone: still only contacts get pushes; a block (either way) ends them
        alice = await net.user("alice")
        await alice.ok(SetPrivacy, presence="everyone")
        await dave.ok(Block, user="alice")
        await dave.entry()  # "changed", in dave's own log
        await alice.ok(Block, user="carol")
        await publish(net, "alice")
        p = await presence_push(bob)
        assert (p.user, p.online) == ("alice", True)
        for c in (carol, dave, erin):
            await c.assert_no_push()
        await alice.close_gracefully()
        await publish(net, "alice")
        p = await presence_push(bob)
        assert (p.user, p.online) == ("alice", False)
        for c in (carol, dave, erin):
            await c.assert_no_push()


async def test_get_presence_visibility(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        alice, bob, carol, dave, erin, frank = await net.users(
            "alice", "bob", "carol", "dave", "erin", "frank"
        )
        await make_contacts(alice, bob)
        await make_contacts(erin, bob)
        await dave.ok(SetPrivacy, presence="everyone")
        await erin.ok(SetPrivacy, presence="nobody")
        await frank.ok(SetPrivacy, presence="everyone")
        await frank.close_gracefully()

        asked = ("alice", "carol", "dave", "erin", "ghost", "bob", "frank", "alice")
        pl = await bob.get(GetPresence, PresenceList, users=asked)
        # only the visible ones, in the order asked, each once
        assert [p.user for p in pl.presence] == ["alice", "dave", "bob", "frank"]
        seen = {p.user: (p.online, p.last_seen) for p in pl.presence}
        assert seen["alice"] == (True, 0) and seen["dave"] == (True, 0)
        assert seen["bob"] == (True, 0)  # yourself: always
        assert seen["frank"][0] is False and seen["frank"][1] > 0

        # contacts-only presence: a non-contact sees nothing; nobody: not even contacts
        assert await presence_of(carol, "alice", "erin", "dave") == {"dave": (True, 0)}
        assert "erin" in await presence_of(erin, "erin")
        await dave.ok(Block, user="carol")
        assert await presence_of(carol, "dave") == {}
        assert "dave" in await presence_of(alice, "dave")

        await bob.fail(GetPresence, ErrorCode.INVALID_FIELD, users=())
        await bob.fail(
            GetPresence, ErrorCode.INVALID_FIELD, users=tuple(f"user{i}" for i in range(101))
        )
        assert (
            len(
                (
                    await bob.get(
                        GetPresence, PresenceList, users=tuple(f"user{i}" for i in range(100))
                    )
                ).presence
            )
            == 0
        )


# --------------------------------------------------------------------------- typing


async def test_typing_reaches_the_peer_not_the_typist(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        await net.register("alice", "bob", "carol")
        a1, a2 = await net.user("alice", "d1"), await net.user("alice", "d2")
        b1, b2 = await net.user("bob", "d1"), await net.user("bob", "d2")
        carol = await net.user("carol")
        await a1.typing(True, to="bob")
        for b in (b1, b2):
            n = await b.push_of(TypingNotice)
            assert (n.user, n.typing, n.ttl, n.group) == ("alice", True, 6.0, None)
        for c in (a1, a2, carol):
            await c.assert_no_push()
        await a2.typing(False, to="bob")
        for b in (b1, b2):
            n = await b.push_of(TypingNotice)
            assert (n.user, n.typing) == ("alice", False)
        await a1.typing(True, to="alice")  # to oneself: dropped silently
        for c in (a1, a2, b1, b2, carol):
            await c.assert_no_push()
        # never stored: nothing in anyone's log
        for c in (b1, a1):
            assert await c.log_entries() == []
        for c in (a1, a2, b1, b2, carol):
            await c.assert_no_push()


async def test_typing_ttl_is_the_configured_one(tmp_path) -> None:
    async with social_server(tmp_path, typing_ttl=2.5) as net:
        alice, bob = await net.users("alice", "bob")
        await alice.typing(True, to="bob")
        assert (await bob.push_of(TypingNotice)).ttl == 2.5


async def test_group_typing_reaches_the_other_members(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        alice, bob, carol, dave = await net.users("alice", "bob", "carol", "dave")
        g = (await alice.create_group("team", ["bob", "carol"])).group
        for c in (alice, bob, carol):
            await c.event("created")
        await alice.typing(True, group=g)
        for c in (bob, carol):
            n = await c.push_of(TypingNotice)
            assert (n.user, n.typing, n.ttl, n.group) == ("alice", True, 6.0, g)
        for c in (alice, dave):
            await c.assert_no_push()

        for group in (g, 424_242):  # not a member, or no such group: the same answer
            await dave.typing(True, group=group)
            err = await dave.push_of(Error)
            assert err.code == ErrorCode.NOT_MEMBER and err.rid == 0
        for c in (alice, bob, carol, dave):
            await c.assert_no_push()


async def test_typing_refusals_come_with_rid_0(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        alice, bob = await net.users("alice", "bob")
        g = (await alice.create_group("team", ["bob"])).group
        await alice.event("created")
        await bob.event("created")
        cases = [
            ({}, ErrorCode.INVALID_FIELD),  # neither to nor group
            ({"to": "bob", "group": g}, ErrorCode.INVALID_FIELD),  # both
            ({"to": "ghost"}, ErrorCode.UNKNOWN_USER),
        ]
        for fields, code in cases:
            await alice.write_raw(TypingMsg(rid=0, typing=True, **fields).encode())
            err = await alice.push_of(Error)
            assert (err.code, err.rid) == (code, 0), fields
        await alice.assert_no_push()
        await bob.assert_no_push()
        # the connection is still fine
        await alice.typing(True, to="bob")
        assert (await bob.push_of(TypingNotice)).user == "alice"


async def test_typing_rate_limit_per_conversation_and_user(tmp_path) -> None:
    async with social_server(tmp_path, typing_rate=2.0, typing_burst=3.0) as net:
        await net.register("alice", "bob", "carol")
        a1, a2 = await net.user("alice", "d1"), await net.user("alice", "d2")
        bob, carol = await net.user("bob"), await net.user("carol")
        burst = b"".join(TypingMsg(rid=0, typing=True, to="bob").encode() for _ in range(4))
        await a1.write_raw(burst)  # four at once: one above the burst
        err = await a1.push_of(Error)
        assert (err.code, err.rid) == (ErrorCode.RATE_LIMITED, 0)
        assert err.retry_after is not None and 0 < err.retry_after <= 0.5
        for _ in range(3):
            n = await bob.push_of(TypingNotice)
            assert n.user == "alice"
        await bob.assert_no_push()
        await a1.assert_no_push()
        # the limit is per conversation...
        await a1.typing(True, to="carol")
        assert (await carol.push_of(TypingNotice)).user == "alice"
        # ...and per user: another connection of alice's gets no budget of its own (issue 11
        # item 26)
        await a2.typing(True, to="bob")
        err = await a2.push_of(Error)
        assert (err.code, err.rid) == (ErrorCode.RATE_LIMITED, 0)
        for c in (a1, a2, bob, carol):
            await c.assert_no_push()
        # the rate is checked before membership (SPEC 20.3)
        burst = b"".join(TypingMsg(rid=0, typing=True, group=777).encode() for _ in range(4))
        await carol.write_raw(burst)
        codes = [(await carol.push_of(Error)).code for _ in range(4)]
        # (the refusals need not arrive in order: membership is looked up, the rate is not)
        assert sorted(codes) == [ErrorCode.NOT_MEMBER] * 3 + [ErrorCode.RATE_LIMITED]
        await carol.assert_no_push()


async def test_typing_buckets_are_an_lru_not_cleared_wholesale(tmp_path) -> None:
    """Typing to many other conversations does not reset a conversation in use (item 26):
    a recently used bucket survives while older ones are evicted one at a time."""
    async with social_server(tmp_path, typing_rate=0.001, typing_burst=1.0) as net:
        await net.register("alice", "bob")
        alice, bob = await net.user("alice"), await net.user("bob")
        await alice.typing(True, to="bob")
        assert (await bob.push_of(TypingNotice)).user == "alice"
        for round_ in range(2):  # 2 x 200 other keys: more than the 256 kept per user
            await alice.write_raw(
                b"".join(
                    TypingMsg(rid=0, typing=True, to=f"nobody{round_}x{i}").encode()
                    for i in range(200)
                )
            )
            for _ in range(200):
                assert (await alice.push_of(Error)).code == ErrorCode.UNKNOWN_USER
            await alice.typing(True, to="bob")  # used again: still limited, kept recent
            err = await alice.push_of(Error)
            assert (err.code, err.rid) == (ErrorCode.RATE_LIMITED, 0)
        await bob.assert_no_push()
