"""Read markers, receipts (read and delivered) and the chat list against a real server."""

from __future__ import annotations

from liaotian.protocol import Ack, ErrorCode, UpdateKind
from liaotian.protocol.social import (
    ConversationList,
    ConversationSummary,
    GetReceipts,
    GroupAdd,
    GroupUpdate,
    ListConversations,
    Read,
    Receipts,
    SetPrivacy,
)
from socialclient import SocialClient, social_server


async def receipts(c: SocialClient, conv: int) -> tuple[dict[str, int], dict[str, int]]:
    r = await c.get(GetReceipts, Receipts, conv=conv)
    assert r.conv == conv
    read = {m.user: m.pos for m in r.read}
    delivered = {m.user: m.pos for m in r.delivered}
    assert len(read) == len(r.read) and len(delivered) == len(r.delivered)
    return read, delivered


async def chats(c: SocialClient, **kw) -> ConversationList:
    return await c.get(ListConversations, ConversationList, **kw)


async def chat(c: SocialClient, conv: int) -> ConversationSummary:
    found = [x for x in (await chats(c, limit=100)).conversations if x.conv == conv]
    assert len(found) == 1, f"{c.user}: conversation {conv} listed {len(found)} times"
    return found[0]


async def share_receipts(*users: SocialClient) -> None:
    """Privacy `receipts` and `presence` "everyone" (delivered positions need both): these
    tests' users are not contacts, and the defaults hide both from non-contacts."""
    for c in users:
        await c.ok(SetPrivacy, receipts="everyone", presence="everyone")


def read_entry(upd) -> dict:
    assert upd.kind == UpdateKind.READ, upd
    return upd.data


# --------------------------------------------------------------------------- read markers


async def test_direct_read_reaches_the_sender_and_the_readers_devices(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        await net.register("alice", "bob", "carol")
        alice = await net.user("alice")
        b1, b2 = await net.user("bob", "d1"), await net.user("bob", "d2")
        carol = await net.user("carol")
        await share_receipts(alice, b1)
        sent = [await alice.send("bob", f"m{i}") for i in range(3)]
        conv = sent[0].conv
        for b in (b1, b2):
            await b.entries(3)

        ok = await b1.ok(Read, conv=conv, pos=2)
        assert ok.pos is None
        want = {"conv": conv, "user": "bob", "pos": 2}
        assert read_entry(await alice.entry()) == want  # the sender learns it was read
        assert read_entry(await b2.entry()) == want  # the reader's other device
        assert read_entry(await b1.entry()) == want  # and the reader's own log
        for c in (alice, b1, b2):
            await c.assert_no_push()

        # markers only move forward: a lower or equal pos is OK and changes nothing
        await b1.ok(Read, conv=conv, pos=1)
        await b2.ok(Read, conv=conv, pos=2)
        for c in (alice, b1, b2):
            await c.assert_no_push()
        assert (await receipts(alice, conv))[0] == {"bob": 2}
        assert (await chat(b1, conv)).read == 2

        await b1.fail(Read, ErrorCode.INVALID_FIELD, conv=conv, pos=4)  # beyond the end
        await carol.fail(Read, ErrorCode.NOT_MEMBER, conv=conv, pos=1)  # not a participant
        await carol.fail(GetReceipts, ErrorCode.NOT_MEMBER, conv=conv)
        await alice.assert_no_push()
        assert (await receipts(alice, conv))[0] == {"bob": 2}

        await b2.ok(Read, conv=conv, pos=3)
        assert read_entry(await alice.entry())["pos"] == 3
        for b in (b1, b2):
            assert read_entry(await b.entry()) == {"conv": conv, "user": "bob", "pos": 3}
        # the other direction: alice reads, both of bob's devices learn it
        await alice.ok(Read, conv=conv, pos=3)
        for b in (b1, b2):
            assert read_entry(await b.entry()) == {"conv": conv, "user": "alice", "pos": 3}
        assert read_entry(await alice.entry())["user"] == "alice"
        assert (await receipts(b1, conv))[0] == {"alice": 3}
        assert (await receipts(alice, conv))[0] == {"bob": 3}
        # the markers are in the logs, for devices that sync later
        log = await alice.log_entries()
        assert [(u.data["user"], u.data["pos"]) for u in log if u.kind == UpdateKind.READ] == [
            ("bob", 2),
            ("bob", 3),
            ("alice", 3),
        ]


async def test_delivered_follows_acks_and_syncs(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        await net.register("alice", "bob")
        alice = await net.user("alice")
        bob = await net.user("bob")
        await share_receipts(bob)
        sent = [await alice.send("bob", f"m{i}") for i in range(3)]
        conv = sent[0].conv
        got = await bob.entries(3)
        seqs = [u.seq for u in got]
        read, delivered = await receipts(alice, conv)
        assert read == {"bob": 0} and delivered == {"bob": 0}  # pushed is not acknowledged

        await bob.write(Ack(rid=0, seq=seqs[1]))
        await bob.barrier()  # the ACK is handled before the PING is answered
        assert (await receipts(alice, conv))[1] == {"bob": 2}  # visible before it commits

        bob2 = await net.user("bob", "d2", sync=False)
        await bob2.sync(since=seqs[2])  # a device syncing past the message has it
        assert (await receipts(alice, conv))[1] == {"bob": 3}
        await bob.write(Ack(rid=0, seq=seqs[0]))  # an older position moves nothing back
        await bob.barrier()
        assert (await receipts(alice, conv))[1] == {"bob": 3}
        assert (await receipts(alice, conv))[0] == {"bob": 0}  # delivered is not read


async def test_group_read_is_not_fanned_out_but_receipts_list_it(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        await net.register("alice", "bob", "carol", "dave")
        alice = await net.user("alice")
        b1, b2 = await net.user("bob", "d1"), await net.user("bob", "d2")
        carol = await net.user("carol")
        dave = await net.user("dave")
        await share_receipts(b1, carol)
        g = (await alice.create_group("team", ["bob", "carol"])).group
        sent = [await alice.gsend(g, f"m{i}") for i in range(3)]  # pos 2, 3, 4
        for c in (b1, b2, carol):
            await c.entries(4)
        alice_created = await alice.entry()
        assert alice_created.message is not None and alice_created.message.pos == 1

        await b1.ok(Read, conv=g, pos=4)
        want = {"conv": g, "user": "bob", "pos": 4}
        assert read_entry(await b2.entry()) == want  # the reader's other device follows
        assert read_entry(await b1.entry()) == want
        for c in (alice, carol, dave, b1, b2):
            await c.assert_no_push()  # no receipt storm: other members get nothing

        await carol.ok(Read, conv=g, pos=2)
        assert read_entry(await carol.entry()) == {"conv": g, "user": "carol", "pos": 2}
        await b1.fail(Read, ErrorCode.INVALID_FIELD, conv=g, pos=5)
        await dave.fail(Read, ErrorCode.NOT_MEMBER, conv=g, pos=1)
        await dave.fail(GetReceipts, ErrorCode.NOT_MEMBER, conv=g)

        read, delivered = await receipts(alice, g)
        assert read == {"bob": 4, "carol": 2}  # every other member, not the asker
        assert delivered == {"bob": 0, "carol": 0}
        # who read the message at pos 3? those with a read pos >= 3
        assert sorted(u for u, p in read.items() if p >= sent[1].pos) == ["bob"]
        assert sorted(u for u, p in read.items() if p >= sent[0].pos) == ["bob", "carol"]

        carol_log = await carol.log_entries()
        pos3 = next(u.seq for u in carol_log if u.message and u.message.pos == 3)
        await carol.write(Ack(rid=0, seq=pos3))
        await carol.barrier()
        assert (await receipts(alice, g))[1] == {"bob": 0, "carol": 3}
        read, _ = await receipts(b2, g)
        assert read == {"alice": 0, "carol": 2}


# --------------------------------------------------------------------------- chat list


async def test_chat_list_newest_first_with_names(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        alice, bob, carol = await net.users("alice", "bob", "carol")
        assert (await chats(alice)).conversations == ()
        s_ab = await bob.send("alice", "from bob")
        await alice.clock_past(s_ab.ts)
        s_ac = await carol.send("alice", "from carol")
        await alice.clock_past(s_ac.ts)
        info = await alice.create_group("team", ["bob"])
        await alice.clock_past(info.created)
        s_ab2 = await alice.send("bob", "to bob")

        lst = await chats(alice)
        assert not lst.more
        got = [(x.conv, x.kind, x.name, x.ts) for x in lst.conversations]
        assert got == [
            (s_ab.conv, "direct", "bob", s_ab2.ts),
            (info.group, "group", "team", info.created),
            (s_ac.conv, "direct", "carol", s_ac.ts),
        ]
        ab, team, ac = lst.conversations
        assert (ab.peer, ab.group) == ("bob", None)
        assert (team.peer, team.group) == (None, info.group)
        assert ab.last is not None and (ab.last.id, ab.last.text) == (s_ab2.id, "to bob")
        assert ac.last is not None and ac.last.text == "from carol"
        assert team.last is not None and team.last.event is not None
        assert team.last.event["type"] == "created" and team.last.pos == 1

        # a rename is a timeline entry: the group moves to the top, under its new name
        await alice.clock_past(s_ab2.ts)
        await alice.ok(GroupUpdate, group=info.group, name="crew")
        first = (await chats(bob)).conversations[0]
        assert (first.conv, first.kind, first.name) == (info.group, "group", "crew")
        assert [x.name for x in (await chats(alice)).conversations] == ["crew", "bob", "carol"]


async def test_unread_counts_follow_the_read_marker(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        alice, bob = await net.users("alice", "bob")
        await bob.send("alice", "b1")
        await bob.send("alice", "b2")
        await alice.send("bob", "a3")
        s4 = await bob.send("alice", "b4")
        conv = s4.conv
        mine = await chat(alice, conv)
        assert (mine.unread, mine.read) == (3, 0)  # not counting her own message
        theirs = await chat(bob, conv)
        assert (theirs.unread, theirs.read) == (1, 0)

        await alice.ok(Read, conv=conv, pos=2)
        mine = await chat(alice, conv)
        assert (mine.unread, mine.read) == (1, 2)
        await alice.ok(Read, conv=conv, pos=1)  # no step back
        assert (await chat(alice, conv)).unread == 1
        await alice.ok(Read, conv=conv, pos=4)
        mine = await chat(alice, conv)
        assert (mine.unread, mine.read) == (0, 4)
        await bob.send("alice", "b5")
        assert (await chat(alice, conv)).unread == 1
        assert (await chat(bob, conv)).unread == 1  # alice's a3 is still unread for bob


async def test_chat_list_paging(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        names = [f"user{i}" for i in range(5)]
        alice, *others = await net.users("alice", *names)
        order = []
        for c in others:
            s = await c.send("alice", f"hi from {c.user}")
            order.append(s.conv)
            await alice.clock_past(s.ts)
        order.reverse()  # newest first

        seen = []
        kw: dict = {"limit": 2}
        pages = []
        while True:
            page = await chats(alice, **kw)
            pages.append((len(page.conversations), page.more))
            seen += [x.conv for x in page.conversations]
            if not page.more:
                break
            last = page.conversations[-1]
            kw = {"limit": 2, "before_ts": last.ts, "before_conv": last.conv}
        assert pages == [(2, True), (2, True), (1, False)]
        assert seen == order
        everything = await chats(alice)  # default limit (20)
        assert [x.conv for x in everything.conversations] == order and not everything.more
        # before_ts alone means "ts <= before_ts"
        third = (await chats(alice)).conversations[2]
        rest = await chats(alice, before_ts=third.ts)
        assert [x.conv for x in rest.conversations] == order[2:]
        exact = await chats(alice, limit=5)
        assert len(exact.conversations) == 5 and not exact.more
        await alice.fail(ListConversations, ErrorCode.INVALID_FIELD, limit=0)
        await alice.fail(ListConversations, ErrorCode.INVALID_FIELD, limit=101)


async def test_group_unread_counts_only_from_joining(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        alice, bob, carol = await net.users("alice", "bob", "carol")
        g = (await alice.create_group("team", ["bob"])).group
        for i in range(3):
            await alice.gsend(g, f"early {i}")
        await alice.ok(GroupAdd, group=g, users=("carol",))
        await alice.gsend(g, "late 1")
        await bob.gsend(g, "late 2")

        def unread_for(c: SocialClient, msgs) -> int:  # events never count (SPEC 19.1)
            return sum(1 for m in msgs if m.sender != c.user and m.event is None)

        carol_view = (await carol.ghistory(g)).messages
        bob_view = (await bob.ghistory(g)).messages
        assert [m.pos for m in carol_view] == [5, 6, 7]
        mine = await chat(carol, g)
        assert (mine.kind, mine.name, mine.read) == ("group", "team", 0)
        # only the two messages after her join count: not the three early ones, not events
        assert mine.unread == unread_for(carol, carol_view) == 2
        assert (await chat(bob, g)).unread == unread_for(bob, bob_view) == 4
        assert (await chat(alice, g)).unread == unread_for(alice, bob_view) == 1
        await carol.ok(Read, conv=g, pos=6)
        assert (await chat(carol, g)).unread == 1
        # an event is the newest entry: it gives last and ts but is not unread
        await alice.ok(GroupUpdate, group=g, topic="news")
        mine = await chat(carol, g)
        assert mine.unread == 1 and mine.last is not None and mine.last.event is not None
        assert mine.last.event["type"] == "topic" and mine.ts == mine.last.ts


async def test_conversation_with_oneself(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        await net.register("alice")
        a1, a2 = await net.user("alice", "d1"), await net.user("alice", "d2")
        s = await a1.send("alice", "note to self")
        assert (await a2.message()).id == s.id
        r = await a1.get(GetReceipts, Receipts, conv=s.conv)
        assert (r.read, r.delivered) == ((), ())  # no other participant
        await a1.ok(Read, conv=s.conv, pos=1)
        for c in (a1, a2):  # one entry, not two
            assert read_entry(await c.entry()) == {"conv": s.conv, "user": "alice", "pos": 1}
            await c.assert_no_push()
        mine = await chat(a1, s.conv)
        assert (mine.kind, mine.name, mine.unread, mine.read) == ("direct", "alice", 0, 1)
