"""Privacy of read and delivered positions (SPEC.md 18.5), over real sockets.

A user's positions are shown to the viewers their privacy `receipts` allows (default:
contacts); delivered positions also need their `presence` privacy to allow the viewer; a
user who blocked the viewer shows nothing. Hidden positions are answered as 0 and READ
entries are not appended to the viewer's log. Each test has a control viewer for whom the
positions do move, so a 0 cannot come from a position that simply did not move yet.
"""

from __future__ import annotations

from liaotian.protocol import Ack, ErrorCode, UpdateKind
from liaotian.protocol.social import (
    Block,
    GetPrivacy,
    GetReceipts,
    Privacy,
    Read,
    Receipts,
    SetPrivacy,
    Unblock,
)
from socialclient import SocialClient, make_contacts, social_server


async def positions(c: SocialClient, conv: int) -> tuple[dict[str, int], dict[str, int]]:
    """(read, delivered) of GET_RECEIPTS, by username."""
    r = await c.get(GetReceipts, Receipts, conv=conv)
    return {m.user: m.pos for m in r.read}, {m.user: m.pos for m in r.delivered}


async def ack_all(c: SocialClient, n: int) -> None:
    """Take the next n pushed entries and ACK the last; the ACK is in when PING answers."""
    got = await c.entries(n)
    await c.write(Ack(rid=0, seq=got[-1].seq))
    await c.barrier()


async def test_stranger_sees_delivered_and_read_stay_0_while_a_contact_sees_them_move(
    tmp_path,
) -> None:
    """The issue's case: bob (presence "nobody") got a message from a stranger, his device
    syncs and reads; the stranger learns nothing, a contact who wrote too sees both move."""
    async with social_server(tmp_path) as net:
        stranger, bob, carol = await net.users("stranger", "bob", "carol")
        await make_contacts(carol, bob)
        await bob.ok(SetPrivacy, presence="nobody")
        s1 = await stranger.send("bob", "hi bob, remember me?")
        s2 = await carol.send("bob", "hi bob")
        assert await positions(stranger, s1.conv) == ({"bob": 0}, {"bob": 0})
        assert await positions(carol, s2.conv) == ({"bob": 0}, {"bob": 0})

        # a second device of bob syncs past both messages (delivered moves by `since`) ...
        log = await bob.log_entries()
        bob2 = await net.user("bob", "d2", sync=False)
        await bob2.sync(since=log[-1].seq)
        # ... presence "nobody" hides delivered from his contact too; receipts still show
        assert await positions(stranger, s1.conv) == ({"bob": 0}, {"bob": 0})
        assert await positions(carol, s2.conv) == ({"bob": 0}, {"bob": 0})
        await bob.ok(SetPrivacy, presence="contacts")
        assert await positions(carol, s2.conv) == ({"bob": 0}, {"bob": 1})  # the control
        assert await positions(stranger, s1.conv) == ({"bob": 0}, {"bob": 0})

        await bob.ok(Read, conv=s1.conv, pos=s1.pos)
        await bob.ok(Read, conv=s2.conv, pos=s2.pos)
        upd = await carol.entry(UpdateKind.READ)  # the contact learns it was read
        assert upd.data == {"conv": s2.conv, "user": "bob", "pos": s2.pos}
        await stranger.assert_no_push()  # the stranger gets no READ entry
        assert await positions(carol, s2.conv) == ({"bob": 1}, {"bob": 1})
        assert await positions(stranger, s1.conv) == ({"bob": 0}, {"bob": 0})
        log = await stranger.log_entries()
        assert [u for u in log if u.kind == UpdateKind.READ] == []


async def test_receipts_setting_everyone_and_nobody(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        alice, bob, carol = await net.users("alice", "bob", "carol")
        await make_contacts(carol, bob)
        assert (await bob.get(GetPrivacy, Privacy)).receipts == "contacts"  # the default
        s1 = await alice.send("bob", "one")
        s2 = await carol.send("bob", "two")
        await ack_all(bob, 2)

        # everyone: a stranger sees read; delivered also needs presence "everyone"
        await bob.ok(SetPrivacy, receipts="everyone")
        assert (await bob.get(GetPrivacy, Privacy)).receipts == "everyone"
        await bob.ok(Read, conv=s1.conv, pos=s1.pos)
        assert (await alice.entry(UpdateKind.READ)).data["user"] == "bob"
        assert await positions(alice, s1.conv) == ({"bob": 1}, {"bob": 0})
        await bob.ok(SetPrivacy, presence="everyone")
        assert await positions(alice, s1.conv) == ({"bob": 1}, {"bob": 1})

        # nobody: not even a contact; and READ entries stop
        await bob.ok(SetPrivacy, receipts="nobody")
        assert await positions(carol, s2.conv) == ({"bob": 0}, {"bob": 0})
        assert await positions(alice, s1.conv) == ({"bob": 0}, {"bob": 0})
        await bob.ok(Read, conv=s2.conv, pos=s2.pos)
        assert [u.kind for u in await bob.entries(2)] == [UpdateKind.READ] * 2  # his own
        await carol.assert_no_push()
        await bob.ok(SetPrivacy, receipts="contacts")
        assert await positions(carol, s2.conv) == ({"bob": 1}, {"bob": 1})

        await bob.fail(SetPrivacy, ErrorCode.INVALID_FIELD, receipts="friends")


async def test_blocked_user_gets_receipts_answered_with_0(tmp_path) -> None:
    """A user the peer blocked still gets RECEIPTS for the old direct chat (an error would
    reveal the block), with every position 0, whatever the peer's settings."""
    async with social_server(tmp_path) as net:
        alice, bob = await net.users("alice", "bob")
        await make_contacts(alice, bob)
        await bob.ok(SetPrivacy, receipts="everyone", presence="everyone")
        s1 = await alice.send("bob", "one")
        await ack_all(bob, 1)
        await bob.ok(Read, conv=s1.conv, pos=s1.pos)
        await alice.entry(UpdateKind.READ)
        assert await positions(alice, s1.conv) == ({"bob": 1}, {"bob": 1})  # the control

        await bob.ok(Block, user="alice")
        await bob.entries(2)  # bob's own READ and "changed" entries
        assert await positions(alice, s1.conv) == ({"bob": 0}, {"bob": 0})
        # bob reads more of the old chat (his own message): alice gets no READ entry
        s2 = await bob.send("alice", "last word")
        assert (await alice.message()).text == "last word"
        await bob.ok(Read, conv=s1.conv, pos=s2.pos)
        await alice.assert_no_push()
        assert await positions(alice, s1.conv) == ({"bob": 0}, {"bob": 0})
        # the other way round alice's settings decide: bob sees her positions
        await alice.ok(SetPrivacy, receipts="everyone")
        await alice.ok(Read, conv=s1.conv, pos=s2.pos)
        assert (await positions(bob, s1.conv))[0] == {"alice": s2.pos}
        # unblocked, bob's settings show his positions again
        await bob.ok(Unblock, user="alice")
        assert await positions(alice, s1.conv) == ({"bob": s2.pos}, {"bob": 1})


async def test_group_receipts_show_only_the_members_who_allow_the_viewer(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        alice, bob, carol = await net.users("alice", "bob", "carol")
        await make_contacts(alice, bob)
        await make_contacts(alice, carol)
        g = (await alice.create_group("team", ["bob", "carol"])).group
        sent = await alice.gsend(g, "read me")
        for c in (bob, carol):
            await ack_all(c, 2)  # the "created" event and the message
            await c.ok(Read, conv=g, pos=sent.pos)
        # alice is a contact of both: she sees both; bob and carol are not contacts
        assert await positions(alice, g) == ({"bob": 2, "carol": 2}, {"bob": 2, "carol": 2})
        assert await positions(bob, g) == ({"alice": 0, "carol": 0}, {"alice": 0, "carol": 0})
        await carol.ok(SetPrivacy, receipts="everyone")
        assert (await positions(bob, g))[0] == {"alice": 0, "carol": 2}


async def test_receipts_setting_survives_a_restart(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        alice, bob = await net.users("alice", "bob")
        await make_contacts(alice, bob)
        s1 = await alice.send("bob", "one")
        await ack_all(bob, 1)
        await bob.ok(Read, conv=s1.conv, pos=s1.pos)
        assert await positions(alice, s1.conv) == ({"bob": 1}, {"bob": 1})  # the control
        await bob.ok(SetPrivacy, receipts="nobody")
        await net.close_all()
        await net.srv.restart()
        alice, bob = await net.user("alice"), await net.user("bob")
        privacy = await bob.get(GetPrivacy, Privacy)
        assert (privacy.receipts, privacy.presence) == ("nobody", "contacts")
        assert await positions(alice, s1.conv) == ({"bob": 0}, {"bob": 0})
