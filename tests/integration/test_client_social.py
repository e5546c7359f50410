"""The client library's social layer against a real server: groups, receipts, the chat
list, contacts and blocking, typing, presence, profiles and privacy, and the CLI commands.

Every wait is for an event (or a process line) under a generous timeout; nothing sleeps
and hopes. The server publishes presence every 0.2 s here so that presence tests are quick.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from liaotian.client import (
    CaughtUp,
    Client,
    ContactEvent,
    ErrorCode,
    GroupChanged,
    MessageReceived,
    PresenceChanged,
    ReadReceipt,
    RequestError,
    TypingEvent,
    register,
)
from liaotian.server.testing import RunningServer, run_server

WAIT = 15.0  # seconds: generous upper bound for any single expected event
PASSWORD = "correct horse battery"

E = TypeVar("E")


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with run_server(tmp_path, presence_interval=0.2) as srv:
        yield srv


async def make_users(srv: RunningServer, *names: str, open_groups: bool = True) -> None:
    """Register the names; open_groups sets their privacy `groups` to "everyone" (written
    into the database before the server has loaded their settings), so these tests can
    add users who are not the adder's contacts."""
    for name in names:
        assert await register(srv.host, srv.port, name, PASSWORD) == name
    if open_groups:
        assert srv.server is not None
        marks = ",".join("?" * len(names))

        def op(db: Any) -> None:
            db.execute(f"UPDATE users SET privacy_groups = 0 WHERE username IN ({marks})", names)

        await srv.server.store.run_in_commit(op)


def client(srv: RunningServer, user: str, **options: Any) -> Client:
    options.setdefault("password", PASSWORD)
    return Client(srv.host, srv.port, username=user, **options)


async def next_of(
    c: Client, kind: type[E], pred: Callable[[E], bool] = lambda e: True, timeout: float = WAIT
) -> E:
    """The next event of type `kind` that satisfies `pred`, skipping all others."""
    async with asyncio.timeout(timeout):
        async for event in c:
            if isinstance(event, kind) and pred(event):
                return event
    raise AssertionError("event stream ended")


async def next_message(c: Client, timeout: float = WAIT) -> MessageReceived:
    return await next_of(c, MessageReceived, timeout=timeout)


async def next_in_group(c: Client, group: int) -> MessageReceived:
    return await next_of(c, MessageReceived, lambda e: e.message.group == group)


# ---------------------------------------------------------------------- groups


async def test_group_create_send_receive_and_events(server: RunningServer) -> None:
    await make_users(server, "alice", "bob", "carol", "dave")
    async with (
        client(server, "alice") as alice,
        client(server, "bob") as bob,
        client(server, "carol") as carol,
    ):
        info = await alice.create_group("team", ["bob", "carol"], topic="launch")
        g = info.group
        assert (info.name, info.topic, info.owner) == ("team", "launch", "alice")
        assert {(m.user, m.role) for m in info.members} == {
            ("alice", "owner"),
            ("bob", "member"),
            ("carol", "member"),
        }

        # Every member learns of the group through its "created" timeline event, which
        # is a GroupChanged event, not a message.
        for c in (bob, carol):
            ev = await next_of(
                c,
                GroupChanged | MessageReceived,  # type: ignore[arg-type]
                lambda e: e.message.group == g,
            )
            assert isinstance(ev, GroupChanged) and ev.is_membership
            assert ev.message.conv == g and ev.message.text == "" and ev.group == g
            ge = ev.change
            assert ge.type == "created" and ge.actor == "alice"
            assert (ge.name, set(ge.users)) == ("team", {"alice", "bob", "carol"})

        sent = await alice.send_group(g, "hello team", meta={"k": 1})
        assert sent.conv == g and not sent.duplicate
        for c in (bob, carol):
            got = await next_in_group(c, g)
            m = got.message
            assert (m.sender, m.group, m.to, m.text, m.meta, m.pos, m.event) == (
                "alice",
                g,
                "",
                "hello team",
                {"k": 1},
                sent.pos,
                None,
            )
        reply = await bob.send_group(g, "hi alice")
        assert reply.pos == sent.pos + 1  # one order for all members
        for c in (alice, carol):
            assert (await next_message(c)).message.text == "hi alice"

        # Roles: a member may not add; the owner may.
        with pytest.raises(RequestError) as exc:
            await bob.add_members(g, ["dave"])
        assert exc.value.code == ErrorCode.FORBIDDEN
        pos = await alice.add_members(g, ["dave"])
        assert pos == reply.pos + 1
        added = await next_of(bob, GroupChanged)
        assert (added.type, added.actor, added.users) == ("added", "alice", ("dave",))
        assert added.message.pos == pos and added.is_membership

        # The newcomer sees the timeline from the event that added them.
        async with client(server, "dave") as dave:
            page = await dave.history_group(g)
            assert page.messages[0].pos == pos
            assert page.messages[0].event is not None

        page = await carol.history_group(g)
        assert [m.text for m in page.messages if m.event is None] == ["hello team", "hi alice"]
        assert [m.event["type"] for m in page.messages if m.event] == ["created", "added"]

        await alice.update_group(g, name="crew")
        renamed = await next_of(carol, GroupChanged, lambda e: e.message.pos > pos)
        assert (renamed.type, renamed.change.name) == ("renamed", "crew")
        assert not renamed.is_membership
        summaries = {s.group: s for s in await carol.groups()}
        assert summaries[g].name == "crew" and summaries[g].role == "member"
        assert summaries[g].members == 4
        info = await bob.group_info(g)
        assert info.name == "crew" and info.topic == "launch" and len(info.members) == 4


async def test_removed_member_gets_not_member_afterwards(server: RunningServer) -> None:
    await make_users(server, "alice", "bob", "carol")
    async with (
        client(server, "alice") as alice,
        client(server, "bob") as bob,
        client(server, "carol") as carol,
    ):
        g = (await alice.create_group("team", ["bob", "carol"])).group
        await alice.remove_member(g, "carol")
        # The removed member learns it (the event is in their log), then nothing more.
        ev = await next_of(carol, GroupChanged, lambda e: e.type == "removed")
        assert ev.users == ("carol",) and ev.actor == "alice"
        removed = await next_of(bob, GroupChanged, lambda e: e.type == "removed")
        assert removed.message.pos == ev.message.pos

        for call in (
            lambda: carol.send_group(g, "still here?"),
            lambda: carol.history_group(g),
            lambda: carol.group_info(g),
            lambda: carol.mark_read(g, 1),
            lambda: carol.receipts(g),
        ):
            with pytest.raises(RequestError) as exc:
                await call()
            assert exc.value.code == ErrorCode.NOT_MEMBER
        assert [s.group for s in await carol.groups()] == []

        # The group goes on without carol: her next event is a direct message, not the
        # group message sent before it.
        await alice.send_group(g, "after carol")
        await bob.send("carol", "direct")
        got = await next_message(carol)
        assert (got.message.text, got.message.group) == ("direct", None)
        assert (await next_message(bob)).message.text == "after carol"

        # The owner has to hand over before leaving.
        with pytest.raises(RequestError) as exc:
            await alice.leave_group(g)
        assert exc.value.code == ErrorCode.CONFLICT
        await alice.transfer_group(g, "bob")
        await alice.leave_group(g)
        info = await bob.group_info(g)
        assert info.owner == "bob" and [m.user for m in info.members] == ["bob"]


# ---------------------------------------------------------------------- read receipts


async def test_read_receipts_reach_the_sender(server: RunningServer) -> None:
    await make_users(server, "alice", "bob")
    async with client(server, "alice") as alice, client(server, "bob") as bob:
        # not contacts: the defaults hide read (receipts) and delivered (receipts, presence)
        await bob.set_privacy(presence="everyone", receipts="everyone")
        first = await alice.send("bob", "one")
        second = await alice.send("bob", "two")
        conv = first.conv
        got = [await next_message(bob), await next_message(bob)]
        assert [g.message.pos for g in got] == [first.pos, second.pos]

        await bob.mark_read(conv, second.pos)
        receipt = await next_of(alice, ReadReceipt)
        assert receipt == ReadReceipt(receipt.seq, conv, "bob", second.pos)
        own = await next_of(bob, ReadReceipt)  # the reader's own log has it too
        assert (own.conv, own.user, own.pos) == (conv, "bob", second.pos)

        # Delivered follows bob's acknowledged position; a round trip after the ACK makes
        # sure the server has it.
        await bob.ack()
        await bob.contacts()
        r = await alice.receipts(conv)
        assert r.conv == conv
        assert [(m.user, m.pos) for m in r.read] == [("bob", second.pos)]
        assert [(m.user, m.pos) for m in r.delivered] == [("bob", second.pos)]
        # Markers only move forward; beyond the end is refused.
        await bob.mark_read(conv, first.pos)
        assert [m.pos for m in (await alice.receipts(conv)).read] == [second.pos]
        with pytest.raises(RequestError) as exc:
            await bob.mark_read(conv, second.pos + 5)
        assert exc.value.code == ErrorCode.INVALID_FIELD


async def test_group_read_markers_are_not_fanned_out(server: RunningServer) -> None:
    await make_users(server, "alice", "bob")
    async with client(server, "alice") as alice, client(server, "bob") as bob:
        await bob.set_privacy(receipts="everyone")  # not contacts: the default hides them
        g = (await alice.create_group("team", ["bob"])).group
        sent = await alice.send_group(g, "read me")
        await next_message(bob)
        await bob.mark_read(g, sent.pos)
        await bob.send_group(g, "done")
        # alice's next log event after the "created" event is bob's message, no receipt.
        nxt = await next_of(alice, MessageReceived | ReadReceipt)  # type: ignore[arg-type]
        assert isinstance(nxt, MessageReceived) and nxt.message.text == "done"
        r = await alice.receipts(g)
        assert [(m.user, m.pos) for m in r.read] == [("bob", sent.pos)]


# ---------------------------------------------------------------------- chat list


async def test_conversations_newest_first_with_unread_counts(server: RunningServer) -> None:
    await make_users(server, "alice", "bob", "carol")
    async with (
        client(server, "alice") as alice,
        client(server, "bob") as bob,
        client(server, "carol") as carol,
    ):
        # Conversation ids and last-message times both grow in this order, so the list
        # order is fixed even when two timestamps are equal.
        a1 = await alice.send("bob", "a->b 1")
        await alice.send("bob", "a->b 2")
        await bob.send("alice", "b->a")
        c1 = await carol.send("alice", "c->a 1")
        await carol.send("alice", "c->a 2")
        c3 = await carol.send("alice", "c->a 3")
        g = (await bob.create_group("team", ["alice", "carol"])).group
        g1 = await bob.send_group(g, "in the group")

        page = await alice.conversations()
        convs = page.conversations
        assert not page.more
        assert [c.conv for c in convs] == [g, c1.conv, a1.conv]
        keys = [(c.ts, c.conv) for c in convs]
        assert keys == sorted(keys, reverse=True)
        grp, with_carol, with_bob = convs
        assert (grp.kind, grp.name, grp.group, grp.peer) == ("group", "team", g, None)
        assert grp.last is not None and grp.last.text == "in the group"
        assert grp.last.pos == g1.pos
        assert (with_carol.kind, with_carol.name, with_carol.peer) == ("direct", "carol", "carol")
        assert with_carol.unread == 3 and with_carol.read == 0
        assert grp.unread == 1  # bob's message; the "created" event is not a message
        assert with_bob.unread == 1  # alice's own messages never count
        assert with_bob.last is not None and with_bob.last.text == "b->a"

        await alice.mark_read(c1.conv, c3.pos - 1)
        entries = {c.conv: c for c in (await alice.conversations()).conversations}
        assert entries[c1.conv].unread == 1 and entries[c1.conv].read == c3.pos - 1

        # Paging: one entry at a time gives the same list.
        first = await alice.conversations(limit=1)
        assert first.more and [c.conv for c in first.conversations] == [g]
        rest = await alice.conversations(limit=5, before=first.conversations[-1])
        assert [c.conv for c in rest.conversations] == [c1.conv, a1.conv]
        assert [c.conv async for c in alice.iter_conversations(page_size=1)] == [
            g,
            c1.conv,
            a1.conv,
        ]


# ---------------------------------------------------------------------- contacts


async def test_contact_request_accept_flow(server: RunningServer) -> None:
    await make_users(server, "alice", "bob")
    async with client(server, "alice") as alice, client(server, "bob") as bob:
        await alice.contact_request("bob")
        ev = await next_of(bob, ContactEvent)
        assert (ev.event, ev.user) == ("request", "alice")
        mine = await next_of(alice, ContactEvent)
        assert (mine.event, mine.user) == ("changed", "bob")  # the actor's own copy
        assert (await bob.contacts()).incoming == ("alice",)
        assert (await alice.contacts()).outgoing == ("bob",)
        await alice.contact_request("bob")  # pending already: idempotent

        await bob.contact_accept("alice")
        ev = await next_of(alice, ContactEvent)
        assert (ev.event, ev.user) == ("accepted", "bob")
        mine = await next_of(bob, ContactEvent)
        assert (mine.event, mine.user) == ("changed", "alice")
        for c, other in ((alice, "bob"), (bob, "alice")):
            lst = await c.contacts()
            assert (lst.contacts, lst.incoming, lst.outgoing, lst.blocked) == ((other,), (), (), ())

        with pytest.raises(RequestError) as exc:
            await alice.contact_request("bob")  # already contacts
        assert exc.value.code == ErrorCode.CONFLICT
        with pytest.raises(RequestError) as exc:
            await bob.contact_accept("alice")  # nothing pending any more
        assert exc.value.code == ErrorCode.CONFLICT

        await bob.contact_remove("alice")
        ev = await next_of(alice, ContactEvent)
        assert (ev.event, ev.user) == ("removed", "bob")
        assert (await alice.contacts()).contacts == ()


async def test_contact_events_are_synced_exactly_once(server: RunningServer) -> None:
    """CONTACT and READ entries wait in the log for an offline device, and the cursor
    covers them: a second run of the same device does not get them again."""
    await make_users(server, "alice", "bob")
    async with client(server, "alice") as alice:
        await alice.contact_request("bob")
        sent = await alice.send("bob", "hi")
    from liaotian.client import MemoryStore

    store = MemoryStore()
    async with client(server, "bob", store=store) as bob:
        got = [await next_of(bob, ContactEvent), await next_message(bob)]
        assert (got[0].event, got[1].message.text) == ("request", "hi")
        await bob.mark_read(sent.conv, sent.pos)
        own = await next_of(bob, ReadReceipt)
        assert own.pos == sent.pos
    async with client(server, "bob", store=store) as bob:
        # CaughtUp is the first event: the SYNC reached the head and replayed nothing.
        first = await asyncio.wait_for(bob.__anext__(), WAIT)
        assert isinstance(first, CaughtUp) and first.head >= own.seq
        assert bob.cursor >= own.seq


# ---------------------------------------------------------------------- blocking


async def test_block_refuses_direct_messages(server: RunningServer) -> None:
    await make_users(server, "alice", "carol")
    async with client(server, "alice") as alice, client(server, "carol") as carol:
        await carol.block("alice")
        await carol.block("alice")  # idempotent
        assert (await carol.contacts()).blocked == ("alice",)
        with pytest.raises(RequestError) as exc:
            await alice.send("carol", "hey")
        assert exc.value.code == ErrorCode.NOT_ALLOWED
        with pytest.raises(RequestError) as exc:
            await alice.profile("carol")
        assert exc.value.code == ErrorCode.NOT_ALLOWED
        await alice.contact_request("carol")  # dropped while blocked: alice cannot tell
        assert (await alice.contacts()).outgoing == ("carol",)
        assert (await carol.contacts()).incoming == ()  # never shown while blocked
        await carol.unblock("alice")
        sent = await alice.send("carol", "hello again")
        got = await next_message(carol)
        assert got.message.cmid == sent.cmid
        # the pending request is delivered at the unblock (SPEC 22)
        assert (await carol.contacts()).incoming == ("alice",)


async def test_dropped_request_leaves_no_ghost_after_contacts(server: RunningServer) -> None:
    await make_users(server, "alice", "carol")
    async with client(server, "alice") as alice, client(server, "carol") as carol:
        await carol.block("alice")
        await alice.contact_request("carol")  # silently dropped
        await carol.unblock("alice")  # alice's pending request is delivered now
        await carol.contact_request("alice")  # so this accepts it
        lst = await alice.contacts()
        assert (lst.contacts, lst.outgoing) == (("carol",), ())
    await server.restart()
    async with client(server, "alice") as alice:
        lst = await alice.contacts()
        assert (lst.contacts, lst.incoming, lst.outgoing) == (("carol",), (), ())


async def test_contacts_only_privacy_refuses_strangers(server: RunningServer) -> None:
    await make_users(server, "alice", "bob")
    async with client(server, "alice") as alice, client(server, "bob") as bob:
        await bob.set_privacy(messages="contacts", profile="nobody")
        p = await bob.privacy()
        assert (p.presence, p.profile, p.messages) == ("contacts", "nobody", "contacts")
        with pytest.raises(RequestError) as exc:
            await alice.send("bob", "hi")
        assert exc.value.code == ErrorCode.NOT_ALLOWED
        with pytest.raises(RequestError) as exc:
            await alice.create_group("g", ["bob"])
        assert exc.value.code == ErrorCode.NOT_ALLOWED


# ---------------------------------------------------------------------- typing, presence


async def test_typing_reaches_the_peer(server: RunningServer) -> None:
    await make_users(server, "alice", "bob", "carol")
    async with (
        client(server, "alice") as alice,
        client(server, "bob") as bob,
        client(server, "carol") as carol,
    ):
        assert await alice.typing("bob")
        ev = await next_of(bob, TypingEvent)
        assert (ev.user, ev.typing, ev.group) == ("alice", True, None) and ev.ttl > 0
        assert await alice.typing("bob", typing=False)
        ev = await next_of(bob, TypingEvent)
        assert (ev.user, ev.typing) == ("alice", False)

        g = (await alice.create_group("team", ["bob", "carol"])).group
        assert await alice.typing(group=g)
        for c in (bob, carol):
            ev = await next_of(c, TypingEvent)
            assert (ev.user, ev.typing, ev.group) == ("alice", True, g)
        # Refused notices never raise: not a member, unknown user.
        await alice.typing(group=g + 1000)
        await alice.typing("nobody")
        # A blocked typist's notices are dropped; the next event bob sees is the message.
        await bob.block("alice")
        await alice.typing("bob", typing=False)
        await alice.typing("bob", typing=True)
        await carol.send("bob", "after")
        nxt = await next_of(bob, TypingEvent | MessageReceived)  # type: ignore[arg-type]
        assert isinstance(nxt, MessageReceived) and nxt.message.text == "after"


async def test_presence_change_reaches_an_online_contact(server: RunningServer) -> None:
    await make_users(server, "alice", "bob", "carol")
    async with client(server, "alice") as alice, client(server, "bob") as bob:
        await alice.contact_request("bob")
        await next_of(bob, ContactEvent)
        await bob.contact_accept("alice")
        await next_of(alice, ContactEvent, lambda e: e.event == "accepted")
        seen = {p.user: p for p in await bob.presence(["alice", "carol", "nobody"])}
        assert set(seen) == {"alice"} and seen["alice"].online  # carol: not a contact
    # Changes are coalesced per interval: a session shorter than one interval may never
    # have been announced. So start from a known state: bob online, alice offline.
    async with client(server, "bob", device="laptop") as bob:
        [entry] = await bob.presence("alice")
        assert not entry.online
        async with client(server, "alice", device="phone"):
            # (an offline notice of the first session may still be on its way: skip it)
            on = await next_of(bob, PresenceChanged, lambda e: e.online)
            assert (on.user, on.online) == ("alice", True)
        # alice's only connection closed: bob is told she went offline.
        off = await next_of(bob, PresenceChanged)
        assert (off.user, off.online) == ("alice", False) and off.last_seen > 0
        [entry] = await bob.presence("alice")
        assert not entry.online and entry.last_seen == off.last_seen


# ---------------------------------------------------------------------- profiles


async def test_profiles_and_privacy(server: RunningServer) -> None:
    await make_users(server, "alice", "bob")
    async with client(server, "alice") as alice, client(server, "bob") as bob:
        await alice.set_profile(display_name="Alice A.", status="busy")
        me = await alice.profile()
        assert (me.user, me.display_name, me.status) == ("alice", "Alice A.", "busy")
        seen = await bob.profile("alice")
        assert (seen.display_name, seen.status) == ("Alice A.", "busy")
        await alice.set_profile(status="")  # only the status changes
        assert (await bob.profile("alice")).display_name == "Alice A."
        await alice.set_privacy(profile="contacts")
        with pytest.raises(RequestError) as exc:
            await bob.profile("alice")
        assert exc.value.code == ErrorCode.NOT_ALLOWED
        with pytest.raises(RequestError) as exc:
            await bob.profile("nobody")
        assert exc.value.code == ErrorCode.UNKNOWN_USER
        p = await alice.privacy()
        assert (p.presence, p.profile, p.messages) == ("contacts", "contacts", "everyone")


# ---------------------------------------------------------------------- bot


async def test_bot_answers_in_the_group(server: RunningServer) -> None:
    from liaotian.client import Bot, Context

    await make_users(server, "alice", "echo")
    bot = Bot("echo", PASSWORD, host=server.host, port=server.port, initial_sync="all")

    @bot.on_message
    async def echo(ctx: Context) -> None:
        await ctx.reply(f"echo: {ctx.text}")

    task = asyncio.get_running_loop().create_task(bot.run_async())
    try:
        async with client(server, "alice") as alice:
            g = (await alice.create_group("bots", ["echo"])).group
            await alice.send_group(g, "hello bot")
            got = await next_of(alice, MessageReceived, lambda e: e.message.sender == "echo")
            assert (got.message.group, got.message.text) == (g, "echo: hello bot")
    finally:
        await bot.stop()
        await asyncio.wait_for(task, WAIT)


# ---------------------------------------------------------------------- CLI


class CLI:
    """Runs `python -m liaotian.client.cli` without blocking the loop the server runs in."""

    def __init__(self, srv: RunningServer, home: Path) -> None:
        self.env = {
            **os.environ,
            "XDG_CONFIG_HOME": str(home),
            "LIAOTIAN_HOST": srv.host,
            "LIAOTIAN_PORT": str(srv.port),
            "PYTHONUNBUFFERED": "1",
        }
        for var in ("LIAOTIAN_USER", "LIAOTIAN_PASSWORD"):
            self.env.pop(var, None)

    async def start(self, *args: str) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "liaotian.client.cli",
            *args,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )

    async def run(self, *args: str) -> tuple[int, str, str]:
        proc = await self.start(*args)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()


async def test_cli_groups_and_chats(server: RunningServer, tmp_path: Path) -> None:
    await make_users(server, "alice", "bob", "carol")
    cli = CLI(server, tmp_path / "home")
    code, _, err = await cli.run("login", "alice", "--password", PASSWORD)
    assert code == 0, err
    async with client(server, "bob") as bob:
        code, out, err = await cli.run(
            "group", "create", "team", "--member", "bob", "--member", "carol", "--topic", "launch"
        )
        assert code == 0, err
        found = re.search(r"created group #(\d+) \"team\"", out)
        assert found, out
        g = int(found.group(1))
        code, out, err = await cli.run("send", "--group", str(g), "hello", "from", "cli")
        assert code == 0, err
        assert f"to group #{g}" in out
        got = await next_message(bob)
        assert (got.message.group, got.message.text) == (g, "hello from cli")
        await bob.send_group(g, "hi cli")
        await bob.send("alice", "direct hi")

        code, out, err = await cli.run("chats")
        assert code == 0, err
        lines = out.splitlines()
        assert len(lines) == 2
        assert lines[0].startswith("#") and "bob" in lines[0] and "1 unread" in lines[0]
        assert f"#{g}" in lines[1] and "team (group)" in lines[1]
        assert "1 unread" in lines[1] and "bob: hi cli" in lines[1]

        code, out, err = await cli.run("history", "--group", str(g))
        assert code == 0, err
        hist = out.splitlines()
        assert hist[0].endswith('* alice created the group "team" with bob, carol')
        assert hist[1].endswith(f"alice -> #{g}: hello from cli")
        assert hist[2].endswith(f"bob -> #{g}: hi cli")

        code, out, err = await cli.run("group", "info", str(g))
        assert code == 0 and "owner:   alice" in out and "launch" in out, err
        code, out, err = await cli.run("group", "list")
        assert code == 0 and "team" in out and "owner" in out, err
        code, out, err = await cli.run("read", str(g), "3")
        assert code == 0, err
        code, out, err = await cli.run("receipts", str(g))
        assert code == 0 and "bob" in out and "carol" in out, err
        code, out, err = await cli.run("group", "remove", str(g), "carol")
        assert code == 0, err
        code, out, err = await cli.run("contact", "request", "bob")
        assert code == 0 and "bob" in out, err
        code, out, err = await cli.run("contacts")
        assert code == 0 and "outgoing requests: bob" in out, err
        code, out, err = await cli.run("profile", "set", "--name", "Alice")
        assert code == 0, err
        code, out, err = await cli.run("profile")
        assert code == 0 and "name:   Alice" in out, err
        code, out, err = await cli.run("privacy", "--presence", "nobody")
        assert code == 0 and "presence: nobody" in out, err
        code, out, err = await cli.run("presence", "bob")
        assert code == 0 and "bob" in out, err
        code, out, err = await cli.run("block", "carol")
        assert code == 0, err
    code, _, err = await cli.run("send", "--group", "999999", "x")
    assert code == 1 and "NOT_MEMBER" in err


async def test_cli_listen_prints_social_events(server: RunningServer, tmp_path: Path) -> None:
    await make_users(server, "alice", "bob")
    cli = CLI(server, tmp_path / "home")
    code, _, err = await cli.run("login", "alice", "--password", PASSWORD)
    assert code == 0, err
    async with client(server, "bob") as bob:
        g = (await bob.create_group("team", ["alice"])).group
        proc = await cli.start("listen")
        try:
            assert proc.stderr is not None and proc.stdout is not None

            async def line() -> str:
                raw = await asyncio.wait_for(proc.stdout.readline(), WAIT)  # type: ignore[union-attr]
                return raw.decode().rstrip("\n")

            ready = await asyncio.wait_for(proc.stderr.readline(), WAIT)
            assert b"listening as alice" in ready
            assert (await line()).endswith(
                f'] #{g} team: * bob created the group "team" with alice'
            )
            await bob.send_group(g, "hi group")
            assert (await line()).endswith(f"] bob -> #{g} team: hi group")
            await bob.update_group(g, name="crew")
            assert (await line()).endswith(f'] #{g} crew: * bob renamed the group to "crew"')
            await bob.send_group(g, "renamed")
            assert (await line()).endswith(f"] bob -> #{g} crew: renamed")
            sent = await bob.send("alice", "direct")
            assert (await line()).endswith("] bob -> alice: direct")
            await bob.contact_request("alice")
            assert (await line()).startswith("(contact) bob asks to be your contact")
            await bob.typing(group=g)
            assert await line() == f"(typing) bob is typing in #{g} crew"
            async with client(server, "alice", device="phone") as phone:
                await phone.mark_read(sent.conv, sent.pos)
            assert await line() == f"(read) you read conversation #{sent.conv} up to #{sent.pos}"
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
