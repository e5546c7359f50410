"""Writes other than SEND are limited too (issue 11, items 16-18 and 22), over a real socket.

* every write is charged to the writer's per-user budgets: write requests (`write_rate`)
  and the update-log rows it fans out to (`write_rows_rate`, SEND included);
* per-user bounds on groups owned and joined, contacts and pending requests (3009);
* LIST_GROUPS is paged, and privacy `groups` says who may add a user to a group;
* a GROUP_CREATE/GROUP_ADD naming more users than a group holds is refused before anything
  is queued or looked up.

Floods are pipelined (written at once, answers read afterwards), as an attacker would.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from liaotian.client import Client
from liaotian.protocol import Error, ErrorCode, Message, UpdateKind
from liaotian.protocol.social import (
    ContactAccept,
    ContactCancel,
    ContactRequest,
    GetPrivacy,
    GroupAdd,
    GroupCreate,
    GroupInfo,
    GroupLeave,
    GroupList,
    GroupTransfer,
    GroupUpdate,
    ListGroups,
    Ok,
    Privacy,
    SetPrivacy,
)
from rawclient import PASSWORD
from socialclient import SocialClient, make_contacts, social_server


async def pipeline(c: SocialClient, msgs: Sequence[Message]) -> list[Message]:
    """Write every request at once, then collect the answers in order."""
    await c.write(*msgs)
    return [await c.answer(m.rid) for m in msgs]


def split(answers: list[Message]) -> tuple[list[Message], list[Error]]:
    """(OK answers, RATE_LIMITED errors); anything else fails the test."""
    ok = [a for a in answers if not isinstance(a, Error)]
    limited = [a for a in answers if isinstance(a, Error)]
    for e in limited:
        assert e.code == ErrorCode.RATE_LIMITED, e
        assert e.retry_after is not None and e.retry_after > 0, e
    return ok, limited


# --------------------------------------------------------------------------- item 17


async def test_a_burst_of_group_updates_is_rate_limited_by_the_rows_it_fans_out_to(
    tmp_path: Path,
) -> None:
    members = [f"member{i}" for i in range(9)]
    async with social_server(
        tmp_path,
        max_group_size=10,
        write_rows_burst=40.0,
        write_rows_rate=0.5,
        write_burst=1000.0,
        write_rate=1000.0,
    ) as net:
        await net.register("alice", *members)
        alice = await net.user("alice")
        info = await alice.create_group("big", members)  # 10 rows: 30 left
        answers = await pipeline(
            alice, [GroupUpdate(rid=alice.rid(), group=info.group, name=f"n{i}") for i in range(60)]
        )
        ok, limited = split(answers)
        # 10 rows each (one per member): 3 fit, and a fourth if the slow refill allowed
        assert 3 <= len(ok) <= 4, answers
        assert len(limited) == 60 - len(ok)
        # the member's log holds the created event and only the updates that were let in
        m0 = await net.user("member0")
        events = [u for u in await m0.log_entries() if u.kind == UpdateKind.MESSAGE]
        assert len(events) == 1 + len(ok)
        # the same row budget covers SEND: a group message would write 10 more rows
        refused = await alice.request(alice.group_msg(info.group, "hi"))
        assert isinstance(refused, Error) and refused.code == ErrorCode.RATE_LIMITED
        assert refused.retry_after is not None and refused.retry_after > 0


async def test_a_contact_request_cancel_loop_is_rate_limited(tmp_path: Path) -> None:
    async with social_server(tmp_path, write_burst=20.0, write_rate=0.5) as net:
        mallory, victim = await net.users("mallory", "victim")
        msgs: list[Message] = []
        for _ in range(50):
            msgs.append(ContactRequest(rid=mallory.rid(), user="victim"))
            msgs.append(ContactCancel(rid=mallory.rid(), user="victim"))
        ok, limited = split(await pipeline(mallory, msgs))
        assert 20 <= len(ok) <= 21, (len(ok), len(limited))  # the burst, maybe one refill
        # the victim's log got one entry per request let in, not 100
        contact = [u for u in await victim.log_entries() if u.kind == UpdateKind.CONTACT]
        assert len(contact) <= len(ok)


async def test_every_other_write_counts_against_the_write_budget(tmp_path: Path) -> None:
    async with social_server(tmp_path, write_burst=3.0, write_rate=0.01) as net:
        alice, _bob = await net.users("alice", "bob")
        assert isinstance(await alice.call(SetPrivacy, presence="nobody"), Ok)
        await alice.ok(ContactRequest, user="bob")
        await alice.ok(ContactCancel, user="bob")
        for cls, fields in (
            (SetPrivacy, {"presence": "everyone"}),
            (ContactRequest, {"user": "bob"}),
            (GroupCreate, {"name": "g", "members": ()}),
        ):
            err = await alice.fail(cls, ErrorCode.RATE_LIMITED, **fields)
            assert err.retry_after is not None and err.retry_after > 1


# --------------------------------------------------------------------------- item 22


async def test_oversize_group_create_is_refused_before_anything_is_queued_or_looked_up(
    tmp_path: Path,
) -> None:
    async with social_server(tmp_path, max_group_size=5) as net:
        alice, _bob = await net.users("alice", "bob")
        info = await alice.create_group("small", ["bob"])
        server = net.srv.server
        assert server is not None
        store = server.store
        calls: list[str] = []
        for owner, name in (
            (store, "submit"),
            (store.writer, "call"),
            (store, "user_id"),
            (store, "user_by_name"),
            (store, "group_state"),
        ):
            real = getattr(owner, name)

            def counted(*a: Any, _real: Any = real, _name: str = name, **kw: Any) -> Any:
                calls.append(_name)
                return _real(*a, **kw)

            setattr(owner, name, counted)
        unknown = tuple(f"ghost{i}" for i in range(10_000))
        err = await alice.fail(GroupCreate, ErrorCode.GROUP_FULL, name="huge", members=unknown)
        assert "5" in err.message
        # five distinct names besides the creator: six members, one too many
        await alice.fail(
            GroupCreate,
            ErrorCode.GROUP_FULL,
            name="six",
            members=("alice", "a1", "a2", "a3", "a4", "a5", "a5"),
        )
        await alice.fail(
            GroupAdd,
            ErrorCode.GROUP_FULL,
            group=info.group,
            users=tuple(f"ghost{i}" for i in range(5)),
        )
        assert calls == []
        # at the bound the request goes on to the writer as before (here: unknown users)
        await alice.fail(
            GroupCreate, ErrorCode.UNKNOWN_USER, name="five", members=("a1", "a2", "a3", "a4")
        )
        assert "submit" in calls


# --------------------------------------------------------------------------- item 18


async def test_list_groups_is_paged_in_ascending_group_id(tmp_path: Path) -> None:
    async with social_server(tmp_path) as net:
        alice, bob = await net.users("alice", "bob")
        ids = [(await alice.create_group(f"g{i}", ["bob"])).group for i in range(5)]
        pages: list[GroupList] = []
        after: int | None = None
        while True:
            page = await bob.get(ListGroups, GroupList, limit=2, after=after)
            pages.append(page)
            if not page.more:
                break
            after = page.groups[-1].group
        assert [[g.group for g in p.groups] for p in pages] == [ids[0:2], ids[2:4], ids[4:]]
        assert [p.more for p in pages] == [True, True, False]
        whole = await bob.get(ListGroups, GroupList)  # default page: 100
        assert [g.group for g in whole.groups] == ids and not whole.more
        await bob.fail(ListGroups, ErrorCode.INVALID_FIELD, limit=501)


async def test_client_library_lists_every_group_across_pages(tmp_path: Path) -> None:
    async with social_server(tmp_path, max_groups_owned=200) as net:
        alice, _bob = await net.users("alice", "bob")
        answers = await pipeline(
            alice,
            [GroupCreate(rid=alice.rid(), name=f"g{i}", members=("bob",)) for i in range(101)],
        )
        assert all(isinstance(a, GroupInfo) for a in answers)
        ids = [a.group for a in answers if isinstance(a, GroupInfo)]
        async with Client(
            net.srv.host, net.srv.port, username="bob", password=PASSWORD, device="lib"
        ) as bob:
            groups = await bob.groups()  # two pages of LIST_GROUPS (100 + 1)
            assert [g.group for g in groups] == ids
            page, more = await bob.groups_page(limit=3, after=ids[-3])
            assert [g.group for g in page] == ids[-2:] and not more


async def test_privacy_groups_says_who_may_add_me(tmp_path: Path) -> None:
    async with social_server(tmp_path) as net:
        await net.register("alice", "bob", "victim", open_groups=False)
        alice, bob, victim = [await net.user(n) for n in ("alice", "bob", "victim")]
        settings = await victim.get(GetPrivacy, Privacy)
        assert settings.groups == "contacts"  # the default
        # a stranger cannot add the victim, by GROUP_CREATE or GROUP_ADD
        err = await alice.fail(GroupCreate, ErrorCode.NOT_ALLOWED, name="spam", members=("victim",))
        assert "victim" in err.message
        info = await alice.create_group("mine", [])
        await alice.fail(GroupAdd, ErrorCode.NOT_ALLOWED, group=info.group, users=("victim",))
        # a contact can
        await make_contacts(bob, victim)
        await bob.create_group("friends", ["victim"])
        # "nobody": not even a contact; "everyone": even a stranger
        await victim.ok(SetPrivacy, groups="nobody")
        assert (await victim.get(GetPrivacy, Privacy)).groups == "nobody"
        await bob.fail(GroupCreate, ErrorCode.NOT_ALLOWED, name="f2", members=("victim",))
        await victim.ok(SetPrivacy, groups="everyone")
        await alice.ok(GroupAdd, group=info.group, users=("victim",))
        # the setting is stored, not only cached
        await net.srv.restart()
        victim = await net.user("victim")
        assert (await victim.get(GetPrivacy, Privacy)).groups == "everyone"


# --------------------------------------------------------------------------- item 16


def assert_limit(err: Error, setting: str, value: int) -> None:
    assert err.data == {"limit": setting, "max": value}, err


async def test_groups_owned_and_joined_are_bounded(tmp_path: Path) -> None:
    async with social_server(tmp_path, max_groups_owned=2, max_groups_joined=3) as net:
        alice, bob, carol = await net.users("alice", "bob", "carol")
        await alice.create_group("g1", ["bob"])
        await alice.create_group("g2", ["bob"])
        assert_limit(
            await alice.fail(GroupCreate, ErrorCode.LIMIT_REACHED, name="g3", members=()),
            "max_groups_owned",
            2,
        )
        g3 = (await carol.create_group("c1", ["bob"])).group  # bob: 3 groups joined
        err = await carol.fail(GroupCreate, ErrorCode.LIMIT_REACHED, name="c2", members=("bob",))
        assert_limit(err, "max_groups_joined", 3)
        assert "bob" in err.message
        c2 = (await carol.create_group("c2", [])).group
        err = await carol.fail(GroupAdd, ErrorCode.LIMIT_REACHED, group=c2, users=("bob",))
        assert "bob" in err.message
        # leaving makes room again
        await bob.ok(GroupLeave, group=g3)
        await carol.ok(GroupAdd, group=c2, users=("bob",))
        # a transfer to a user who owns the most groups already is refused
        await carol.ok(GroupAdd, group=c2, users=("alice",))
        assert_limit(
            await carol.fail(GroupTransfer, ErrorCode.LIMIT_REACHED, group=c2, user="alice"),
            "max_groups_owned",
            2,
        )
        # the counts are read from the database after a restart
        await net.srv.restart()
        alice, bob = await net.user("alice"), await net.user("bob")
        await alice.fail(GroupCreate, ErrorCode.LIMIT_REACHED, name="g3", members=())
        await bob.fail(GroupCreate, ErrorCode.LIMIT_REACHED, name="b1", members=())


async def test_contacts_and_pending_requests_are_bounded(tmp_path: Path) -> None:
    async with social_server(tmp_path, max_contacts=1, max_outgoing_requests=2) as net:
        alice, bob, carol, _dave, _erin = await net.users("alice", "bob", "carol", "dave", "erin")
        await make_contacts(alice, bob)
        assert_limit(
            await alice.fail(ContactRequest, ErrorCode.LIMIT_REACHED, user="carol"),
            "max_contacts",
            1,
        )
        # carol may ask, but alice cannot accept: she is at the bound
        await carol.ok(ContactRequest, user="alice")
        err = await alice.fail(ContactAccept, ErrorCode.LIMIT_REACHED, user="carol")
        assert_limit(err, "max_contacts", 1)
        await carol.ok(ContactCancel, user="alice")
        # pending outgoing requests
        await carol.ok(ContactRequest, user="dave")
        await carol.ok(ContactRequest, user="erin")
        assert_limit(
            await carol.fail(ContactRequest, ErrorCode.LIMIT_REACHED, user="bob"),
            "max_outgoing_requests",
            2,
        )
        await carol.ok(ContactCancel, user="erin")
        await carol.ok(ContactRequest, user="bob")
