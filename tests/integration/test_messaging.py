"""SEND, SENT, pushes, multi-device fan-out, idempotency and HISTORY against a real server."""

from __future__ import annotations

import pytest
from liaotian.protocol import ErrorCode, History, Limits, Sent, Sync, UpdateKind, Updates
from liaotian.server.testing import run_server
from rawclient import RawClient, messages_of


def only_update(push: Updates):
    assert len(push.updates) == 1, push
    upd = push.updates[0]
    assert upd.kind == UpdateKind.MESSAGE and upd.message is not None
    return upd


def assert_matches(sent: Sent, msg, *, sender: str, to: str, text: str) -> None:
    assert (msg.id, msg.conv, msg.pos, msg.ts, msg.cmid) == (
        sent.id,
        sent.conv,
        sent.pos,
        sent.ts,
        sent.cmid,
    )
    assert (msg.sender, msg.to, msg.text) == (sender, to, text)


async def test_two_users_chat_both_ways(server, clients) -> None:
    alice = await clients.user(server, "alice")
    bob = await clients.user(server, "bob")

    s1 = await alice.send("bob", "hi bob", cmid="a-1")
    assert (s1.id, s1.pos, s1.seq, s1.cmid, s1.duplicate) == (1, 1, 1, "a-1", False)
    assert s1.ts > 0
    u = only_update(await bob.next_updates())
    assert u.seq == 1  # bob's log: first entry
    assert_matches(s1, u.message, sender="alice", to="bob", text="hi bob")

    s2 = await bob.send("alice", "hi alice", cmid="b-1")
    assert (s2.id, s2.conv, s2.pos, s2.seq) == (2, s1.conv, 2, 2)
    u = only_update(await alice.next_updates())
    assert u.seq == 2  # alice's log: her own message, then bob's
    assert_matches(s2, u.message, sender="bob", to="alice", text="hi alice")

    s3 = await alice.send("bob", "how are you?", cmid="a-2")
    assert (s3.id, s3.conv, s3.pos, s3.seq) == (3, s1.conv, 3, 3)
    push = await bob.next_updates()
    assert push.head == 3
    u = only_update(push)
    assert u.seq == 3
    assert_matches(s3, u.message, sender="alice", to="bob", text="how are you?")

    # The sending connection never gets its own message pushed back.
    await alice.assert_no_push()
    await bob.assert_no_push()

    for me, peer in ((alice, "bob"), (bob, "alice")):
        page = await me.history(peer)
        assert [m.pos for m in page.messages] == [1, 2, 3]
        assert [m.id for m in page.messages] == [1, 2, 3]
        assert [m.text for m in page.messages] == ["hi bob", "hi alice", "how are you?"]
        assert not page.more


async def test_unknown_recipient_and_sender_gets_nothing_stored(server, clients) -> None:
    alice = await clients.user(server, "alice")
    await alice.expect_error(alice.send_msg("nobody", "hello?"), ErrorCode.UNKNOWN_USER)
    await alice.expect_error(alice.send_msg("Not-A-Name!", "hello?"), ErrorCode.UNKNOWN_USER)
    # nothing was allocated: the next real message is id 1, seq 1
    await clients.register(server, "bob")
    sent = await alice.send("bob", "first")
    assert (sent.id, sent.pos, sent.seq) == (1, 1, 1)


async def test_two_devices_of_one_user_receive_everything(server, clients) -> None:
    a1 = await clients.user(server, "alice", "a1")
    a2 = await clients.user(server, "alice", "a2", register=False)
    bob = await clients.user(server, "bob")

    # bob -> alice: both of alice's devices get it, same seq of alice's log
    sb = await bob.send("alice", "to both")
    p1, p2 = only_update(await a1.next_updates()), only_update(await a2.next_updates())
    assert p1.seq == p2.seq == 1
    assert p1.message == p2.message
    assert_matches(sb, p1.message, sender="bob", to="alice", text="to both")

    # a1 -> bob: a2 gets it pushed with the sender's seq, a1 gets SENT.seq equal to it
    s1 = await a1.send("bob", "from a1")
    assert s1.seq == 2
    u = only_update(await a2.next_updates())
    assert u.seq == s1.seq
    assert_matches(s1, u.message, sender="alice", to="bob", text="from a1")
    ub = only_update(await bob.next_updates())
    assert ub.seq == 2 and ub.message == u.message

    # and the other way round
    s2 = await a2.send("bob", "from a2")
    assert s2.seq == 3
    u = only_update(await a1.next_updates())
    assert u.seq == s2.seq
    assert_matches(s2, u.message, sender="alice", to="bob", text="from a2")
    assert only_update(await bob.next_updates()).seq == 3

    for c in (a1, a2, bob):
        await c.assert_no_push()

    # a third device syncing from scratch sees the same log, in order
    a3 = await clients.user(server, "alice", "a3", register=False, sync=False)
    pages = await a3.sync_all(0)
    log = messages_of(pages)
    assert [u.seq for u in log] == [1, 2, 3]
    assert [u.message.text for u in log] == ["to both", "from a1", "from a2"]


async def test_resend_same_cmid_is_idempotent(server, clients) -> None:
    alice = await clients.user(server, "alice")
    bob = await clients.user(server, "bob")
    first = await alice.send("bob", "once", cmid="same")
    assert not first.duplicate
    assert only_update(await bob.next_updates()).message.id == first.id

    again = await alice.send("bob", "a different text", cmid="same")
    assert again.duplicate is True
    assert (again.id, again.conv, again.pos, again.ts, again.seq, again.cmid) == (
        first.id,
        first.conv,
        first.pos,
        first.ts,
        first.seq,
        first.cmid,
    )
    # two copies pipelined in one write: both duplicates of the original
    m1, m2 = alice.send_msg("bob", "x", "same"), alice.send_msg("bob", "y", "same")
    await alice.write(m1, m2)
    for m in (m1, m2):
        ans = await alice.answer(m.rid)
        assert isinstance(ans, Sent) and ans.duplicate and ans.id == first.id

    # nothing new stored, nothing pushed, the logs did not move
    await bob.assert_no_push()
    await alice.assert_no_push()
    page = await alice.history("bob")
    assert [(m.id, m.text) for m in page.messages] == [(first.id, "once")]
    nxt = await alice.send("bob", "next")
    assert (nxt.id, nxt.pos, nxt.seq) == (first.id + 1, first.pos + 1, first.seq + 1)

    # the cmid is per sender account: the same cmid from bob is a new message
    other = await bob.send("alice", "mine", cmid="same")
    assert not other.duplicate and other.id != first.id


async def test_cmid_is_per_account_across_devices(server, clients) -> None:
    a1 = await clients.user(server, "alice", "a1")
    a2 = await clients.user(server, "alice", "a2", register=False)
    await clients.register(server, "bob")
    s1 = await a1.send("bob", "hello", cmid="shared")
    await a2.next_updates()  # a2 sees a1's message
    s2 = await a2.send("bob", "hello again", cmid="shared")
    assert s2.duplicate and s2.id == s1.id and s2.seq == s1.seq
    await a1.assert_no_push()
    await a2.assert_no_push()


async def test_retry_after_dropped_connection_stores_exactly_once(server, clients) -> None:
    alice = await clients.user(server, "alice")
    token = alice.token
    bob = await clients.user(server, "bob")

    # write the SEND and drop the socket at once, without waiting for SENT
    msg = alice.send_msg("bob", "did it arrive?", cmid="retry-me")
    alice.conn.send(msg)
    alice.writer.write(alice.conn.data_to_send())
    await alice.close()

    again = await clients.resume(server, token)
    resent = await again.send("bob", "did it arrive?", cmid="retry-me")
    assert resent.duplicate is True

    page = await again.history("bob")
    assert len(page.messages) == 1
    stored = page.messages[0]
    assert (stored.id, stored.pos, stored.cmid) == (resent.id, resent.pos, "retry-me")
    u = only_update(await bob.next_updates())
    assert u.message.id == resent.id
    await bob.assert_no_push()


async def test_send_to_self(server, clients) -> None:
    a1 = await clients.user(server, "alice", "a1")
    a2 = await clients.user(server, "alice", "a2", register=False)
    s = await a1.send("alice", "note to self")
    assert (s.pos, s.seq) == (1, 1)
    push = await a2.next_updates()
    u = only_update(push)
    assert u.seq == 1 and push.head == 1  # one entry in the one log
    assert (u.message.sender, u.message.to) == ("alice", "alice")
    await a1.assert_no_push()
    s2 = await a1.send("alice", "second note")
    assert (s2.conv, s2.pos, s2.seq) == (s.conv, 2, 2)
    assert only_update(await a2.next_updates()).seq == 2
    page = await a1.history("alice")
    assert [m.text for m in page.messages] == ["note to self", "second note"]


async def test_meta_round_trips(server, clients) -> None:
    alice = await clients.user(server, "alice")
    bob = await clients.user(server, "bob")
    meta = {"reply_to": 7, "tags": ["a", "b"], "nested": {"x": 1.5}}
    await alice.send("bob", "with meta", meta=meta)
    assert only_update(await bob.next_updates()).message.meta == meta
    page = await bob.history("alice")
    assert page.messages[0].meta == meta


async def test_history_paging_backwards_and_forwards(server, clients) -> None:
    alice = await clients.user(server, "alice")
    bob = await clients.user(server, "bob")
    for i in range(1, 13):  # pos 1..12, alternating senders
        sender, peer = (alice, "bob") if i % 2 else (bob, "alice")
        s = await sender.send(peer, f"m{i}")
        assert s.pos == i

    def pos(page):
        return [m.pos for m in page.messages]

    # backwards from the newest
    p = await alice.history("bob", limit=5)
    assert pos(p) == [8, 9, 10, 11, 12] and p.more
    assert [m.text for m in p.messages] == [f"m{i}" for i in range(8, 13)]
    p = await alice.history("bob", before=8, limit=5)
    assert pos(p) == [3, 4, 5, 6, 7] and p.more
    p = await alice.history("bob", before=3, limit=5)
    assert pos(p) == [1, 2] and not p.more
    p = await alice.history("bob", before=1, limit=5)
    assert pos(p) == [] and not p.more
    # exactly `limit` left: more is false
    p = await alice.history("bob", before=6, limit=5)
    assert pos(p) == [1, 2, 3, 4, 5] and not p.more

    # forwards from the start, from bob's side of the same conversation
    p = await bob.history("alice", after=0, limit=5)
    assert pos(p) == [1, 2, 3, 4, 5] and p.more
    p = await bob.history("alice", after=5, limit=5)
    assert pos(p) == [6, 7, 8, 9, 10] and p.more
    p = await bob.history("alice", after=10, limit=5)
    assert pos(p) == [11, 12] and not p.more
    p = await bob.history("alice", after=12)
    assert pos(p) == [] and not p.more
    p = await bob.history("alice", after=7, limit=5)
    assert pos(p) == [8, 9, 10, 11, 12] and not p.more

    # no anchor, default limit: everything
    p = await alice.history("bob")
    assert pos(p) == list(range(1, 13)) and not p.more
    ids = [m.id for m in p.messages]
    assert ids == sorted(ids) and len(set(ids)) == 12


async def test_history_errors_and_empty_conversation(server, clients) -> None:
    alice = await clients.user(server, "alice")
    await clients.register(server, "carol")
    await alice.expect_error(History(rid=alice.rid(), with_user="nobody"), ErrorCode.UNKNOWN_USER)
    await alice.expect_error(History(rid=alice.rid(), with_user="BAD NAME"), ErrorCode.UNKNOWN_USER)
    await alice.expect_error(
        History(rid=alice.rid(), with_user="carol", before=3, after=1), ErrorCode.INVALID_FIELD
    )
    await alice.expect_error(
        History(rid=alice.rid(), with_user="carol", limit=201), ErrorCode.INVALID_FIELD
    )
    p = await alice.history("carol")
    assert p.messages == () and not p.more


async def test_pages_are_cut_by_frame_size(tmp_path, clients) -> None:
    frame = 200_000
    async with run_server(
        tmp_path, max_frame_size=frame, max_text_len=60_000, max_meta_size=1000
    ) as srv:
        small = Limits(max_frame_size=frame)  # the client refuses bigger frames (CLOSE 1009)
        alice = await clients.user(srv, "alice", limits=small)
        welcome_limits = (await (await clients.connect(srv)).hello()).limits
        assert welcome_limits["max_frame_size"] == frame
        assert welcome_limits["max_text_len"] == 60_000
        bob = await clients.user(srv, "bob", sync=False, limits=small)
        n = 10
        for i in range(n):
            await alice.send("bob", chr(ord("a") + i) * 50_000)

        # SYNC: at most 3 updates of ~50 KB fit under 200,000 - 1024 bytes
        pages = await bob.sync_all(0, limit=100)
        assert len(pages) >= 4
        for p in pages[:-1]:
            assert p.more and 1 <= len(p.updates) <= 3
        assert not pages[-1].more
        log = messages_of(pages)
        assert [u.seq for u in log] == list(range(1, n + 1))
        assert [u.message.text[0] for u in log] == [chr(ord("a") + i) for i in range(n)]

        # HISTORY, both directions, same cut; nearest the anchor is kept
        p = await bob.history("alice", limit=100)
        assert p.more and [m.pos for m in p.messages] == [8, 9, 10]
        p = await bob.history("alice", before=8, limit=100)
        assert p.more and [m.pos for m in p.messages] == [5, 6, 7]
        p = await bob.history("alice", after=0, limit=100)
        assert p.more and [m.pos for m in p.messages] == [1, 2, 3]
        p = await bob.history("alice", after=9, limit=100)
        assert not p.more and [m.pos for m in p.messages] == [10]
        full = await bob.full_history("alice", limit=100)
        assert [m.pos for m in full] == list(range(1, n + 1))

        # every frame the server wrote stayed within the limit
        assert bob.frame_sizes and max(bob.frame_sizes) <= frame
        assert max(bob.frame_sizes) > 100_000  # the cut pages really were large
        assert bob.terminated is None


@pytest.mark.parametrize("limit", [None, 1000])
async def test_sync_page_limit_bounds(server, clients, limit) -> None:
    alice = await clients.user(server, "alice")
    page = await alice.sync(0, limit)
    assert page.updates == () and page.head == 0 and not page.more
    await alice.expect_error(Sync(rid=alice.rid(), since=0, limit=1001), ErrorCode.INVALID_FIELD)
    await alice.expect_error(Sync(rid=alice.rid(), since=0, limit=0), ErrorCode.INVALID_FIELD)


async def test_rawclient_enforces_small_frame_limit(tmp_path, clients) -> None:
    """Guard for the size test above: a client with a small limit does refuse a big frame,
    so a page that was not cut would fail that test."""
    async with run_server(tmp_path) as srv:
        alice = await clients.user(srv, "alice")
        await clients.register(srv, "bob")
        await alice.send("bob", "x" * 60_000)
        await alice.send("bob", "y" * 60_000)
        tiny = await clients.user(
            srv,
            "bob",
            register=False,
            sync=False,
            limits=Limits(max_frame_size=100_000, max_text_len=60_000, max_meta_size=1000),
        )
        with pytest.raises(AssertionError):
            await tiny.sync_all(0)
        assert isinstance(tiny, RawClient) and tiny.conn.close_code == 1009


async def test_welcome_advertises_the_servers_rates(tmp_path, clients) -> None:
    """WELCOME's limits.rates (SPEC.md 5) are the buckets the server enforces: a client
    that paces by them is not refused."""
    async with run_server(
        tmp_path, send_rate=5.0, send_burst=3.0, typing_rate=1.5, presence_interval=0.75
    ) as srv:
        rates = (await (await clients.connect(srv)).hello()).limits["rates"]
        assert rates == {
            "presence_interval": 0.75,
            "typing_rate": 1.5,
            "typing_burst": srv.config.typing_burst,
            "send_rate": 5.0,
            "send_burst": 3.0,
            "write_rate": srv.config.write_rate,
            "write_burst": srv.config.write_burst,
        }
        alice = await clients.user(srv, "alice")
        await clients.user(srv, "bob")
        for i in range(int(rates["send_burst"])):  # the burst passes at once
            await alice.send("bob", f"m{i}")
        over = await alice.expect_error(
            alice.send_msg("bob", "one over the burst"), ErrorCode.RATE_LIMITED
        )
        assert over.retry_after is not None and over.retry_after <= 1 / rates["send_rate"] + 0.01
