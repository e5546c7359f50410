"""Groups against a real server: creation, one timeline order for all members, fan-out on
write, membership changes as timeline events, history from joining, removal, leaving,
roles, ownership, metadata, size limit and refusals."""

from __future__ import annotations

import asyncio

from liaotian.protocol import ErrorCode, History, Send, Sent, UpdateKind
from liaotian.protocol.social import (
    Block,
    GetGroup,
    GetReceipts,
    GroupAdd,
    GroupCreate,
    GroupInfo,
    GroupLeave,
    GroupList,
    GroupRemove,
    GroupSetRole,
    GroupTransfer,
    GroupUpdate,
    ListConversations,
    ListGroups,
    Read,
    SetPrivacy,
)
from liaotian.protocol.social import ConversationList as ConvList
from socialclient import SocialClient, event_of, social_server


def roles(info: GroupInfo) -> dict[str, str]:
    return {m.user: m.role for m in info.members}


async def group_info(c: SocialClient, group: int) -> GroupInfo:
    return await c.get(GetGroup, GroupInfo, group=group)


async def list_groups(c: SocialClient) -> GroupList:
    return await c.get(ListGroups, GroupList)


# --------------------------------------------------------------------------- creation


async def test_create_group_answers_info_and_pushes_created_event(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        alice, bob, carol = await net.users("alice", "bob", "carol")
        t0 = await alice.server_ms()
        info = await alice.create_group("team", ["bob", "carol", "alice", "bob"], topic="plans")
        assert info.name == "team" and info.topic == "plans" and info.owner == "alice"
        assert info.pos == 1 and info.created >= t0
        assert roles(info) == {"alice": "owner", "bob": "member", "carol": "member"}
        assert len(info.members) == 3  # the creator and a repeated name count once
        assert all(m.joined == info.created for m in info.members)

        # the created event, pos 1, pushed to every live member (the creator included)
        for c in (bob, carol, alice):
            upd = await c.entry(UpdateKind.MESSAGE)
            msg = upd.message
            assert msg is not None
            assert (msg.conv, msg.group, msg.pos, msg.sender) == (
                info.group,
                info.group,
                1,
                "alice",
            )
            assert (msg.to, msg.text, msg.cmid) == ("", "", "")
            ev = event_of(msg)
            assert ev["type"] == "created"
            assert sorted(ev["users"]) == ["alice", "bob", "carol"]
            await c.assert_no_push()

        for c in (alice, bob, carol):
            got = await group_info(c, info.group)
            assert (got.group, got.name, got.topic, got.owner, got.created, got.pos) == (
                info.group,
                "team",
                "plans",
                "alice",
                info.created,
                1,
            )
            assert roles(got) == roles(info)
        lst = await list_groups(bob)
        assert [(g.group, g.name, g.topic, g.role, g.members) for g in lst.groups] == [
            (info.group, "team", "plans", "member", 3)
        ]


async def test_create_group_refusals_create_nothing(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        alice, bob, carol = await net.users("alice", "bob", "carol")
        await alice.fail(GroupCreate, ErrorCode.UNKNOWN_USER, name="x", members=("bob", "nobody"))
        await alice.fail(GroupCreate, ErrorCode.INVALID_FIELD, name="", members=("bob",))
        await alice.fail(GroupCreate, ErrorCode.INVALID_FIELD, name="n" * 65, members=("bob",))
        # carol takes messages from contacts only; alice is not one
        await carol.ok(SetPrivacy, messages="contacts")
        await alice.fail(GroupCreate, ErrorCode.NOT_ALLOWED, name="x", members=("bob", "carol"))
        # bob blocked alice
        await bob.ok(Block, user="alice")
        await bob.entry(UpdateKind.CONTACT)  # "changed" in bob's own log
        await alice.fail(GroupCreate, ErrorCode.NOT_ALLOWED, name="x", members=("bob",))
        # nothing was created, nobody was told anything
        for c in (alice, bob, carol):
            assert (await list_groups(c)).groups == ()
            await c.assert_no_push()
        # refusals leave no half-made group behind
        info = await alice.create_group("ok", [])
        assert info.pos == 1 and roles(info) == {"alice": "owner"}


async def test_group_size_limit_counts_the_owner(tmp_path) -> None:
    async with social_server(tmp_path, max_group_size=3) as net:
        alice, *_ = await net.users("alice", "bob", "carol", "dave", "erin")
        await alice.fail(
            GroupCreate, ErrorCode.GROUP_FULL, name="big", members=("bob", "carol", "dave")
        )
        info = await alice.create_group("three", ["alice", "bob", "carol"])
        assert len(info.members) == 3
        await alice.entry(UpdateKind.MESSAGE)
        await alice.fail(GroupAdd, ErrorCode.GROUP_FULL, group=info.group, users=("dave",))
        small = await alice.create_group("two", ["bob"])
        await alice.entry(UpdateKind.MESSAGE)
        await alice.fail(GroupAdd, ErrorCode.GROUP_FULL, group=small.group, users=("dave", "erin"))
        ok = await alice.ok(GroupAdd, group=small.group, users=("dave",))
        assert ok.pos == 2
        assert len((await group_info(alice, small.group)).members) == 3


# --------------------------------------------------------------------------- ordering


async def test_concurrent_senders_one_order_for_all_members(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        names = ("alice", "bob", "carol", "dave")
        members = await net.users(*names)
        alice = members[0]
        info = await alice.create_group("race", names[1:])
        for c in members:
            await c.event("created")
        per_sender = 10

        async def blast(c: SocialClient) -> list[tuple[Send, Sent]]:
            msgs = [c.group_msg(info.group, f"{c.user}-{i}") for i in range(per_sender)]
            await c.write(*msgs)  # pipelined: all in flight at once
            out = []
            for m in msgs:
                ans = await c.answer(m.rid)
                assert isinstance(ans, Sent), ans
                out.append((m, ans))
            return out

        results = await asyncio.gather(*(blast(c) for c in members))
        total = per_sender * len(members)
        # every position 2..total+1 taken exactly once
        all_pos = sorted(s.pos for r in results for _m, s in r)
        assert all_pos == list(range(2, total + 2))

        by_pos: dict[int, tuple[str, str]] = {}
        for c, r in zip(members, results, strict=True):
            own = [s.pos for _m, s in r]
            assert own == sorted(own), "one connection's sends keep their order"
            for m, s in r:
                by_pos[s.pos] = (c.user, m.text)

        for c, r in zip(members, results, strict=True):
            pushed = await c.entries(total - per_sender)  # everyone else's messages
            await c.assert_no_push()
            log = [(u.seq, u.message.pos) for u in pushed if u.message is not None]
            log += [(s.seq, s.pos) for _m, s in r]
            log.sort()
            # this member's log, in seq order, holds every position once and in order
            assert [p for _seq, p in log] == list(range(2, total + 2)), c.user
            seqs = [seq for seq, _p in log]
            assert seqs == list(range(2, total + 2))  # seq 1 is the created event
            for u in pushed:
                assert u.message is not None
                assert (u.message.sender, u.message.text) == by_pos[u.message.pos]
                assert u.message.group == info.group


async def test_offline_member_gets_every_group_message_on_sync(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        await net.register("carol")
        alice, bob = await net.users("alice", "bob")
        info = await alice.create_group("team", ["bob", "carol"])
        await bob.event("created")
        sent = []
        for i in range(6):
            sender = alice if i % 2 == 0 else bob
            sent.append(await sender.gsend(info.group, f"m{i}"))
        assert [s.pos for s in sent] == list(range(2, 8))

        carol = await net.user("carol", sync=False)
        page = await carol.log_entries()
        assert [u.seq for u in page] == list(range(1, 8))
        msgs = [u.message for u in page]
        assert all(u.kind == UpdateKind.MESSAGE for u in page)
        assert [m.pos for m in msgs] == list(range(1, 8))
        assert event_of(msgs[0])["type"] == "created"
        assert [m.text for m in msgs[1:]] == [f"m{i}" for i in range(6)]
        assert [m.id for m in msgs[1:]] == [s.id for s in sent]
        assert all(m.group == info.group and m.conv == info.group for m in msgs)
        # live from now on: the next message is pushed once
        s = await bob.gsend(info.group, "live")
        m = await carol.message()
        assert (m.pos, m.text, m.id) == (s.pos, "live", s.id)
        await carol.assert_no_push()


async def test_one_push_per_member_connection_per_message(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        await net.register("alice", "bob", "carol", "dave")
        a1, a2 = await net.user("alice", "d1"), await net.user("alice", "d2")
        b1, b2 = await net.user("bob", "d1"), await net.user("bob", "d2")
        c1 = await net.user("carol")
        d1 = await net.user("dave")
        info = await a1.create_group("g", ["bob", "carol"])
        for c in (a1, a2, b1, b2, c1):
            await c.event("created")
        sent = [await a1.gsend(info.group, f"t{i}") for i in range(5)]

        for c in (b1, b2, c1, a2):
            got = await c.entries(5)
            await c.assert_no_push()
            assert [u.message.pos for u in got if u.message] == [s.pos for s in sent]
            assert [u.message.text for u in got if u.message] == [f"t{i}" for i in range(5)]
            if c is a2:  # the sender's other device gets the sender's own log entries
                assert [u.seq for u in got] == [s.seq for s in sent]
        await a1.assert_no_push()  # the sending connection has its SENTs
        await d1.assert_no_push()  # not a member

        # a timeline event: exactly one copy on every member connection, actor's included
        ok = await a1.ok(GroupAdd, group=info.group, users=("dave",))
        for c in (a1, a2, b1, b2, c1, d1):
            ev = await c.event("added")
            assert ev.pos == ok.pos == 7 and event_of(ev)["users"] == ["dave"]
            await c.assert_no_push()


async def test_a_group_of_one_pushes_to_the_senders_other_devices(tmp_path) -> None:
    """With no other member, the sender's other live connections still get the sender's
    entry (the fan-out skipped it with the empty member list: a gap on their live stream
    until the next SYNC; found by the simulation, sim/README.md)."""
    async with social_server(tmp_path) as net:
        await net.register("alice")
        a1, a2 = await net.user("alice", "d1"), await net.user("alice", "d2")
        info = await a1.create_group("notes", [])
        for c in (a1, a2):
            await c.event("created")
        s = await a1.gsend(info.group, "to myself")
        (got,) = await a2.entries(1)
        assert got.seq == s.seq and got.message is not None and got.message.id == s.id
        await a1.assert_no_push()


# --------------------------------------------------------------------------- membership


async def test_membership_changes_are_timeline_events(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        alice, bob, carol, dave = await net.users("alice", "bob", "carol", "dave")
        info = await alice.create_group("team", ["bob", "carol"])
        g = info.group
        for c in (alice, bob, carol):
            await c.event("created")

        added = await alice.ok(GroupAdd, group=g, users=("dave",))
        assert added.pos == 2
        for c in (alice, bob, carol, dave):
            ev = await c.event("added")
            assert (ev.pos, ev.sender, event_of(ev)["users"]) == (2, "alice", ["dave"])

        removed = await alice.ok(GroupRemove, group=g, user="carol")
        assert removed.pos == 3
        for c in (alice, bob, carol, dave):  # the removed member learns it too
            ev = await c.event("removed")
            assert (ev.pos, ev.sender, event_of(ev)["users"]) == (3, "alice", ["carol"])

        left = await bob.ok(GroupLeave, group=g)
        assert left.pos == 4
        for c in (alice, bob, dave):
            ev = await c.event("left")
            assert (ev.pos, ev.sender, event_of(ev)["users"]) == (4, "bob", ["bob"])
        for c in (alice, bob, carol, dave):
            await c.assert_no_push()  # carol was gone before bob left

        page = await alice.ghistory(g)
        assert [(m.pos, event_of(m)["type"]) for m in page.messages] == [
            (1, "created"),
            (2, "added"),
            (3, "removed"),
            (4, "left"),
        ]
        assert not page.more

        def types(entries):
            return [(u.message.pos, event_of(u.message)["type"]) for u in entries]

        assert types(await bob.log_entries()) == [
            (1, "created"),
            (2, "added"),
            (3, "removed"),
            (4, "left"),
        ]
        assert types(await carol.log_entries()) == [(1, "created"), (2, "added"), (3, "removed")]
        assert types(await dave.log_entries()) == [(2, "added"), (3, "removed"), (4, "left")]

        now = await group_info(dave, g)
        assert roles(now) == {"alice": "owner", "dave": "member"} and now.pos == 4
        await bob.fail(GetGroup, ErrorCode.NOT_MEMBER, group=g)
        assert (await list_groups(bob)).groups == ()


async def test_new_member_sees_history_only_from_joining(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        alice, bob, carol = await net.users("alice", "bob", "carol")
        g = (await alice.create_group("team", ["bob"])).group
        for i in range(3):
            await alice.gsend(g, f"before-{i}")  # pos 2, 3, 4
        joined = await alice.ok(GroupAdd, group=g, users=("carol",))
        assert joined.pos == 5
        after = await bob.gsend(g, "after")
        assert after.pos == 6

        page = await carol.ghistory(g)  # newest page
        assert [m.pos for m in page.messages] == [5, 6] and not page.more
        assert event_of(page.messages[0])["type"] == "added"
        assert page.messages[1].text == "after"
        page = await carol.ghistory(g, before=5)
        assert page.messages == () and not page.more
        page = await carol.ghistory(g, before=6, limit=10)
        assert [m.pos for m in page.messages] == [5] and not page.more
        page = await carol.ghistory(g, after=0)
        assert [m.pos for m in page.messages] == [5, 6] and not page.more
        page = await carol.ghistory(g, after=2, limit=1)
        assert [m.pos for m in page.messages] == [5] and page.more
        # bob, a member from the start, sees everything
        page = await bob.ghistory(g)
        assert [m.pos for m in page.messages] == [1, 2, 3, 4, 5, 6]
        # carol's log has only what was appended after she joined
        log = await carol.log_entries()
        assert [u.message.pos for u in log] == [5, 6]
        assert (await group_info(carol, g)).pos == 6


async def test_removed_member_stops_receiving_at_once(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        alice, bob, carol = await net.users("alice", "bob", "carol")
        g = (await alice.create_group("team", ["bob", "carol"])).group
        for c in (alice, bob, carol):
            await c.event("created")
        first = await bob.gsend(g, "hello all")
        assert (await carol.message()).pos == first.pos
        await alice.message()

        # the removal and a message right behind it, pipelined on one connection
        remove = GroupRemove(rid=alice.rid(), group=g, user="carol")
        msg = alice.group_msg(g, "carol is gone")
        await alice.write(remove, msg)
        ok, sent = await alice.answer(remove.rid), await alice.answer(msg.rid)
        assert isinstance(sent, Sent) and ok.pos == first.pos + 1 and sent.pos == ok.pos + 1

        ev = await carol.event("removed")
        assert ev.pos == ok.pos
        await carol.assert_no_push()  # nothing after the removed event
        assert (await bob.event("removed")).pos == ok.pos
        assert (await bob.message()).text == "carol is gone"
        log = await carol.log_entries()
        assert event_of(log[-1].message)["type"] == "removed"
        assert all(u.message.pos <= ok.pos for u in log)

        await carol.fail(Send, ErrorCode.NOT_MEMBER, to="", group=g, cmid="late", text="hi?")
        await carol.fail(GetGroup, ErrorCode.NOT_MEMBER, group=g)
        await carol.fail(Read, ErrorCode.NOT_MEMBER, conv=g, pos=1)
        await carol.fail(GetReceipts, ErrorCode.NOT_MEMBER, conv=g)
        await carol.fail(GroupLeave, ErrorCode.NOT_MEMBER, group=g)
        await carol.fail(History, ErrorCode.NOT_MEMBER, with_user="", group=g)
        await carol.typing(True, group=g)
        err = await carol.next_push()
        assert err.code == ErrorCode.NOT_MEMBER and err.rid == 0
        assert (await list_groups(carol)).groups == ()
        convs = await carol.get(ListConversations, ConvList)
        assert all(cv.conv != g for cv in convs.conversations)
        # the group goes on without her
        await bob.gsend(g, "still here")
        await alice.message()
        await carol.assert_no_push()


async def test_member_sending_while_being_removed_never_follows_the_removal(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        alice, bob, carol = await net.users("alice", "bob", "carol")
        g = (await alice.create_group("team", ["bob", "carol"])).group
        for c in (alice, bob, carol):
            await c.event("created")
        msgs = [carol.group_msg(g, f"c{i}") for i in range(30)]
        remove = GroupRemove(rid=alice.rid(), group=g, user="carol")
        await asyncio.gather(carol.write(*msgs), alice.write(remove))
        ok = await alice.answer(remove.rid)
        answers = [await carol.answer(m.rid) for m in msgs]
        accepted = [a for a in answers if isinstance(a, Sent)]
        refused = [a for a in answers if not isinstance(a, Sent)]
        assert all(a.code == ErrorCode.NOT_MEMBER for a in refused)
        assert all(a.pos < ok.pos for a in accepted)
        # once refused, refused for good (one order: nothing of carol's after the removal)
        flags = [isinstance(a, Sent) for a in answers]
        assert flags == sorted(flags, reverse=True)
        page = await bob.ghistory(g, limit=100)
        after = [m for m in page.messages if m.pos > ok.pos]
        assert after == []
        assert [m.text for m in page.messages if m.sender == "carol"] == [
            f"c{i}" for i in range(len(accepted))
        ]


async def test_owner_leaves_only_after_transfer(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        alice, bob, carol = await net.users("alice", "bob", "carol")
        g = (await alice.create_group("team", ["bob"])).group
        await alice.fail(GroupLeave, ErrorCode.CONFLICT, group=g)
        await alice.fail(GroupTransfer, ErrorCode.CONFLICT, group=g, user="carol")  # not in it
        await alice.fail(GroupTransfer, ErrorCode.CONFLICT, group=g, user="alice")
        await bob.fail(GroupTransfer, ErrorCode.FORBIDDEN, group=g, user="bob")
        for c in (alice, bob):
            await c.event("created")
            await c.assert_no_push()

        moved = await alice.ok(GroupTransfer, group=g, user="bob")
        for c in (alice, bob):
            ev = await c.event("owner")
            assert ev.pos == moved.pos == 2 and event_of(ev)["user"] == "bob"
        info = await group_info(alice, g)
        assert info.owner == "bob" and roles(info) == {"alice": "admin", "bob": "owner"}
        await bob.fail(GroupLeave, ErrorCode.CONFLICT, group=g)

        left = await alice.ok(GroupLeave, group=g)
        assert left.pos == 3
        for c in (alice, bob):
            ev = await c.event("left")
            assert event_of(ev)["users"] == ["alice"]
        assert (await list_groups(alice)).groups == ()
        assert roles(await group_info(bob, g)) == {"bob": "owner"}
        # the last member (the owner) may leave: the group is then empty
        await bob.ok(GroupLeave, group=g)
        await bob.event("left")
        await bob.fail(GetGroup, ErrorCode.NOT_MEMBER, group=g)
        await alice.fail(GetGroup, ErrorCode.NOT_MEMBER, group=g)
        await carol.fail(GetGroup, ErrorCode.NOT_MEMBER, group=g)


async def test_rename_and_topic_are_events(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        alice, bob = await net.users("alice", "bob")
        g = (await alice.create_group("old", ["bob"], topic="t0")).group
        for c in (alice, bob):
            await c.event("created")
        r = await alice.ok(GroupUpdate, group=g, name="new")
        assert r.pos == 2
        for c in (alice, bob):
            ev = await c.event("renamed")
            assert ev.pos == 2 and event_of(ev)["name"] == "new"
        t = await alice.ok(GroupUpdate, group=g, topic="t1")
        assert t.pos == 3
        for c in (alice, bob):
            ev = await c.event("topic")
            assert ev.pos == 3 and event_of(ev)["topic"] == "t1"
        both = await alice.ok(GroupUpdate, group=g, name="newer", topic="t2")
        assert both.pos == 5  # two events; OK names the last
        for c in (alice, bob):
            evs = await c.entries(2)
            assert [(u.message.pos, event_of(u.message)["type"]) for u in evs] == [
                (4, "renamed"),
                (5, "topic"),
            ]
        info = await group_info(bob, g)
        assert (info.name, info.topic, info.pos) == ("newer", "t2", 5)
        same = await alice.ok(GroupUpdate, group=g, topic="t2")  # unchanged: still an event
        assert same.pos == 6
        for c in (alice, bob):
            assert (await c.event("topic")).pos == 6
        assert [(x.name, x.topic) for x in (await list_groups(bob)).groups] == [("newer", "t2")]
        await alice.fail(GroupUpdate, ErrorCode.INVALID_FIELD, group=g)  # neither field
        await bob.fail(GroupUpdate, ErrorCode.FORBIDDEN, group=g, name="mine")
        for c in (alice, bob):
            await c.assert_no_push()
        assert (await group_info(bob, g)).name == "newer"
        await alice.ok(GroupUpdate, group=g, topic="")  # "" clears the topic
        assert (await group_info(bob, g)).topic == ""


async def test_roles_and_permissions(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        alice, bob, carol, _dave, erin = await net.users("alice", "bob", "carol", "dave", "erin")
        g = (await alice.create_group("team", ["bob", "carol"])).group
        # a member can do none of the admin actions
        await carol.fail(GroupAdd, ErrorCode.FORBIDDEN, group=g, users=("dave",))
        await carol.fail(GroupRemove, ErrorCode.FORBIDDEN, group=g, user="bob")
        await carol.fail(GroupUpdate, ErrorCode.FORBIDDEN, group=g, topic="x")
        await carol.fail(GroupSetRole, ErrorCode.FORBIDDEN, group=g, user="bob", role="admin")
        await carol.fail(GroupTransfer, ErrorCode.FORBIDDEN, group=g, user="carol")

        promoted = await alice.ok(GroupSetRole, group=g, user="bob", role="admin")
        for c in (alice, bob, carol):
            await c.event("created")
            ev = await c.event("role")
            assert ev.pos == promoted.pos == 2
            assert (event_of(ev)["user"], event_of(ev)["role"]) == ("bob", "admin")
        assert roles(await group_info(carol, g))["bob"] == "admin"

        # an admin adds and removes members...
        await bob.ok(GroupAdd, group=g, users=("dave", "erin"))
        await bob.ok(GroupRemove, group=g, user="erin")
        # ...but not the owner or other admins, and does not manage roles or ownership
        await bob.fail(GroupRemove, ErrorCode.FORBIDDEN, group=g, user="alice")
        await alice.ok(GroupSetRole, group=g, user="carol", role="admin")
        await bob.fail(GroupRemove, ErrorCode.FORBIDDEN, group=g, user="carol")
        await bob.fail(GroupSetRole, ErrorCode.FORBIDDEN, group=g, user="dave", role="admin")
        await bob.fail(GroupTransfer, ErrorCode.FORBIDDEN, group=g, user="bob")
        await bob.ok(GroupUpdate, group=g, topic="admins may")
        # the owner demotes and removes admins
        await alice.ok(GroupSetRole, group=g, user="carol", role="member")
        await alice.fail(GroupSetRole, ErrorCode.CONFLICT, group=g, user="alice", role="member")
        await alice.fail(GroupSetRole, ErrorCode.INVALID_FIELD, group=g, user="bob", role="owner")
        await alice.ok(GroupRemove, group=g, user="bob")
        await alice.ok(GroupSetRole, group=g, user="dave", role="admin")
        info = await group_info(alice, g)
        assert roles(info) == {"alice": "owner", "carol": "member", "dave": "admin"}
        # the owner first, then the admins, then the members
        assert [m.role for m in info.members] == ["owner", "admin", "member"]
        assert info.topic == "admins may"
        page = await alice.ghistory(g)
        assert [event_of(m)["type"] for m in page.messages] == [
            "created",
            "role",
            "added",
            "removed",
            "role",
            "topic",
            "role",
            "removed",
            "role",
        ]
        await erin.fail(GetGroup, ErrorCode.NOT_MEMBER, group=g)


async def test_conflicts_and_unknown_group(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        alice, _bob, carol, dave = await net.users("alice", "bob", "carol", "dave")
        g = (await alice.create_group("team", ["bob"])).group
        await alice.fail(GroupAdd, ErrorCode.CONFLICT, group=g, users=("bob",))
        await alice.fail(GroupAdd, ErrorCode.CONFLICT, group=g, users=("carol", "bob"))
        await alice.fail(GroupAdd, ErrorCode.UNKNOWN_USER, group=g, users=("ghost",))
        await alice.fail(GroupRemove, ErrorCode.CONFLICT, group=g, user="dave")
        await alice.fail(GroupRemove, ErrorCode.CONFLICT, group=g, user="alice")
        await alice.fail(GroupRemove, ErrorCode.CONFLICT, group=g, user="ghost")
        await alice.fail(GroupSetRole, ErrorCode.CONFLICT, group=g, user="ghost", role="admin")
        await alice.fail(GroupSetRole, ErrorCode.CONFLICT, group=g, user="dave", role="admin")
        await alice.fail(GroupTransfer, ErrorCode.CONFLICT, group=g, user="ghost")
        assert roles(await group_info(alice, g)) == {"alice": "owner", "bob": "member"}
        assert (await group_info(alice, g)).pos == 1  # refused requests add no events
        await carol.assert_no_push()

        # an unknown group and a group you are not in look the same: 3005
        for group in (g, 999_999):
            await dave.fail(GetGroup, ErrorCode.NOT_MEMBER, group=group)
            await dave.fail(
                Send, ErrorCode.NOT_MEMBER, to="", group=group, cmid=f"x{group}", text="hi"
            )
            await dave.fail(GroupAdd, ErrorCode.NOT_MEMBER, group=group, users=("dave",))
            await dave.fail(GroupLeave, ErrorCode.NOT_MEMBER, group=group)
            await dave.fail(GroupUpdate, ErrorCode.NOT_MEMBER, group=group, name="mine")
            # ...but a GROUP_UPDATE with nothing to change is 1003 before any other check
            await dave.fail(GroupUpdate, ErrorCode.INVALID_FIELD, group=group)
            await dave.fail(Read, ErrorCode.NOT_MEMBER, conv=group, pos=1)
            await dave.fail(GetReceipts, ErrorCode.NOT_MEMBER, conv=group)
            await dave.fail(History, ErrorCode.NOT_MEMBER, with_user="", group=group)


async def test_list_groups(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        alice, bob, carol = await net.users("alice", "bob", "carol")
        assert (await list_groups(alice)).groups == ()
        g1 = (await alice.create_group("one", ["bob", "carol"], topic="first")).group
        g2 = (await bob.create_group("two", ["alice"])).group
        g3 = (await carol.create_group("three", ["bob"])).group
        await bob.ok(GroupSetRole, group=g2, user="alice", role="admin")
        lst = await list_groups(alice)
        assert [(x.group, x.name, x.topic, x.role, x.members) for x in lst.groups] == [
            (g1, "one", "first", "owner", 3),
            (g2, "two", "", "admin", 2),
        ]
        lst = await list_groups(bob)
        assert [(x.group, x.role, x.members) for x in lst.groups] == [
            (g1, "member", 3),
            (g2, "owner", 2),
            (g3, "member", 2),
        ]
        await carol.ok(GroupLeave, group=g1)
        assert [x.members for x in (await list_groups(alice)).groups] == [2, 2]
        assert [x.group for x in (await list_groups(carol)).groups] == [g3]
