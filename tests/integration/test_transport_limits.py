"""Bounds on what a connection may cost before and after authentication (issue 11 items
19, 21, 23 and 24), over real sockets: small frames and few frames before AUTHENTICATED,
refusals decided from the frame header, the default per-address limit, TLS connections
counted from the TCP accept with a handshake deadline, the per-user connection cap and the
server-wide budget of unread output.
"""

from __future__ import annotations

import asyncio
import ssl
import struct
from pathlib import Path

import liaotian.client as lt
import pytest
import trustme
from liaotian.protocol import Auth, Error, ErrorCode, Login, Ping, Pong, Send
from liaotian.protocol.frames import encode_frame
from liaotian.server.config import Config
from liaotian.server.testing import RunningServer, run_server
from rawclient import PASSWORD, RawClient

# ----------------------------------------------------------------------- before authentication


async def test_a_frame_above_8_kib_before_authentication_is_refused_at_its_prefix(
    server: RunningServer, clients
) -> None:
    anon = await clients.anonymous(server)
    await anon.write_raw(struct.pack(">I", 8 * 1024 + 1))  # the prefix alone: no body sent
    await anon.expect_close(1009)
    # once authenticated, large frames are fine again
    await clients.register(server, "bob")
    alice = await clients.user(server, "alice")
    ans = await alice.request(Send(rid=alice.rid(), to="bob", cmid="big", text="x" * 60_000))
    assert not isinstance(ans, Error), ans


async def test_more_than_32_frames_before_authentication_close_the_connection(
    server: RunningServer, clients
) -> None:
    anon = await clients.anonymous(server)  # HELLO was frame 1
    for _ in range(31):
        assert isinstance(await anon.request(Ping(rid=anon.rid())), Pong)
    await anon.write_raw(Ping(rid=anon.rid()).encode())  # the 33rd
    term = await anon.expect_close(1002)
    assert "before authentication" in term.reason
    # an authenticated connection has no such count
    alice = await clients.user(server, "alice")
    for _ in range(40):
        await alice.barrier()


async def test_a_refused_type_is_answered_from_the_header_without_decoding_the_payload(
    server: RunningServer, clients
) -> None:
    anon = await clients.anonymous(server)
    # SEND (30), rid 5, then bytes that are not msgpack: refused for the state, not decoded
    await anon.write_raw(encode_frame(b"\x93\x1e\x05\xc1\xc1\xc1"))
    err = await anon.answer(5)
    assert isinstance(err, Error) and (err.code, err.rid) == (ErrorCode.NOT_AUTHENTICATED, 5)
    # a frame full of empty maps of a type the state refuses: same answer
    body = b"\x93\x1e\x06\xdc" + struct.pack(">H", 8000) + b"\x80" * 8000
    await anon.write_raw(encode_frame(body))
    err = await anon.answer(6)
    assert isinstance(err, Error) and err.code == ErrorCode.NOT_AUTHENTICATED


async def test_default_per_address_limit_is_64(tmp_path: Path) -> None:
    assert Config().max_connections_per_address == 64
    async with run_server(tmp_path) as srv:  # the default: no override
        assert srv.server is not None
        opened: list[RawClient] = []
        try:
            for _ in range(64):
                opened.append(await RawClient.connect(srv.host, srv.port))
            hub = srv.server.hub
            await opened[0].wait_until(lambda: len(hub.connections) == 64, "64 accepted")
            extra = await RawClient.connect(srv.host, srv.port)
            opened.append(extra)
            await extra.expect_close(4005)
        finally:
            for c in opened:
                await c.close()


# ----------------------------------------------------------------------- TLS


@pytest.fixture
def tls(tmp_path: Path) -> tuple[trustme.CA, str, str]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_path, key_path = tmp_path / "server.pem", tmp_path / "server.key"
    cert.private_key_pem.write_to_path(str(key_path))
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    return ca, str(cert_path), str(key_path)


async def test_tls_handshakes_count_from_the_accept_and_have_a_deadline(
    tmp_path: Path, tls: tuple[trustme.CA, str, str]
) -> None:
    ca, cert, key = tls
    async with run_server(
        tmp_path, tls_cert=cert, tls_key=key, max_connections=3, auth_timeout=1.0
    ) as srv:
        assert srv.server is not None
        hub = srv.server.hub
        # three sockets that never start the handshake fill the server
        stalled = [await asyncio.open_connection(srv.host, srv.port) for _ in range(3)]
        ctx = ssl.create_default_context()
        ca.configure_trust(ctx)
        try:
            async with asyncio.timeout(5):
                while len(hub.connections) < 3:
                    await asyncio.sleep(0.01)
            with pytest.raises((ssl.SSLError, OSError, lt.LiaotianError)):
                await lt.register(srv.host, srv.port, "alice", PASSWORD, ssl=ctx, timeout=5)
            # the handshake deadline (auth_timeout) closes them
            for reader, _ in stalled:
                assert await asyncio.wait_for(reader.read(), 5) == b""
            async with asyncio.timeout(5):
                while hub.connections:
                    await asyncio.sleep(0.01)
            # and the slots are free again: a real client is served
            assert await lt.register(srv.host, srv.port, "alice", PASSWORD, ssl=ctx) == "alice"
        finally:
            for _, writer in stalled:
                writer.close()


# ----------------------------------------------------------------------- after authentication


async def test_connections_per_user_are_capped(tmp_path: Path, clients) -> None:
    async with run_server(tmp_path, max_connections_per_user=2) as srv:
        first = await clients.user(srv, "alice", "d1")
        second = await clients.resume(srv, first.token)
        third = await clients.anonymous(srv)
        err = await third.expect_error(
            Auth(rid=third.rid(), token=first.token), ErrorCode.LIMIT_REACHED
        )
        assert err.data == {"limit": "max_connections_per_user", "max": 2}
        err = await third.expect_error(
            Login(rid=third.rid(), username="alice", password=PASSWORD, device="d9"),
            ErrorCode.LIMIT_REACHED,
        )
        await second.barrier()  # the refused LOGIN changed nobody's session or token
        await first.close_gracefully()
        await third.auth(second.token)  # a slot is free again
        await third.barrier()


async def test_unread_output_of_all_connections_is_bounded(tmp_path: Path, clients) -> None:
    mib = 1024 * 1024
    async with run_server(
        tmp_path,
        max_outbound_buffer=64 * mib,
        max_outbound_total=64 * mib,
        max_text_len=900_000,
        send_bytes_rate=1e12,
        send_bytes_burst=1e12,
        send_rate=1e6,
        send_burst=1e6,
    ) as srv:
        assert srv.server is not None
        hub = srv.server.hub
        await clients.register(srv, "bob")
        readers = [await clients.user(srv, "bob", f"d{i}", register=False) for i in range(2)]
        alice = await clients.user(srv, "alice")
        uid = await srv.server.store.user_id("bob")
        assert uid is not None and len(hub.of_user(uid)) == len(readers) == 2
        # bob's two connections never read from here on
        # ~50 MiB to each of bob's two connections: below the per-connection 64 MiB, above
        # the 64 MiB for all connections together
        text = "y" * 880_000
        for i in range(60):
            await alice.write(Send(rid=alice.rid(), to="bob", cmid=f"m{i}", text=text))
            await alice.answer(alice.conn._next_rid)
        async with asyncio.timeout(10):  # the one with most unread is evicted (4003)
            while len(hub.of_user(uid)) > 1:
                await asyncio.sleep(0.05)
        assert hub.outbound <= 64 * mib and len(hub.of_user(uid)) == 1
        await alice.barrier()


def test_tls_on_uvloop_where_reading_starts_before_start_tls(
    tmp_path: Path, tls: tuple[trustme.CA, str, str]
) -> None:
    """The production loop (uvloop) delivers the first TLS bytes to the plain protocol before
    start_tls takes the transport over; they must reach the TLS layer (pipelined frames too).
    """
    uvloop = pytest.importorskip("uvloop")
    ca, cert, key = tls

    async def scenario() -> None:
        async with run_server(tmp_path, tls_cert=cert, tls_key=key) as srv:
            ctx = ssl.create_default_context()
            ca.configure_trust(ctx)
            for name in ("alice", "bob"):
                assert await lt.register(srv.host, srv.port, name, PASSWORD, ssl=ctx) == name

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(scenario())
