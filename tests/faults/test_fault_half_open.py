"""Half-open recipients: a device that vanished without a FIN. Its socket stays open, so the
server still thinks it is connected (live, in the hub) and keeps pushing into it. Nothing
may be lost because of that: on its next connection the device SYNCs from its cursor and
gets every message. And the server must not keep the dead connection forever: with a short
idle_timeout it closes it (CLOSE 4001) and drops it from the hub.

The vanished device is simulated by a socket the test stops reading and never closes (the
kernel keeps acknowledging, so the server sees nothing wrong), with a small receive buffer.
"""

from __future__ import annotations

from faultkit import Opened, send_window, server_conns, wait_for
from liaotian.protocol import CloseCode, Sent
from liaotian.server.testing import run_server
from rawclient import messages_of

IDLE = {"idle_timeout": 1.0, "heartbeat_interval": 0.5}


async def test_half_open_recipient_loses_nothing_and_is_closed_at_idle_timeout(
    tmp_path, opened: Opened
) -> None:
    async with run_server(tmp_path, **IDLE) as srv:
        alice = await opened.user(srv, "alice", register=True)
        bob = await opened.user(srv, "bob", register=True, rcvbuf=4096)
        assert bob.token
        (ghost,) = server_conns(srv, "bob")
        assert ghost.live
        # bob vanishes: from here on nobody reads his socket, and it is never closed

        sent = [await alice.send("bob", f"while you were gone {i}") for i in range(30)]
        assert ghost in server_conns(srv, "bob") and ghost.live  # the server still pushes

        # bob's next connection: AUTH, SYNC from his cursor (0): every message is there
        back = await opened.resume(srv, bob.token)
        log = messages_of(await back.sync_all(0))
        assert [(u.message.id, u.message.text) for u in log] == [
            (s.id, f"while you were gone {i}") for i, s in enumerate(sent)
        ]
        assert [u.message.pos for u in log] == list(range(1, 31))

        # the server closes the half-open one once idle_timeout passed without a byte
        # from it; the live ones stay (their PINGs count as traffic)
        async def keep_alive() -> None:
            await back.barrier()
            await alice.barrier()

        took = await wait_for(
            lambda: ghost not in server_conns(srv),
            "the half-open connection to be dropped",
            timeout=8.0,
            between=keep_alive,
        )
        print(f"half-open connection dropped {took:.2f} s after the recipient came back")
        assert server_conns(srv, "bob") != [] and ghost not in server_conns(srv, "bob")
        # what the dead socket had buffered: the 30 pushes, then CLOSE 4001, then EOF
        await bob.expect_close(CloseCode.IDLE_TIMEOUT)
        pushed = [u.message.id for p in bob.pushes for u in p.updates]
        assert pushed == [s.id for s in sent]
        await back.barrier()  # the new connection is unaffected


async def test_half_open_recipient_with_a_full_socket_is_dropped(tmp_path, opened: Opened) -> None:
    """As above, but enough is pushed to fill the socket: the server's write buffer is
    paused when the idle timeout fires, so the graceful close (CLOSE 4001, then flush)
    can never finish. transport.py promises that a peer keeping its socket unwritable for
    write_timeout seconds is disconnected: the connection must leave the hub (and free its
    per-address slot) by then instead of waiting forever for the flush.

    (Regression test: before commit d415592 the idle-timeout close path returned without
    re-arming the write deadline and the connection stayed in hub.connections forever.)"""
    write_timeout = 1.5
    async with run_server(
        tmp_path,
        **IDLE,
        write_timeout=write_timeout,
        max_outbound_buffer=64 * 1024 * 1024,
        send_bytes_burst=64 * 1024 * 1024,
        send_bytes_rate=64 * 1024 * 1024,
    ) as srv:
        alice = await opened.user(srv, "alice", register=True)
        bob = await opened.user(srv, "bob", register=True, rcvbuf=4096)
        (ghost,) = server_conns(srv, "bob")
        text = "x" * 60_000
        sent: list[Sent] = []
        for _ in range(50):  # 24 MB at most; a few MB fill the kernel buffers
            answers = await send_window(alice, "bob", [text] * 8)
            assert all(isinstance(a, Sent) for a in answers), answers
            sent += answers
            if ghost.transport.get_write_buffer_size() > 256 * 1024:
                break
        assert ghost.transport.get_write_buffer_size() > 256 * 1024, "socket never filled"

        back = await opened.resume(srv, bob.token)
        log = messages_of(await back.sync_all(0))
        assert [u.message.id for u in log] == [s.id for s in sent]

        async def keep_alive() -> None:
            await back.barrier()
            await alice.barrier()

        try:
            await wait_for(
                lambda: ghost not in server_conns(srv),
                "the half-open connection with a full socket to be dropped",
                timeout=IDLE["idle_timeout"] + write_timeout + 3.0,
                between=keep_alive,
            )
        finally:
            bob.writer.transport.abort()  # else the server's shutdown waits out its grace
        assert srv.server is not None  # its per-address slot is free again
        assert srv.server.hub.count_from("127.0.0.1") == len(server_conns(srv))
