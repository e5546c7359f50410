"""Lost acknowledgements: the connection ends after the server committed a SEND but before
its SENT reached the sender. The retry with the same cmid must find the original: exactly
one stored message, answered with the original id, position, seq and time, duplicate=true
(SPEC.md 10.2, 10.3).

Three ways to lose the SENT: a proxy that swallows it and resets both connections; a client
that writes SEND and closes its socket at once; and the same, raced by an immediate retry
from another device of the same account. The client library gets the proxy treatment too.
"""

from __future__ import annotations

import asyncio

import liaotian.client as lt
import pytest
from faultkit import HOST, DroppingProxy, Opened
from liaotian.client import Backoff
from liaotian.protocol import Sent
from liaotian.server.testing import run_server
from rawclient import PASSWORD, Closed, messages_of


def same_message(a: Sent, b: Sent) -> bool:
    return (a.id, a.conv, a.pos, a.seq, a.ts, a.cmid) == (b.id, b.conv, b.pos, b.seq, b.ts, b.cmid)


async def test_sent_swallowed_after_commit_retry_gets_the_original(
    tmp_path, opened: Opened
) -> None:
    async with run_server(tmp_path) as srv:
        proxy = await DroppingProxy(srv.port).start()
        opened.on_close(proxy.close)
        bob = await opened.user(srv, "bob", register=True)
        alice = await opened.user(srv, "alice", register=True, port=proxy.port)
        token = alice.token
        assert token

        msg = alice.send_msg("bob", "across the cut", cmid="lost-ack-1")
        await alice.write(msg)
        with pytest.raises(Closed):  # the connection drops with the SENT in flight
            await alice.answer(msg.rid)
        assert alice.terminated is not None and alice.terminated.code is None  # no CLOSE
        (original,) = proxy.dropped
        assert isinstance(original, Sent) and not original.duplicate
        assert original.cmid == "lost-ack-1"

        # the commit happened: the recipient has it already
        push = await bob.next_updates()
        assert [u.message.id for u in push.updates] == [original.id]

        # reconnect directly, AUTH with the token, SYNC from the cursor (0): the log shows it
        again = await opened.resume(srv, token)
        entries = messages_of(await again.sync_all(0))
        assert [(u.seq, u.message.id, u.message.cmid) for u in entries] == [
            (original.seq, original.id, "lost-ack-1")
        ]
        # resend the unacknowledged SEND with the same cmid: answered with the original
        retry = await again.send("bob", "across the cut (retry)", cmid="lost-ack-1")
        assert retry.duplicate and same_message(retry, original), (retry, original)
        await bob.assert_no_push()  # nothing was delivered twice

        # exactly one stored message, the first text
        history = await again.full_history("bob")
        assert [(m.id, m.cmid, m.text) for m in history] == [
            (original.id, "lost-ack-1", "across the cut")
        ]
        bob_log = messages_of(await (await opened.resume(srv, bob.token)).sync_all(0))
        assert [u.message.id for u in bob_log] == [original.id]


async def test_send_then_close_at_once_retry_gets_the_original(tmp_path, opened: Opened) -> None:
    async with run_server(tmp_path) as srv:
        bob = await opened.user(srv, "bob", register=True)
        alice = await opened.user(srv, "alice", register=True, sync=False)
        token = alice.token
        assert token
        await alice.write(alice.send_msg("bob", "fire and forget", cmid="gone-1"))
        await alice.close()  # FIN right behind the SEND: the SENT has nowhere to go

        push = await bob.next_updates()
        (stored,) = [u.message for u in push.updates]
        assert (stored.cmid, stored.text) == ("gone-1", "fire and forget")

        again = await opened.resume(srv, token)
        retry = await again.send("bob", "second try", cmid="gone-1")
        assert retry.duplicate
        assert (retry.id, retry.pos, retry.conv, retry.ts) == (
            stored.id,
            stored.pos,
            stored.conv,
            stored.ts,
        )
        await bob.assert_no_push()
        history = await again.full_history("bob")
        assert [(m.id, m.text) for m in history] == [(stored.id, "fire and forget")]


async def test_immediate_retry_from_another_device_races_the_original(
    tmp_path, opened: Opened
) -> None:
    """The original SEND (its connection closed at once) and the retry (on a second
    device, already live) reach the server together, often in one group commit: exactly
    one message per cmid, whichever the server takes first."""
    rounds = 20
    async with run_server(tmp_path) as srv:
        bob = await opened.user(srv, "bob", register=True)
        first = await opened.user(srv, "alice", register=True, device="phone", sync=False)
        phone_token = first.token
        await first.close()
        laptop = await opened.user(srv, "alice", device="laptop")
        ids: dict[str, int] = {}
        for i in range(rounds):
            cmid = f"race-{i}"
            phone = await opened.resume(srv, phone_token)
            await phone.write(phone.send_msg("bob", f"original {i}", cmid=cmid))
            await phone.close()
            retry = await laptop.send("bob", f"retry {i}", cmid=cmid)
            again = await laptop.send("bob", f"retry again {i}", cmid=cmid)
            assert again.duplicate and same_message(again, retry)
            ids[cmid] = retry.id
        # bob got exactly one message per cmid, with the id both answers carried
        got: list[tuple[str, int]] = []
        async with asyncio.timeout(10):
            while len(got) < rounds:
                push = await bob.next_updates()
                got += [(u.message.cmid, u.message.id) for u in push.updates]
        await bob.assert_no_push()
        assert sorted(got) == sorted(ids.items())
        history = await laptop.full_history("bob")
        assert len(history) == rounds
        assert sorted((m.cmid, m.id) for m in history) == sorted(ids.items())
        assert [m.pos for m in history] == list(range(1, rounds + 1))


async def test_client_library_recovers_a_swallowed_sent(tmp_path, opened: Opened) -> None:
    async with run_server(tmp_path) as srv:
        for name in ("alice", "bob"):
            await lt.register(srv.host, srv.port, name, PASSWORD)
        proxy = await DroppingProxy(srv.port).start()
        opened.on_close(proxy.close)
        async with lt.connect(
            HOST,
            proxy.port,
            username="alice",
            password=PASSWORD,
            device="d",
            backoff=Backoff(base=0.05, cap=0.2),
        ) as alice:
            sent = await alice.send("bob", "hello through the cut", cmid="lib-lost-1")
            (original,) = proxy.dropped
            assert proxy.cut.is_set()
            # send() returned once, with the original message (rebuilt from the retry)
            assert (sent.id, sent.pos, sent.conv, sent.seq) == (
                original.id,
                original.pos,
                original.conv,
                original.seq,
            )
            later = await alice.send("bob", "after the reconnect")
            assert later.id != sent.id and later.pos == sent.pos + 1
        bob = await opened.user(srv, "bob")
        log = messages_of(await bob.sync_all(0))
        assert [(u.message.cmid, u.message.text) for u in log] == [
            ("lib-lost-1", "hello through the cut"),
            (later.cmid, "after the reconnect"),
        ]
        assert log[0].message.id == original.id
