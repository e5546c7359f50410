"""The session engine's parts without sockets: the outbox's retries (same cmid, the advised
waits, connected-time deadlines), `deadline.paused`, the limits of WELCOME, CaughtUp in the
inbox, GroupChanged events, and the feature facades building their wire messages."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from liaotian.client import deadline as deadline_module
from liaotian.client import outbox as outbox_module
from liaotian.client.bot import Bot, Context
from liaotian.client.client import Client
from liaotian.client.cursor import MemoryStore, SessionState
from liaotian.client.deadline import paused
from liaotian.client.events import (
    CaughtUp,
    GroupChanged,
    MessageReceived,
    event_from_update,
)
from liaotian.client.limits import limits_from_welcome
from liaotian.client.outbox import Outbox, SendTimeout
from liaotian.protocol import (
    DEFAULT_LIMITS,
    ChatMessage,
    CloseCode,
    ConnectionClosed,
    ErrorCode,
    History,
    HistoryPage,
    Limits,
    Message,
    RequestError,
    Send,
    Sent,
    State,
    Sync,
    Update,
    Updates,
)
from liaotian.protocol.social import (
    Block,
    ContactAccept,
    ContactList,
    ContactRequest,
    GetGroup,
    GetPresence,
    GetProfile,
    GroupAdd,
    GroupInfo,
    GroupLeave,
    GroupList,
    GroupRemove,
    GroupSetRole,
    GroupSummary,
    GroupTransfer,
    GroupUpdate,
    ListContacts,
    ListGroups,
    Ok,
    PresenceEntry,
    PresenceList,
    Profile,
    SetProfile,
    Typing,
)


def sent_for(msg: Message, seq: int = 1, duplicate: bool = False) -> Sent:
    assert isinstance(msg, Send)
    return Sent(
        rid=msg.rid, id=seq, conv=1, pos=seq, ts=0, seq=seq, cmid=msg.cmid, duplicate=duplicate
    )


class FakeConn:
    """A connection whose requests are answered by `answers`, one per request, in order:
    a Message, an exception to raise, or "hang" (never answered)."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.requests: list[Message] = []
        self.sent: list[Message] = []
        self.closed = False
        self.state = State.AUTHENTICATED
        self.server_limits: dict[str, Any] = {}
        self.ended = asyncio.get_running_loop().create_future()
        self._rid = 100

    def next_rid(self) -> int:
        self._rid += 1
        return self._rid

    def send_nowait(self, msg: Message) -> bool:
        self.sent.append(msg)
        return True

    async def request(self, msg: Message) -> Message:
        self.requests.append(msg)
        answer = self.answers.pop(0)
        if answer == "hang":
            await asyncio.Event().wait()
        if callable(answer):
            answer = answer(msg)
        if isinstance(answer, BaseException):
            raise answer
        assert isinstance(answer, Message)
        return answer

    async def wait_closed(self) -> ConnectionClosed:
        return await asyncio.shield(self.ended)


class Host:
    """What the outbox needs from a session; `ready` cleared = reconnecting."""

    def __init__(self, conn: FakeConn) -> None:
        self.conn = conn
        self.reconnect = True
        self.limits = DEFAULT_LIMITS
        self.ready = asyncio.Event()
        self.ready.set()
        self.waits = 0

    async def live_connection(self, deadline: asyncio.Timeout | None = None) -> Any:
        if not self.ready.is_set():
            self.waits += 1
            with paused(deadline):
                await self.ready.wait()
        return self.conn


def outbox(*answers: Any) -> tuple[Outbox, Host, FakeConn]:
    conn = FakeConn(*answers)
    host = Host(conn)
    return Outbox(host), host, conn


def rate_limited(
    retry_after: float | None, code: ErrorCode = ErrorCode.RATE_LIMITED
) -> RequestError:
    return RequestError(code, "slow down", retry_after=retry_after)


# ---------------------------------------------------------------------- outbox


@pytest.mark.parametrize("code", [ErrorCode.RATE_LIMITED, ErrorCode.THROTTLED])
async def test_rate_limits_are_waited_out_and_retried_with_the_same_cmid(code: ErrorCode) -> None:
    box, _, conn = outbox(rate_limited(0.01, code), rate_limited(0.01, code), sent_for)
    sent = await box.send("bob", None, "hi", None, "c1", timeout=5.0)
    assert sent.cmid == "c1" and len(conn.requests) == 3
    assert {m.cmid for m in conn.requests if isinstance(m, Send)} == {"c1"}
    assert box.pending == {}


async def test_a_rate_limit_without_retry_after_waits_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(deadline_module, "DEFAULT_RETRY_AFTER", 0.01)
    box, _, conn = outbox(rate_limited(None), sent_for)
    assert (await box.send("bob", None, "hi", None, "c1", timeout=5.0)).cmid == "c1"
    assert len(conn.requests) == 2


async def test_a_rate_limit_longer_than_the_timeout_is_raised_at_once() -> None:
    box, _, conn = outbox(rate_limited(30.0))
    with pytest.raises(RequestError) as exc:
        await box.send("bob", None, "hi", None, "c1", timeout=1.0)
    assert exc.value.code == ErrorCode.RATE_LIMITED and exc.value.retry_after == 30.0
    assert len(conn.requests) == 1


async def test_internal_errors_are_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbox_module, "INTERNAL_ERROR_BACKOFF", (0.001, 0.01))
    box, _, conn = outbox(
        RequestError(ErrorCode.INTERNAL_ERROR), RequestError(ErrorCode.INTERNAL_ERROR), sent_for
    )
    assert (await box.send("", 7, "hi", None, "g1", timeout=5.0)).cmid == "g1"
    assert [m.group for m in conn.requests if isinstance(m, Send)] == [7, 7, 7]


async def test_definitive_refusals_are_raised() -> None:
    box, _, conn = outbox(RequestError(ErrorCode.NOT_ALLOWED))
    with pytest.raises(RequestError) as exc:
        await box.send("bob", None, "hi", None, None, timeout=5.0)
    assert exc.value.code == ErrorCode.NOT_ALLOWED and len(conn.requests) == 1
    assert box.pending == {}


async def test_a_lost_connection_is_retried_with_the_same_cmid() -> None:
    box, host, conn = outbox(ConnectionClosed(None, "dropped"), lambda m: sent_for(m, 3, True))
    sent = await box.send("bob", None, "hi", None, "c1", timeout=5.0)
    assert sent.duplicate and [m.cmid for m in conn.requests if isinstance(m, Send)] == ["c1", "c1"]
    host.reconnect = False
    box, host, conn = outbox(ConnectionClosed(None, "dropped"))
    host.reconnect = False
    with pytest.raises(ConnectionClosed):
        await box.send("bob", None, "hi", None, "c1", timeout=5.0)


async def test_unavailable_waits_for_the_next_connection() -> None:
    box, _, conn = outbox(RequestError(ErrorCode.UNAVAILABLE), sent_for)
    task = asyncio.ensure_future(box.send("bob", None, "hi", None, "c1", timeout=5.0))
    while not conn.requests:
        await asyncio.sleep(0)
    for _ in range(5):
        await asyncio.sleep(0)
    assert not task.done() and len(conn.requests) == 1  # waits for the server to go
    conn.ended.set_result(ConnectionClosed(CloseCode.GOING_AWAY, "bye"))
    assert (await asyncio.wait_for(task, 5)).cmid == "c1"


async def test_no_answer_on_a_live_connection_is_a_send_timeout_with_the_cmid() -> None:
    box, _, _ = outbox("hang")
    with pytest.raises(SendTimeout) as exc:
        await box.send("bob", None, "hi", None, "c1", timeout=0.05)
    assert isinstance(exc.value, TimeoutError) and exc.value.cmid == "c1"
    assert box.pending == {}


async def test_waiting_for_a_connection_is_not_charged_to_the_timeout() -> None:
    box, host, _ = outbox(sent_for)
    host.ready.clear()
    task = asyncio.ensure_future(box.send("bob", None, "hi", None, "c1", timeout=0.05))
    await asyncio.sleep(0.2)  # four timeouts pass while "reconnecting": the point here
    assert not task.done() and host.waits == 1
    host.ready.set()
    assert (await asyncio.wait_for(task, 5)).cmid == "c1"


async def test_a_send_answered_by_the_log_meanwhile_needs_no_request() -> None:
    box, host, conn = outbox()
    host.ready.clear()
    task = asyncio.ensure_future(box.send("bob", None, "hi", None, "c1", timeout=5.0))
    while "c1" not in box:
        await asyncio.sleep(0)
    stored = Sent(rid=0, id=9, conv=1, pos=4, ts=0, seq=5, cmid="c1", duplicate=True)
    assert box.resolve("c1", stored) and not box.resolve("c1", stored)
    host.ready.set()
    assert await asyncio.wait_for(task, 5) == stored and conn.requests == []


async def test_a_cmid_in_progress_is_refused_and_local_checks_use_the_limits() -> None:
    box, host, _ = outbox("hang")
    task = asyncio.ensure_future(box.send("bob", None, "hi", None, "c1", timeout=None))
    while "c1" not in box:
        await asyncio.sleep(0)
    with pytest.raises(ValueError, match="already in progress"):
        await box.send("bob", None, "hi", None, "c1", timeout=None)
    task.cancel()
    host.limits = Limits(max_text_len=10, max_cmid_len=4)
    with pytest.raises(RequestError) as exc:
        await box.send("bob", None, "x" * 11, None, "c2", timeout=None)
    assert exc.value.code == ErrorCode.MESSAGE_TOO_LARGE
    with pytest.raises(ValueError):
        await box.send("bob", None, "x", None, "c2345", timeout=None)
    with pytest.raises(ValueError, match="reserved"):
        await box.send("bob", None, "x", None, "#c", timeout=None)


async def test_paused_moves_the_deadline_by_the_pause() -> None:
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(0.05) as deadline:
        before = deadline.when()
        assert before is not None
        with paused(deadline):
            assert deadline.when() is None
            await asyncio.sleep(0.1)  # longer than the timeout: it must not fire
        after = deadline.when()
        assert after is not None and after >= before + 0.09
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01) as deadline:
            with paused(None), paused(deadline):
                pass
            await asyncio.sleep(1)
    assert loop.time() > 0


# ---------------------------------------------------------------------- limits


def test_limits_from_welcome() -> None:
    got = limits_from_welcome(
        {
            "max_frame_size": 4 << 20,
            "max_text_len": 100,
            "idle_timeout": 120,
            "auth_timeout": 5.5,
            "future_key": 1,
            "max_sync_page": "many",
            "max_history_page": 0,
            "max_meta_size": True,
            "max_cmid_len": 1.5,
        }
    )
    assert (got.max_frame_size, got.max_text_len) == (4 << 20, 100)
    assert got.idle_timeout == 120.0 and isinstance(got.idle_timeout, float)
    assert got.auth_timeout == 5.5
    # wrong types, 0 and unknown keys keep the defaults
    assert got.max_sync_page == DEFAULT_LIMITS.max_sync_page
    assert got.max_history_page == DEFAULT_LIMITS.max_history_page
    assert got.max_meta_size == DEFAULT_LIMITS.max_meta_size
    assert got.max_cmid_len == DEFAULT_LIMITS.max_cmid_len
    assert got.max_array_len == DEFAULT_LIMITS.max_array_len  # never advertised
    assert limits_from_welcome({}) is DEFAULT_LIMITS


# ---------------------------------------------------------------------- the inbox


def chat(
    seq: int, sender: str = "bob", group: int | None = None, event: dict[str, Any] | None = None
) -> Update:
    m = ChatMessage(
        id=seq,
        conv=group or 1,
        pos=seq,
        sender=sender,
        to="" if group else "alice",
        ts=seq,
        cmid="" if event else f"c{seq}",
        text="" if event else f"m{seq}",
        group=group,
        event=event,
    )
    return Update(seq=seq, kind=1, message=m)


def make_client(answers: list[Any] | None = None, **options: Any) -> tuple[Client, FakeConn]:
    store = MemoryStore(SessionState(username="alice", device="d", token="t", cursor=0))
    client = Client("127.0.0.1", 1, store=store, **options)
    conn = FakeConn(*(answers or []))
    session = client._session
    session._conn = conn  # type: ignore[assignment]
    session.inbox.start_at(0)
    session._user = "alice"
    session._live = True
    return client, conn


def feed(client: Client, conn: FakeConn, msg: Message) -> bool:
    return client._session._on_message(conn, msg)  # type: ignore[arg-type]


def start_sync(client: Client, rid: int = 1) -> asyncio.Future[None]:
    """What catch_up() sets up for a (re)connect, with the first page asked under `rid`."""
    inbox = client._session.inbox
    done = asyncio.get_running_loop().create_future()
    inbox.sync_done, inbox.sync_initial, inbox.sync_rid = done, True, rid
    inbox.catching_up = True
    return done


async def take_all(client: Client) -> list[Any]:
    out = []
    while len(client._session.inbox.events):
        out.append(await client.__anext__())
    return out


async def test_caught_up_follows_the_last_page_and_the_held_pushes() -> None:
    client, conn = make_client()
    done = start_sync(client)
    feed(client, conn, Updates(rid=0, updates=(chat(4),), head=4))  # held
    feed(client, conn, Updates(rid=1, updates=(chat(1), chat(2)), head=3, more=True))
    assert await take_all(client) != []  # pages deliver at once; no CaughtUp yet
    rid = conn.sent[-1].rid
    feed(client, conn, Updates(rid=rid, updates=(chat(3),), head=3))
    assert done.done()
    events = await take_all(client)
    assert [type(e).__name__ for e in events] == ["MessageReceived", "MessageReceived", "CaughtUp"]
    assert events[-1] == CaughtUp(4)  # the held push is in front of it
    feed(client, conn, Updates(rid=0, updates=(chat(5),), head=5))  # live: no CaughtUp
    assert [type(e) for e in await take_all(client)] == [MessageReceived]


async def test_caught_up_waits_for_the_refetch_of_dropped_entries() -> None:
    client, conn = make_client(queue_size=2)
    start_sync(client)
    feed(client, conn, Updates(rid=1, updates=tuple(chat(s) for s in range(1, 6)), head=5))
    inbox = client._session.inbox
    assert inbox.tracker is not None and inbox.tracker.overflowing
    got: list[Any] = []
    while not any(isinstance(e, CaughtUp) for e in got):
        got.append(await asyncio.wait_for(client.__anext__(), 5))
        syncs = [m for m in conn.sent if isinstance(m, Sync)]
        if syncs and inbox.sync_rid == syncs[-1].rid:  # a refetch: play the server
            s = syncs[-1]
            page = [chat(x) for x in range(s.since + 1, 6)][: s.limit or 500]
            feed(
                client,
                conn,
                Updates(
                    rid=s.rid, updates=tuple(page), head=5, more=bool(page) and page[-1].seq < 5
                ),
            )
    assert [e.seq for e in got[:-1]] == [1, 2, 3, 4, 5] and got[-1] == CaughtUp(5)


async def test_caught_up_is_a_state_event() -> None:
    client, conn = make_client(state_events=False)
    start_sync(client)
    feed(client, conn, Updates(rid=1, updates=(chat(1),), head=1))
    assert [type(e) for e in await take_all(client)] == [MessageReceived]


def test_group_timeline_entries_are_group_changed_events() -> None:
    u = chat(3, sender="alice", group=7, event={"type": "removed", "users": ["bob"]})
    ev = event_from_update(u)
    assert isinstance(ev, GroupChanged)
    assert (ev.seq, ev.group, ev.type, ev.actor, ev.users) == (3, 7, "removed", "alice", ("bob",))
    assert ev.is_membership and ev.message is u.message and ev.change.pos == 3
    renamed = event_from_update(chat(4, group=7, event={"type": "renamed", "name": "x"}))
    assert isinstance(renamed, GroupChanged) and not renamed.is_membership
    role = event_from_update(
        chat(5, group=7, event={"type": "role", "user": "bob", "role": "admin"})
    )
    assert isinstance(role, GroupChanged) and role.is_membership
    assert (role.change.user, role.change.role) == ("bob", "admin")
    plain = event_from_update(chat(6, group=7))
    assert isinstance(plain, MessageReceived) and not plain.is_event


class FakeBotClient:
    user = "echo"


async def test_the_bot_routes_group_changes_to_event_handlers() -> None:
    bot = Bot("echo")
    seen: list[Any] = []
    replies: list[str] = []

    @bot.on_message
    async def echo(ctx: Context) -> None:
        replies.append(ctx.text)

    @bot.on_event
    async def on_event(client: Any, event: Any) -> None:
        seen.append(event)

    change = event_from_update(
        chat(1, sender="bob", group=7, event={"type": "added", "users": ["carol"]})
    )
    message = event_from_update(chat(2, group=7))
    for ev in (change, message):
        await bot.dispatch(FakeBotClient(), ev)  # type: ignore[arg-type]
    assert seen == [change] and replies == ["m2"]


# ---------------------------------------------------------------------- facades


def answer_all(msg: Message) -> Message:
    """Play the server for the facade requests."""
    if isinstance(msg, Send):
        return sent_for(msg)
    if isinstance(msg, GetGroup):
        return GroupInfo(
            rid=msg.rid,
            group=msg.group,
            name="team",
            topic="",
            owner="alice",
            created=1,
            pos=1,
            members=(),
        )
    if isinstance(msg, ListGroups):
        first = msg.after is None
        return GroupList(
            rid=msg.rid,
            groups=(
                GroupSummary(group=2 if first else 3, name="g", topic="", role="owner", members=1),
            ),
            more=first,
        )
    if isinstance(msg, ListContacts):
        return ContactList(rid=msg.rid, contacts=("bob",), incoming=(), outgoing=(), blocked=())
    if isinstance(msg, GetProfile):
        return Profile(rid=msg.rid, user=msg.user, display_name="B", status="")
    if isinstance(msg, GetPresence):
        return PresenceList(
            rid=msg.rid,
            presence=tuple(PresenceEntry(user=u, online=True, last_seen=0) for u in msg.users),
        )
    if isinstance(msg, History):
        return HistoryPage(rid=msg.rid, messages=(), more=False)
    if isinstance(
        msg, GroupAdd | GroupRemove | GroupLeave | GroupUpdate | GroupSetRole | GroupTransfer
    ):
        return Ok(rid=msg.rid, pos=9)
    return Ok(rid=msg.rid)


async def test_facades_build_the_wire_messages() -> None:
    client, conn = make_client([answer_all] * 40)
    g = client.groups
    assert (await g.info(7)).group == 7
    assert [s.group for s in await g.list()] == [2, 3]  # every page
    assert [s.group for s in await g()] == [2, 3]  # the old `client.groups()`
    assert await g.add(7, ["bob", "carol"]) == 9
    assert await g.remove(7, "bob") == 9
    assert await g.leave(7) == 9
    assert await g.update(7, topic="x") == 9
    assert await g.set_role(7, "bob", "admin") == 9
    assert await g.transfer(7, "bob") == 9
    assert (await g.send(7, "hi", cmid="g1")).cmid == "g1"
    await g.history(7, before=5)
    await client.contacts.request("bob")
    await client.contacts.accept("bob")
    await client.contacts.block("eve")
    assert (await client.contacts()).contacts == ("bob",)
    assert (await client.account.profile("bob")).display_name == "B"
    await client.account.set_profile(status="away")
    assert [p.user for p in await client.presence(["bob", "bob", "carol"])] == ["bob", "carol"]
    sent = conn.requests
    assert sent[0] == GetGroup(rid=0, group=7)
    assert [m.after for m in sent[1:3] if isinstance(m, ListGroups)] == [None, 2]
    assert GroupAdd(rid=0, group=7, users=("bob", "carol")) in sent
    assert GroupRemove(rid=0, group=7, user="bob") in sent
    assert GroupLeave(rid=0, group=7) in sent
    assert GroupUpdate(rid=0, group=7, topic="x") in sent
    assert GroupSetRole(rid=0, group=7, user="bob", role="admin") in sent
    assert GroupTransfer(rid=0, group=7, user="bob") in sent
    assert Send(rid=0, to="", cmid="g1", text="hi", group=7) in sent
    assert History(rid=0, with_user="", group=7, before=5) in sent
    assert ContactRequest(rid=0, user="bob") in sent and ContactAccept(rid=0, user="bob") in sent
    assert Block(rid=0, user="eve") in sent and ListContacts(rid=0) in sent
    assert GetProfile(rid=0, user="bob") in sent and SetProfile(rid=0, status="away") in sent
    assert GetPresence(rid=0, users=("bob", "carol")) in sent
    # old and new spellings are the same calls
    before = len(conn.requests)
    assert await client.add_members(7, "dave") == 9
    assert conn.requests[before] == GroupAdd(rid=0, group=7, users=("dave",))
    with pytest.raises(ValueError):
        await g.send(0, "x")
    with pytest.raises(ValueError):
        await g.set_role(7, "bob", "owner")
    client.presence.throttle.renew = 3600.0
    assert client.typing_renew == 3600.0
    assert await client.presence.typing("bob")
    assert not await client.presence.typing("bob")
    assert conn.sent[-1] == Typing(rid=0, typing=True, to="bob")


async def test_history_pages_stay_within_the_servers_page_size() -> None:
    client, conn = make_client([answer_all] * 3)
    client._session._limits = Limits(max_history_page=20)
    await client.history("bob", limit=500)
    await client.groups.history(7, limit=500)
    await client.history("bob", limit=5)
    assert [m.limit for m in conn.requests if isinstance(m, History)] == [20, 20, 5]


async def test_requests_refused_by_a_rate_limit_are_made_again() -> None:
    """Nothing changed on the server: writes too are repeated after the advised wait, and
    a wait beyond the timeout is the answer."""
    client, conn = make_client(
        [
            rate_limited(0.01),
            answer_all,
            rate_limited(0.01, ErrorCode.THROTTLED),
            answer_all,
            rate_limited(60.0),
        ]
    )
    await client.contacts.accept("bob")  # a write (not repeated after a lost connection)
    await client.groups.info(7)
    assert [type(m).__name__ for m in conn.requests] == ["ContactAccept"] * 2 + ["GetGroup"] * 2
    with pytest.raises(RequestError) as exc:
        await client.contacts.block("eve")
    assert exc.value.retry_after == 60.0 and len(conn.requests) == 5


async def test_an_error_answer_ends_the_send_with_it() -> None:
    client, _ = make_client([RequestError(ErrorCode.NOT_MEMBER)])
    with pytest.raises(RequestError) as exc:
        await client.groups.send(7, "x")
    assert exc.value.code == ErrorCode.NOT_MEMBER


def test_every_public_name_exists() -> None:
    import importlib
    import pkgutil

    import liaotian.client as pkg

    assert len(pkg.__all__) == len(set(pkg.__all__))
    assert all(hasattr(pkg, name) for name in pkg.__all__)
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.ispkg:
            continue
        module = importlib.import_module(f"liaotian.client.{info.name}")
        for name in getattr(module, "__all__", ()):
            assert hasattr(module, name), (info.name, name)
