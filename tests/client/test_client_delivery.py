"""Client delivery logic driven frame by frame through a fake connection (no sockets).

The reader calls `Client._on_message(conn, msg)` for every frame; here the test plays the
reader. What is checked: pushes and SYNC pages are deduplicated by seq, own SENTs are never
delivered, a SYNC entry matching a pending send resolves it, pushes held during a SYNC come
after its pages, overflow is refetched, resync jumps, and ACK/store follow the cursor.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from liaotian.client.client import Client
from liaotian.client.cursor import MemoryStore, SessionState
from liaotian.client.events import MessageReceived, Resync
from liaotian.client.outbox import PendingSend
from liaotian.protocol import (
    Ack,
    ChatMessage,
    Error,
    ErrorCode,
    Message,
    Sent,
    State,
    Sync,
    Update,
    Updates,
)


class FakeConn:
    """What the client needs from a ClientConnection in its reader callbacks."""

    def __init__(self) -> None:
        self.sent: list[Message] = []
        self.closed = False
        self.state = State.AUTHENTICATED
        self.server_limits: dict[str, Any] = {}
        self._rid = 100
        self.acked = asyncio.Event()

    def next_rid(self) -> int:
        self._rid += 1
        return self._rid

    def send_nowait(self, msg: Message) -> bool:
        self.sent.append(msg)
        if isinstance(msg, Ack):
            self.acked.set()
        return True

    def close_nowait(self, code: int = 1000, reason: str = "") -> None:
        self.closed = True

    async def send_drain(self) -> None:
        pass

    @property
    def syncs(self) -> list[Sync]:
        return [m for m in self.sent if isinstance(m, Sync)]

    @property
    def acks(self) -> list[int]:
        return [m.seq for m in self.sent if isinstance(m, Ack)]


def chat(seq: int, sender: str = "bob", cmid: str | None = None) -> Update:
    m = ChatMessage(
        id=seq,
        conv=1,
        pos=seq,
        sender=sender,
        to="alice",
        ts=seq,
        cmid=cmid or f"c{seq}",
        text=f"m{seq}",
    )
    return Update(seq=seq, kind=1, message=m)


def push(*seqs: int) -> Updates:
    return Updates(rid=0, updates=tuple(chat(s) for s in seqs), head=max(seqs))


def make_client(cursor: int = 0, **options: Any) -> tuple[Client, FakeConn, MemoryStore]:
    store = MemoryStore(SessionState(username="alice", device="d", token="t", cursor=cursor))
    client = Client("127.0.0.1", 1, store=store, **options)
    conn = FakeConn()
    session = client._session
    session._conn = conn  # type: ignore[assignment]
    session.inbox.start_at(cursor)
    session._user = "alice"
    session._live = True
    return client, conn, store


def feed(client: Client, conn: FakeConn, msg: Message) -> bool:
    return client._session._on_message(conn, msg)  # type: ignore[arg-type]


async def drain(client: Client) -> list[int]:
    """Take every queued event, as `async for` would."""
    out = []
    while len(client._session.inbox.events):
        ev = await client.__anext__()
        assert isinstance(ev, MessageReceived)
        out.append(ev.seq)
    return out


async def test_pushes_are_delivered_in_order_and_deduplicated() -> None:
    client, conn, _ = make_client()
    assert feed(client, conn, push(1, 2))
    feed(client, conn, push(2, 3))  # 2 again
    assert await drain(client) == [1, 2, 3]
    feed(client, conn, push(1, 3))  # below the cursor now
    assert await drain(client) == []
    assert client.cursor == 3


async def test_cursor_advances_only_when_the_application_takes_the_event() -> None:
    client, conn, _ = make_client(cursor=10)
    feed(client, conn, push(11, 12, 13))
    assert client.cursor == 10
    ev = await client.__anext__()
    assert isinstance(ev, MessageReceived) and ev.seq == 11 and ev.message.text == "m11"
    assert client.cursor == 11


async def test_own_sent_is_seen_and_never_delivered() -> None:
    client, conn, _ = make_client()
    sent = Sent(rid=5, id=9, conv=1, pos=1, ts=1, seq=1, cmid="x", duplicate=False)
    assert not feed(client, conn, sent)  # the request future gets it too
    assert client.cursor == 1
    # A later sync page repeating seq 1 must not deliver it.
    client._session.inbox.sync_rid = 7
    feed(client, conn, Updates(rid=7, updates=(chat(1, sender="alice", cmid="x"), chat(2)), head=2))
    assert await drain(client) == [2]
    assert client.cursor == 2


async def test_sync_entry_resolves_a_pending_send_instead_of_being_delivered() -> None:
    """The connection died after the server stored the message but before SENT arrived;
    the next SYNC returns the entry: it answers the send."""
    client, conn, _ = make_client()
    loop = asyncio.get_running_loop()
    pending = PendingSend("bob", "cmid-1", "hello", {}, loop.create_future())
    client._session.outbox.pending["cmid-1"] = pending
    client._session.inbox.sync_rid = 50
    page = Updates(
        rid=50, updates=(chat(1), chat(2, sender="alice", cmid="cmid-1"), chat(3)), head=3
    )
    feed(client, conn, page)
    assert pending.result.done()
    result = pending.result.result()
    assert (result.seq, result.cmid, result.pos, result.duplicate) == (2, "cmid-1", 2, True)
    assert await drain(client) == [1, 3]
    assert client.cursor == 3


async def test_pushes_during_a_sync_wait_for_its_last_page() -> None:
    client, conn, _ = make_client()
    done = asyncio.get_running_loop().create_future()
    client._session.inbox.sync_done = done
    client._session.inbox.sync_initial = True
    client._session.inbox.sync_rid = 1
    feed(client, conn, push(5))  # must not overtake the pages
    feed(client, conn, Updates(rid=1, updates=(chat(1), chat(2)), head=4, more=True))
    assert conn.syncs[-1].since == 2  # next page asked from the last seq
    rid = conn.syncs[-1].rid
    feed(client, conn, Updates(rid=rid, updates=(chat(3), chat(4), chat(5)), head=5))
    assert done.done()
    assert await drain(client) == [1, 2, 3, 4, 5]
    assert client.cursor == 5


async def test_resync_jumps_to_head_and_tells_the_application() -> None:
    client, conn, _store = make_client(cursor=3)
    client._session.inbox.sync_rid = 9
    feed(client, conn, Updates(rid=9, updates=(), head=40, more=False, resync=True))
    ev = await client.__anext__()
    assert ev == Resync(40)
    assert client.cursor == 40
    feed(client, conn, push(41))
    assert await drain(client) == [41]


async def test_invalid_cursor_syncs_again_from_zero() -> None:
    client, conn, store = make_client(cursor=30)
    client._session.inbox.sync_rid = 9
    feed(client, conn, Error(rid=9, code=int(ErrorCode.INVALID_CURSOR), message="ahead"))
    assert conn.syncs[-1].since == 0
    assert client.cursor == 0 and store.load().cursor == 0
    assert await client.__anext__() == Resync(0)
    feed(client, conn, Updates(rid=conn.syncs[-1].rid, updates=(chat(1),), head=1))
    assert await drain(client) == [1]


async def test_overflow_drops_then_refetches_without_gap_or_duplicate() -> None:
    client, conn, _ = make_client(queue_size=4)
    feed(client, conn, push(1, 2, 3, 4, 5, 6))  # 5, 6 do not fit
    feed(client, conn, push(7))  # nothing new may overtake the dropped ones
    assert client._session.inbox.tracker is not None and client._session.inbox.tracker.overflowing
    first = await client.__anext__()
    assert isinstance(first, MessageReceived) and first.seq == 1
    assert conn.syncs == []  # 3 still queued: more than half full
    second = await client.__anext__()
    assert isinstance(second, MessageReceived) and second.seq == 2
    # Now at most half full: the client asks for the dropped entries again, from its
    # cursor (a SYNC records `since` as the device's position), about as many as fit.
    sync = conn.syncs[-1]
    assert sync.since == 2 and sync.limit == 4
    feed(client, conn, push(8))  # arrives during the refetch: held until its last page

    # Play the server for the remaining SYNCs while the application keeps reading slowly.
    log = list(range(1, 9))
    delivered = [1, 2]
    answered = 0
    while delivered != log:
        while answered < len(conn.syncs):
            s = conn.syncs[answered]
            answered += 1
            page = [x for x in log if x > s.since][: s.limit or 500]
            more = bool(page) and page[-1] < log[-1]
            feed(
                client,
                conn,
                Updates(rid=s.rid, updates=tuple(chat(x) for x in page), head=8, more=more),
            )
        ev = await asyncio.wait_for(client.__anext__(), 5)
        assert isinstance(ev, MessageReceived)
        delivered.append(ev.seq)
        assert delivered == log[: len(delivered)]  # in order, no duplicate
    assert client.cursor == 8
    assert len(client._session.inbox.events) == 0


async def test_ack_batches_and_store_follow_the_cursor() -> None:
    client, conn, store = make_client(ack_every=3, ack_interval=3600)
    feed(client, conn, push(1, 2, 3, 4))
    await drain(client)
    assert conn.acks == [3]  # every 3 handed entries
    assert store.load().cursor == 3
    await client.ack()  # flush now
    assert conn.acks == [3, 4] and store.load().cursor == 4
    await client.ack()  # nothing new: nothing sent
    assert conn.acks == [3, 4]


async def test_ack_timer_flushes_a_partial_batch() -> None:
    client, conn, store = make_client(ack_every=1000, ack_interval=0.01)
    feed(client, conn, push(1))
    await drain(client)
    await asyncio.wait_for(conn.acked.wait(), 5)
    assert conn.acks == [1] and store.load().cursor == 1


async def test_frames_of_a_stale_connection_are_ignored() -> None:
    client, _conn, _ = make_client()
    other = FakeConn()
    assert not feed(client, other, push(1))  # type: ignore[arg-type]
    assert len(client._session.inbox.events) == 0


async def test_unknown_update_kinds_are_skipped_but_counted() -> None:
    client, conn, _ = make_client()
    feed(
        client,
        conn,
        Updates(rid=0, updates=(chat(1), Update(seq=2, kind=99, data={}), chat(3)), head=3),
    )
    assert await drain(client) == [1, 3]
    assert client.cursor == 3


def test_constructor_needs_credentials() -> None:
    with pytest.raises(ValueError):
        Client("127.0.0.1", 1)
    with pytest.raises(ValueError):
        Client("127.0.0.1", 1, username="alice")
    with pytest.raises(ValueError):
        Client("127.0.0.1", 1, token="t", initial_sync="some")  # type: ignore[arg-type]


def test_a_stored_session_of_another_user_or_device_is_not_reused() -> None:
    store = MemoryStore(SessionState(username="bob", device="d", token="bobs", cursor=9))
    c = Client("127.0.0.1", 1, username="alice", password="pw", store=store)
    assert c.token is None and c.cursor == 0
    c = Client("127.0.0.1", 1, username="bob", password="pw", device="other", store=store)
    assert c.token is None
    c = Client("127.0.0.1", 1, store=store)
    assert c.token == "bobs" and c.device == "d" and c.cursor == 9


async def test_local_size_checks() -> None:
    client, _, _ = make_client()
    from liaotian.protocol import RequestError

    with pytest.raises(RequestError) as exc:
        await client.send("bob", "x" * (64 * 1024 + 1))
    assert exc.value.code == ErrorCode.MESSAGE_TOO_LARGE
    with pytest.raises(ValueError):
        await client.send("bob", "hi", cmid="")
    with pytest.raises(ValueError):
        await client.send("bob", "hi", cmid="x" * 65)
