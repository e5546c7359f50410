"""The social layer in the client, without sockets: READ (kind 2) and CONTACT (kind 3)
entries through the exactly-once cursor, typing and presence pushes as ephemeral events,
group sends, the typed request methods, typing throttling, the bot in groups and the CLI's
formatting and arguments for the new commands."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from liaotian.client import cli
from liaotian.client.bot import Bot, Context
from liaotian.client.client import Client
from liaotian.client.cursor import (
    CursorTracker,
    MemoryStore,
    SessionState,
    Verdict,
    classify_update,
)
from liaotian.client.events import (
    ContactEvent,
    GroupChanged,
    GroupEvent,
    MessageReceived,
    PresenceChanged,
    ReadReceipt,
    Resync,
    TypingEvent,
    event_from_update,
)
from liaotian.client.outbox import PendingSend
from liaotian.protocol import (
    ChatMessage,
    Error,
    ErrorCode,
    Message,
    ProtocolError,
    RequestError,
    Send,
    Sent,
    State,
    Sync,
    Update,
    Updates,
)
from liaotian.protocol.social import (
    ConversationList,
    ConversationSummary,
    GetPresence,
    GroupAdd,
    GroupCreate,
    GroupInfo,
    GroupMember,
    ListConversations,
    Ok,
    Presence,
    PresenceEntry,
    PresenceList,
    Privacy,
    SetPrivacy,
    Typing,
    TypingNotice,
)

# ---------------------------------------------------------------------- fixtures


class FakeConn:
    """The parts of ClientConnection the client uses; `answer` plays the server for
    requests."""

    def __init__(self, answer: Callable[[Message], Message] | None = None) -> None:
        self.sent: list[Message] = []
        self.requests: list[Message] = []
        self.closed = False
        self.state = State.AUTHENTICATED
        self.server_limits: dict[str, Any] = {}
        self._rid = 100
        self.answer = answer

    def next_rid(self) -> int:
        self._rid += 1
        return self._rid

    def send_nowait(self, msg: Message) -> bool:
        self.sent.append(msg)
        return True

    def close_nowait(self, code: int = 1000, reason: str = "") -> None:
        self.closed = True

    async def send_drain(self) -> None:
        pass

    async def request(self, msg: Message) -> Message:
        self.requests.append(msg)
        assert self.answer is not None, f"unexpected request {msg!r}"
        got = self.answer(msg)
        if isinstance(got, Error):
            raise RequestError(ErrorCode(got.code), got.message)
        return got

    @property
    def typing(self) -> list[Typing]:
        return [m for m in self.sent if isinstance(m, Typing)]

    @property
    def syncs(self) -> list[Sync]:
        return [m for m in self.sent if isinstance(m, Sync)]


def make_client(
    cursor: int = 0, answer: Callable[[Message], Message] | None = None, **options: Any
) -> tuple[Client, FakeConn]:
    store = MemoryStore(SessionState(username="alice", device="d", token="t", cursor=cursor))
    client = Client("127.0.0.1", 1, store=store, **options)
    conn = FakeConn(answer)
    session = client._session
    session._conn = conn  # type: ignore[assignment]
    session.inbox.start_at(cursor)
    session._user = "alice"
    session._live = True
    return client, conn


def feed(client: Client, conn: FakeConn, msg: Message) -> bool:
    return client._session._on_message(conn, msg)  # type: ignore[arg-type]


def chat(
    seq: int,
    sender: str = "bob",
    cmid: str | None = None,
    group: int | None = None,
    event: dict[str, Any] | None = None,
) -> Update:
    m = ChatMessage(
        id=seq,
        conv=group or 1,
        pos=seq,
        sender=sender,
        to="" if group else "alice",
        ts=seq,
        cmid=cmid if cmid is not None else f"c{seq}",
        text=f"m{seq}",
        group=group,
        event=event,
    )
    return Update(seq=seq, kind=1, message=m)


def read(seq: int, conv: int = 1, user: str = "bob", pos: int = 1) -> Update:
    return Update(seq=seq, kind=2, data={"conv": conv, "user": user, "pos": pos})


def contact(seq: int, event: str = "request", user: str = "bob") -> Update:
    return Update(seq=seq, kind=3, data={"event": event, "user": user})


def push(*updates: Update) -> Updates:
    return Updates(rid=0, updates=updates, head=max(u.seq for u in updates))


async def take_all(client: Client) -> list[Any]:
    out = []
    while len(client._session.inbox.events):
        out.append(await client.__anext__())
    return out


# ---------------------------------------------------------------------- decoding


def test_event_from_update_decodes_read_and_contact() -> None:
    assert event_from_update(read(4, conv=9, user="bob", pos=3)) == ReadReceipt(4, 9, "bob", 3)
    assert event_from_update(contact(5, "accepted", "carol")) == ContactEvent(
        5, "accepted", "carol"
    )
    assert event_from_update(contact(6, "changed", "carol")).event == "changed"  # type: ignore[union-attr]
    m = event_from_update(chat(7))
    assert isinstance(m, MessageReceived) and m.seq == 7
    # Unreadable data and unknown kinds give no event.
    assert (
        event_from_update(Update(seq=8, kind=2, data={"conv": "x", "user": "b", "pos": 1})) is None
    )
    assert event_from_update(Update(seq=8, kind=2, data={"conv": 1, "pos": 1})) is None
    assert event_from_update(Update(seq=8, kind=3, data={"event": 1, "user": "b"})) is None
    assert event_from_update(Update(seq=8, kind=77, data={})) is None


def test_wire_updates_of_kinds_2_and_3_decode() -> None:
    u = Update.from_wire([3, 2, {"conv": 5, "user": "bob", "pos": 2}], 0)
    assert event_from_update(u) == ReadReceipt(3, 5, "bob", 2)
    u = Update.from_wire([4, 3, {"event": "request", "user": "bob"}], 0)
    assert event_from_update(u) == ContactEvent(4, "request", "bob")


def test_classify_delivers_kinds_2_and_3() -> None:
    t = CursorTracker(2)
    assert classify_update(read(3), t, "alice", set()) is Verdict.DELIVER
    assert classify_update(contact(4), t, "alice", set()) is Verdict.DELIVER
    assert classify_update(read(2), t, "alice", set()) is Verdict.DUPLICATE
    assert (
        classify_update(Update(seq=5, kind=99, data={}), t, "alice", set()) is Verdict.UNKNOWN_KIND
    )


def test_group_event_view() -> None:
    u = chat(
        3,
        sender="alice",
        cmid="",
        group=7,
        event={"type": "added", "users": ["bob", "carol"], "x": 1},
    )
    assert u.message is not None
    ev = MessageReceived(3, u.message)
    assert ev.group == 7 and ev.is_event
    ge = ev.group_event
    assert ge is not None
    assert (ge.type, ge.group, ge.pos, ge.actor, ge.users) == (
        "added",
        7,
        3,
        "alice",
        ("bob", "carol"),
    )
    assert ge.raw == {"type": "added", "users": ["bob", "carol"], "x": 1}
    plain = MessageReceived(4, chat(4, group=7).message)  # type: ignore[arg-type]
    assert plain.group == 7 and not plain.is_event and plain.group_event is None
    role = GroupEvent.from_message(
        chat(5, group=7, cmid="", event={"type": "role", "user": "bob", "role": "admin"}).message
    )  # type: ignore[arg-type]
    assert role is not None and (role.user, role.role, role.users) == ("bob", "admin", ())


# ---------------------------------------------------------------------- log events


async def test_read_and_contact_entries_are_delivered_in_log_order_once() -> None:
    client, conn = make_client()
    feed(client, conn, push(chat(1), read(2, pos=1), contact(3)))
    feed(client, conn, push(read(2, pos=1), contact(3), chat(4, group=5)))  # repeats
    events = await take_all(client)
    assert [type(e).__name__ for e in events] == [
        "MessageReceived",
        "ReadReceipt",
        "ContactEvent",
        "MessageReceived",
    ]
    assert [e.seq for e in events] == [1, 2, 3, 4]
    assert events[1] == ReadReceipt(2, 1, "bob", 1)
    assert events[2] == ContactEvent(3, "request", "bob")
    assert events[3].message.group == 5
    assert client.cursor == 4
    feed(client, conn, push(read(3), contact(4)))  # below the cursor now
    assert await take_all(client) == []


async def test_cursor_covers_log_events_only_once_handed() -> None:
    client, conn = make_client(cursor=10)
    feed(client, conn, push(read(11), contact(12)))
    assert client.cursor == 10
    assert isinstance(await client.__anext__(), ReadReceipt)
    assert client.cursor == 11
    assert isinstance(await client.__anext__(), ContactEvent)
    assert client.cursor == 12


async def test_unreadable_log_entries_are_skipped_but_counted() -> None:
    client, conn = make_client()
    bad = Update(seq=2, kind=3, data={"event": "request"})  # no user
    feed(client, conn, push(chat(1), bad, read(3)))
    events = await take_all(client)
    assert [e.seq for e in events] == [1, 3]
    assert client.cursor == 3


async def test_sync_pages_carry_log_events_and_held_pushes_follow() -> None:
    client, conn = make_client()
    done = asyncio.get_running_loop().create_future()
    client._session.inbox.sync_done = done
    client._session.inbox.sync_initial = True
    client._session.inbox.sync_rid = 1
    feed(client, conn, push(contact(4, "accepted")))  # arrives during the SYNC: held
    feed(client, conn, Updates(rid=1, updates=(chat(1), read(2), chat(3)), head=4))
    assert done.done()
    events = await take_all(client)
    assert [e.seq for e in events] == [1, 2, 3, 4]
    assert isinstance(events[3], ContactEvent) and events[3].event == "accepted"


async def test_overflow_refetches_log_events_without_gap_or_duplicate() -> None:
    client, conn = make_client(queue_size=2)
    log = [chat(1), read(2), contact(3), read(4, pos=3), contact(5, "removed")]
    feed(client, conn, push(*log))  # 3, 4, 5 are dropped
    assert client._session.inbox.tracker is not None and client._session.inbox.tracker.overflowing
    got = [await client.__anext__()]  # now at most half full: the refetch starts
    sync = conn.syncs[-1]
    assert sync.since == 1  # from the cursor; seq 2 (still queued) is recognized as seen
    feed(client, conn, Updates(rid=sync.rid, updates=tuple(log[1:]), head=5))
    while len(got) < 5:
        got.append(await asyncio.wait_for(client.__anext__(), 5))
        while conn.syncs[-1] is not sync:  # a further refetch: answer it
            sync = conn.syncs[-1]
            feed(
                client,
                conn,
                Updates(rid=sync.rid, updates=tuple(u for u in log if u.seq > sync.since), head=5),
            )
    assert [e.seq for e in got] == [1, 2, 3, 4, 5]
    assert client.cursor == 5


# ---------------------------------------------------------------------- pushes


async def test_typing_and_presence_pushes_are_ephemeral_events() -> None:
    client, conn = make_client(cursor=3)
    assert feed(client, conn, TypingNotice(rid=0, user="bob", typing=True, ttl=6.0))
    assert feed(client, conn, TypingNotice(rid=0, user="carol", typing=False, ttl=6.0, group=9))
    assert feed(client, conn, Presence(rid=0, user="bob", online=False, last_seen=1234))
    events = await take_all(client)
    assert events == [
        TypingEvent("bob", True, 6.0, None),
        TypingEvent("carol", False, 6.0, 9),
        PresenceChanged("bob", False, 1234),
    ]
    assert client.cursor == 3  # not in the log: the cursor does not move


async def test_ephemeral_events_are_delivered_during_a_sync() -> None:
    client, conn = make_client()
    client._session.inbox.sync_rid = 1
    feed(client, conn, Presence(rid=0, user="bob", online=True, last_seen=0))
    assert await take_all(client) == [PresenceChanged("bob", True, 0)]


async def test_ephemeral_events_are_dropped_when_the_queue_is_full() -> None:
    client, conn = make_client(queue_size=2)
    feed(client, conn, push(chat(1), chat(2)))  # the queue is full
    assert feed(client, conn, TypingNotice(rid=0, user="bob", typing=True, ttl=6.0))
    tracker = client._session.inbox.tracker
    assert tracker is not None and not tracker.overflowing  # no refetch
    events = await take_all(client)
    assert [type(e) for e in events] == [MessageReceived, MessageReceived]
    assert conn.syncs == []
    feed(client, conn, Presence(rid=0, user="bob", online=True, last_seen=0))
    assert await take_all(client) == [PresenceChanged("bob", True, 0)]


async def test_ephemeral_events_can_be_switched_off() -> None:
    client, conn = make_client(ephemeral_events=False)
    feed(client, conn, TypingNotice(rid=0, user="bob", typing=True, ttl=6.0))
    feed(client, conn, Presence(rid=0, user="bob", online=True, last_seen=0))
    feed(client, conn, push(read(1)))
    assert [type(e) for e in await take_all(client)] == [ReadReceipt]


async def test_errors_without_a_request_are_consumed() -> None:
    client, conn = make_client()
    assert feed(
        client,
        conn,
        Error(rid=0, code=int(ErrorCode.RATE_LIMITED), message="slow", retry_after=0.5),
    )
    assert feed(client, conn, Error(rid=0, code=int(ErrorCode.NOT_MEMBER)))
    assert await take_all(client) == []


# ---------------------------------------------------------------------- group sends


async def test_own_group_send_is_answered_by_sent_and_never_delivered() -> None:
    client, conn = make_client()
    sent = Sent(rid=5, id=9, conv=7, pos=2, ts=1, seq=1, cmid="g", duplicate=False)
    feed(client, conn, sent)
    client._session.inbox.sync_rid = 7
    feed(
        client,
        conn,
        Updates(
            rid=7, updates=(chat(1, sender="alice", cmid="g", group=7), chat(2, group=7)), head=2
        ),
    )
    assert [e.seq for e in await take_all(client)] == [2]


async def test_a_sync_entry_resolves_a_pending_group_send() -> None:
    client, conn = make_client()
    pending = PendingSend(
        "", "g-1", "hello", {}, asyncio.get_running_loop().create_future(), group=7
    )
    client._session.outbox.pending["g-1"] = pending
    client._session.inbox.sync_rid = 50
    feed(
        client,
        conn,
        Updates(rid=50, updates=(chat(1, sender="alice", cmid="g-1", group=7),), head=1),
    )
    assert pending.result.done() and pending.result.result().seq == 1
    assert await take_all(client) == []


async def test_own_group_events_are_delivered() -> None:
    """Timeline events this user caused (cmid "") are not mistaken for pending sends."""
    client, conn = make_client()
    client._session.outbox.pending[""] = PendingSend(
        "", "", "", {}, asyncio.get_running_loop().create_future()
    )
    feed(
        client,
        conn,
        push(
            chat(
                1,
                sender="alice",
                cmid="",
                group=7,
                event={"type": "created", "name": "t", "users": ["alice"]},
            )
        ),
    )
    events = await take_all(client)
    assert len(events) == 1 and isinstance(events[0], GroupChanged)
    assert (events[0].type, events[0].actor, events[0].users) == ("created", "alice", ("alice",))


async def test_send_group_sends_the_group_field() -> None:
    def answer(msg: Message) -> Message:
        assert isinstance(msg, Send)
        return Sent(rid=1, id=1, conv=msg.group or 0, pos=4, ts=1, seq=3, cmid=msg.cmid)

    client, conn = make_client(answer=answer)
    sent = await client.send_group(7, "hi team", cmid="x1")
    assert sent.conv == 7 and sent.pos == 4
    msg = conn.requests[-1]
    assert isinstance(msg, Send)
    assert msg.group == 7 and msg.to_payload() == {"group": 7, "cmid": "x1", "text": "hi team"}
    with pytest.raises(ValueError):
        await client.send_group(0, "x")
    with pytest.raises(ValueError):
        await client.send_group("7", "x")  # type: ignore[arg-type]


# ---------------------------------------------------------------------- requests


async def test_request_methods_build_the_wire_messages() -> None:
    info = GroupInfo(
        rid=1,
        group=7,
        name="team",
        topic="",
        owner="alice",
        created=1,
        pos=1,
        members=(GroupMember(user="alice", role="owner", joined=1),),
    )

    def answer(msg: Message) -> Message:
        if isinstance(msg, GroupCreate):
            return info
        if isinstance(msg, GroupAdd):
            return Ok(rid=msg.rid, pos=5)
        if isinstance(msg, GetPresence):
            return PresenceList(
                rid=msg.rid,
                presence=tuple(PresenceEntry(user=u, online=False, last_seen=0) for u in msg.users),
            )
        if isinstance(msg, ListConversations):
            return ConversationList(rid=msg.rid, conversations=(), more=False)
        return Ok(rid=msg.rid)

    client, conn = make_client(answer=answer)
    assert await client.create_group("team", ["bob"], topic="t") == info
    assert conn.requests[-1] == GroupCreate(rid=0, name="team", members=("bob",), topic="t")
    assert await client.add_members(7, "carol") == 5  # one name is fine too
    assert conn.requests[-1] == GroupAdd(rid=0, group=7, users=("carol",))
    assert await client.remove_member(7, "carol") == 0  # no pos in the answer
    users = [f"user{i:03d}" for i in range(250)] + ["user000"]
    got = await client.presence(users)
    assert [p.user for p in got] == users[:250]  # deduplicated, in order
    assert [len(m.users) for m in conn.requests if isinstance(m, GetPresence)] == [100, 100, 50]
    assert await client.presence([]) == []
    last = ConversationSummary(conv=3, kind="direct", name="bob", ts=77, unread=0, read=0)
    await client.conversations(limit=5, before=last)
    assert conn.requests[-1] == ListConversations(rid=0, limit=5, before_ts=77, before_conv=3)
    await client.conversations(before=(10, 2))
    assert conn.requests[-1] == ListConversations(rid=0, before_ts=10, before_conv=2)
    await client.set_privacy(messages="contacts")
    assert conn.requests[-1] == SetPrivacy(rid=0, messages="contacts")
    with pytest.raises(ValueError):
        await client.set_privacy(presence="friends")
    await client.set_privacy(receipts="nobody")
    assert conn.requests[-1] == SetPrivacy(rid=0, receipts="nobody")
    with pytest.raises(ValueError):
        await client.set_privacy(receipts="friends")
    with pytest.raises(ValueError):
        await client.set_role(7, "bob", "owner")
    with pytest.raises(ValueError):
        await client.update_group(7)


async def test_iter_conversations_follows_pages() -> None:
    def entry(conv: int, ts: int) -> ConversationSummary:
        return ConversationSummary(
            conv=conv, kind="direct", name=f"u{conv}", ts=ts, unread=0, read=0
        )

    pages = {None: ((entry(5, 50), entry(4, 40)), True), 40: ((entry(3, 30),), False)}

    def answer(msg: Message) -> Message:
        assert isinstance(msg, ListConversations)
        entries, more = pages[msg.before_ts]
        return ConversationList(rid=msg.rid, conversations=entries, more=more)

    client, conn = make_client(answer=answer)
    assert [c.conv async for c in client.iter_conversations(2)] == [5, 4, 3]
    assert [(m.limit, m.before_conv) for m in conn.requests] == [(2, None), (2, 4)]


async def test_a_wrong_answer_type_is_a_protocol_error() -> None:
    client, _ = make_client(answer=lambda msg: Ok(rid=msg.rid))
    with pytest.raises(ProtocolError):
        await client.privacy()
    client, _ = make_client(
        answer=lambda msg: Privacy(
            rid=msg.rid, presence="contacts", profile="everyone", messages="everyone"
        )
    )
    assert (await client.privacy()).presence == "contacts"


async def test_error_answers_raise_request_error() -> None:
    client, _ = make_client(answer=lambda msg: Error(rid=msg.rid, code=int(ErrorCode.NOT_MEMBER)))
    with pytest.raises(RequestError) as exc:
        await client.group_info(7)
    assert exc.value.code == ErrorCode.NOT_MEMBER


# ---------------------------------------------------------------------- typing


async def test_typing_is_one_way_and_throttled() -> None:
    client, conn = make_client()
    client.typing_renew = 3600.0
    assert await client.typing("bob")
    assert conn.typing == [Typing(rid=0, typing=True, to="bob")]
    assert not await client.typing("bob")  # still typing: nothing new to say
    assert await client.typing("bob", typing=False)
    assert not await client.typing("bob", typing=False)
    assert await client.typing(group=7)
    assert conn.typing[-1] == Typing(rid=0, typing=True, group=7)
    with pytest.raises(ValueError):
        await client.typing()
    with pytest.raises(ValueError):
        await client.typing("bob", group=7)
    assert all(m.rid == 0 for m in conn.typing)
    assert not conn.requests  # nothing waits for an answer


async def test_typing_renews_after_the_interval() -> None:
    client, conn = make_client()
    client.typing_renew = 0.0
    assert await client.typing("bob") and await client.typing("bob")
    assert len(conn.typing) == 2


async def test_typing_beyond_the_budget_sends_the_latest_state_later() -> None:
    client, conn = make_client()
    client.typing_rate = 50.0  # a token every 20 ms
    client.typing_burst = 1.0
    assert await client.typing("bob")
    assert await client.typing("bob", typing=False)  # no budget: deferred
    assert await client.typing("bob", typing=True)  # replaces the deferred state...
    assert await client.typing("bob", typing=False)  # ...and again: the newest wins
    assert [m.typing for m in conn.typing] == [True]
    for _ in range(100):
        if len(conn.typing) == 2:
            break
        await asyncio.sleep(0.01)
    assert [m.typing for m in conn.typing] == [True, False]


async def test_typing_when_not_connected_is_silently_skipped() -> None:
    client, conn = make_client()
    client._session._live = False
    assert not await client.typing("bob")
    assert conn.typing == []


# ---------------------------------------------------------------------- bot


class FakeBotClient:
    user = "echo"

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any, str]] = []

    async def send(self, to: str, text: str, meta: dict[str, Any] | None = None) -> None:
        self.sent.append(("direct", to, text))

    async def send_group(self, group: int, text: str, meta: dict[str, Any] | None = None) -> None:
        self.sent.append(("group", group, text))


async def test_bot_replies_into_the_group_and_routes_events() -> None:
    bot = Bot("echo")
    seen: list[Any] = []

    @bot.on_message
    async def echo(ctx: Context) -> None:
        assert ctx.is_group == (ctx.group is not None)
        await ctx.reply(f"echo: {ctx.text}")

    @bot.command("dm")
    async def dm(ctx: Context) -> None:
        await ctx.reply_privately("psst")

    @bot.on_event
    async def on_event(client: Any, event: Any) -> None:
        seen.append(event)

    client = FakeBotClient()
    group_msg = MessageReceived(1, chat(1, sender="bob", group=7).message)  # type: ignore[arg-type]
    direct = MessageReceived(2, chat(2, sender="bob").message)  # type: ignore[arg-type]
    command = MessageReceived(
        3,
        ChatMessage(id=3, conv=7, pos=3, sender="bob", to="", ts=0, cmid="c3", text="/dm", group=7),
    )
    timeline = MessageReceived(
        4,
        chat(
            4, sender="bob", cmid="", group=7, event={"type": "added", "users": ["carol"]}
        ).message,
    )  # type: ignore[arg-type]
    receipt = ReadReceipt(5, 1, "bob", 2)
    for ev in (group_msg, direct, command, timeline, receipt, Resync(9)):
        await bot.dispatch(client, ev)  # type: ignore[arg-type]
    assert client.sent == [
        ("group", 7, "echo: m1"),
        ("direct", "bob", "echo: m2"),
        ("direct", "bob", "psst"),
    ]
    assert seen == [timeline, receipt, Resync(9)]


# ---------------------------------------------------------------------- CLI


def test_cli_formats_group_messages_and_events() -> None:
    m = chat(3, sender="bob", group=7).message
    assert m is not None
    assert cli.fmt_message(m).endswith("] bob -> #7: m3")
    assert cli.fmt_message(m, {7: "team"}).endswith("] bob -> #7 team: m3")
    created = chat(
        1,
        sender="alice",
        cmid="",
        group=7,
        event={"type": "created", "name": "team", "users": ["alice", "bob"]},
    ).message
    assert created is not None
    assert cli.fmt_message(created, {7: "team"}).endswith(
        '] #7 team: * alice created the group "team" with bob'
    )
    for event, text in (
        ({"type": "added", "users": ["carol"]}, "alice added carol"),
        ({"type": "removed", "users": ["carol"]}, "alice removed carol"),
        ({"type": "left", "users": ["alice"]}, "alice left"),
        ({"type": "renamed", "name": "crew"}, 'alice renamed the group to "crew"'),
        ({"type": "topic", "topic": "x"}, 'alice set the topic to "x"'),
        ({"type": "role", "user": "bob", "role": "admin"}, "alice made bob an admin"),
        ({"type": "owner", "user": "bob"}, "alice made bob the owner"),
    ):
        msg = chat(2, sender="alice", cmid="", group=7, event=event).message
        assert msg is not None
        assert cli.fmt_message(msg).endswith(f"] #7: * {text}")


def test_cli_formats_other_events() -> None:
    assert cli.fmt_event(ReadReceipt(1, 3, "bob", 5)) == "(read) bob read conversation #3 up to #5"
    assert (
        cli.fmt_event(ReadReceipt(1, 3, "me", 5), me="me")
        == "(read) you read conversation #3 up to #5"
    )
    assert (
        cli.fmt_event(ContactEvent(2, "accepted", "bob"))
        == "(contact) bob accepted your contact request"
    )
    assert "bob asks to be your contact" in str(cli.fmt_event(ContactEvent(2, "request", "bob")))
    assert cli.fmt_event(TypingEvent("bob", True, 6.0)) == "(typing) bob is typing"
    assert (
        cli.fmt_event(TypingEvent("bob", False, 6.0, 7), {7: "team"})
        == "(typing) bob stopped typing in #7 team"
    )
    assert cli.fmt_event(PresenceChanged("bob", True, 0)) == "(presence) bob is online"
    assert cli.fmt_event(PresenceChanged("bob", False, 0)) == "(presence) bob is offline"
    assert "last seen" in str(cli.fmt_event(PresenceChanged("bob", False, 1_700_000_000_000)))
    assert cli.fmt_event(Resync(3)) is None


def parse(*argv: str) -> Any:
    return cli.build_parser().parse_args(list(argv))


def test_cli_social_arguments() -> None:
    a = parse("send", "--group", "5", "hello", "there")
    assert (a.group, a.to, a.text) == (5, None, ["hello", "there"])
    a = parse("send", "-g", "#5", "hi")
    assert (a.group, a.text) == (5, ["hi"])
    a = parse("send", "bob", "hi")
    assert (a.group, a.to, a.text) == (None, "bob", ["hi"])
    a = parse("gsend", "5", "hi", "all")
    assert (a.command, a.group, a.text) == ("gsend", 5, ["hi", "all"])
    a = parse("history", "--group", "5", "--limit", "3")
    assert (a.with_user, a.group, a.limit) == (None, 5, 3)
    a = parse("group", "create", "team", "--member", "bob", "-m", "carol", "--topic", "t")
    assert (a.group_command, a.name, a.member, a.topic) == ("create", "team", ["bob", "carol"], "t")
    a = parse("group", "add", "5", "bob", "carol")
    assert (a.group, a.users) == (5, ["bob", "carol"])
    # USER positionals never clobber the global --user (which picks the session).
    a = parse("-u", "alice", "contact", "accept", "bob")
    assert (a.user, a.action, a.who) == ("alice", "accept", "bob")
    a = parse("group", "remove", "5", "bob")
    assert a.user is None and a.who == "bob"
    assert parse("block", "bob").who == "bob"
    a = parse("profile", "set", "--name", "Al")
    assert (a.target, a.name, a.status) == ("set", "Al", None)
    assert parse("profile").target is None
    a = parse("privacy", "--presence", "nobody", "--messages", "contacts")
    assert (a.presence, a.profile, a.messages) == ("nobody", None, "contacts")
    assert parse("privacy", "--receipts", "everyone").receipts == "everyone"
    assert (parse("read", "3", "5").conv, parse("read", "3", "5").pos) == (3, 5)
    assert parse("chats", "--all", "--limit", "50").all


@pytest.mark.parametrize(
    "argv",
    [
        ["send", "--group", "5"],  # no text
        ["send", "bob"],  # no text
        ["history"],  # neither WITH nor --group
        ["history", "bob", "--group", "3"],  # both
        ["group"],
        ["group", "create"],
        ["group", "role", "5", "bob", "owner"],
        ["contact", "poke", "bob"],
        ["read", "0", "1"],
        ["read", "1", "0"],
        ["privacy", "--presence", "friends"],
        ["privacy", "--receipts", "friends"],
        ["presence"],
    ],
)
def test_cli_social_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.build_parser().parse_args(argv)
    assert exc.value.code == cli.EXIT_USAGE
