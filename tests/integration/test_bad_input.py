"""Bad input from one client is answered with its documented code, while a well-behaved pair
of clients on the same server keeps chatting (checked after every case)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct

import msgpack
import pytest
from liaotian.protocol import (
    Close,
    CloseCode,
    Error,
    ErrorCode,
    Hello,
    History,
    Login,
    MessageType,
    Ping,
    Send,
    Sync,
)
from liaotian.server.testing import run_server
from rawclient import PASSWORD

HEADER = struct.Struct(">I")


class Chat:
    """alice and bob, both live; check() sends both ways and verifies the pushes."""

    def __init__(self, alice, bob) -> None:
        self.alice, self.bob = alice, bob
        self.n = 0

    @classmethod
    async def start(cls, srv, clients) -> Chat:
        chat = cls(await clients.user(srv, "alice"), await clients.user(srv, "bob"))
        await chat.check()
        return chat

    async def check(self) -> None:
        for me, peer in ((self.alice, self.bob), (self.bob, self.alice)):
            self.n += 1
            text = f"still fine {self.n}"
            sent = await me.send(peer.user, text)
            assert sent.pos == self.n and not sent.duplicate
            push = await peer.next_updates()
            assert [u.message.text for u in push.updates] == [text]
            assert push.updates[0].message.id == sent.id


@pytest.fixture
async def chat(server, clients) -> Chat:
    return await Chat.start(server, clients)


async def test_oversized_length_prefix_closes_1009(server, clients, chat) -> None:
    c = await clients.anonymous(server)
    # announce a 2 GiB body, send a few bytes of it: the server must not wait for the rest
    await c.write_raw(HEADER.pack(0x7FFF_FFFF) + b"\x93\x01")
    await c.expect_close(CloseCode.FRAME_TOO_LARGE)
    await chat.check()
    # just above the limit, before HELLO, also with nothing but the prefix
    c = await clients.connect(server)
    await c.write_raw(HEADER.pack(server.config.max_frame_size + 1))
    await c.expect_close(CloseCode.FRAME_TOO_LARGE)
    await chat.check()


async def test_frame_of_exactly_max_size_is_read(tmp_path, clients) -> None:
    async with run_server(
        tmp_path, max_frame_size=100_000, max_text_len=60_000, max_meta_size=1000
    ) as srv:
        chat = await Chat.start(srv, clients)
        c = await clients.user(srv, "carol")
        msg = c.send_msg("alice", "x" * 99_000)
        msg = c.send_msg("alice", "x" * (99_000 + 100_004 - len(msg.encode())), cmid=msg.cmid)
        frame = msg.encode()
        assert len(frame) - 4 == 100_000
        await c.write_raw(frame)
        err = await c.answer(msg.rid)  # read whole, then refused for the text size
        assert isinstance(err, Error) and err.code == ErrorCode.MESSAGE_TOO_LARGE
        await c.barrier()
        await chat.check()


async def test_garbage_body_is_error_1001(server, clients, chat) -> None:
    c = await clients.anonymous(server)
    garbage = b"\xc1" + os.urandom(11)  # 0xc1 is never valid msgpack
    await c.write_raw(HEADER.pack(len(garbage)) + garbage)
    err = await c.next_push()
    assert isinstance(err, Error) and err.code == ErrorCode.MALFORMED_FRAME and err.rid == 0
    # well-formed msgpack of the wrong shape, and a payload that is not a map
    for body in (b"\xa3abc", b"\x92\x01\x02", b"\x93\x03\x07\x01", b"\x93\x03\xff\x80"):
        await c.write_raw(HEADER.pack(len(body)) + body)
        err = await c.next_push() if body != b"\x93\x03\x07\x01" else await c.answer(7)
        assert isinstance(err, Error) and err.code == ErrorCode.MALFORMED_FRAME, body
    # an ext value (timestamp) anywhere is malformed too
    body = b"\x93\x03\x08\x81\xa1t\xd6\xff\x00\x00\x00\x01"
    await c.write_raw(HEADER.pack(len(body)) + body)
    err = await c.next_push()
    assert isinstance(err, Error) and err.code == ErrorCode.MALFORMED_FRAME
    await c.barrier()  # the connection goes on with the next frame
    await chat.check()


async def test_bin_map_keys_are_error_1001(server, clients, chat) -> None:
    """SPEC 1.3/2.3: map keys MUST be str. A SEND whose payload has a bin key, at the top or
    nested in `meta`, is ERROR 1001 (rid 0) and stores nothing; the connection goes on."""
    a = chat.alice
    good = {"to": "bob", "cmid": "bin-key", "text": "never stored"}
    for payload in ({**good, b"k": 1}, {**good, "meta": {"x": [{b"k": 1}]}}):
        body = msgpack.packb([int(MessageType.SEND), 77, payload])
        await a.write_raw(HEADER.pack(len(body)) + body)
        err = await a.next_push()
        assert isinstance(err, Error) and (err.code, err.rid) == (ErrorCode.MALFORMED_FRAME, 0)
    await a.barrier()
    await chat.check()  # bob got no "never stored" push: check() sees only its own texts
    page = await a.history("bob")
    assert "never stored" not in [m.text for m in page.messages]


async def test_truncated_frame_then_eof_closes_1002(server, clients, chat) -> None:
    c = await clients.anonymous(server)
    await c.write_raw(HEADER.pack(50) + b"\x93" + b"\x00" * 9)
    c.writer.write_eof()
    await c.expect_close(CloseCode.PROTOCOL_ERROR)
    await chat.check()
    # a truncated prefix counts as well
    c = await clients.anonymous(server)
    await c.write_raw(b"\x00\x00")
    c.writer.write_eof()
    await c.expect_close(CloseCode.PROTOCOL_ERROR)
    await chat.check()


async def test_eof_at_a_frame_boundary_just_ends(server, clients, chat) -> None:
    c = await clients.anonymous(server)
    ping = Ping(rid=c.rid())
    await c.write(ping)
    c.writer.write_eof()
    await c.expect_eof()
    assert c.answers[ping.rid].TYPE == MessageType.PONG  # answered before the end
    assert c.terminated is not None and c.terminated.code is None  # no CLOSE frame
    await chat.check()


async def test_unknown_and_server_only_types_are_1002(server, clients, chat) -> None:
    c = await clients.anonymous(server)
    for msg_type in (999, 65535, int(MessageType.WELCOME), int(MessageType.SENT)):
        rid = c.rid()
        await c.write_frame(msg_type, rid, {})
        err = await c.answer(rid)
        assert isinstance(err, Error) and err.code == ErrorCode.UNKNOWN_TYPE, msg_type
    await c.barrier()
    await chat.check()


async def test_requests_before_hello_are_1004(server, clients, chat) -> None:
    c = await clients.connect(server)
    for msg in (
        Ping(rid=c.rid()),
        Login(rid=c.rid(), username="alice", password=PASSWORD, device="d1"),
        Send(rid=c.rid(), to="bob", cmid="x", text="hi"),
    ):
        await c.expect_error(msg, ErrorCode.BAD_STATE, raw=True)
    await c.hello()  # still possible afterwards
    await c.expect_error(Hello(rid=c.rid(), versions=(1,)), ErrorCode.BAD_STATE, raw=True)
    await chat.check()


async def test_session_requests_before_authentication_are_2001(server, clients, chat) -> None:
    c = await clients.anonymous(server)
    for msg in (
        Send(rid=c.rid(), to="bob", cmid="x", text="hi"),
        Sync(rid=c.rid(), since=0),
        History(rid=c.rid(), with_user="bob"),
    ):
        await c.expect_error(msg, ErrorCode.NOT_AUTHENTICATED, raw=True)
    await c.barrier()
    await chat.check()
    # refusals of this kind do not count as protocol errors: many do not close
    for _ in range(15):
        await c.expect_error(Sync(rid=c.rid(), since=0), ErrorCode.NOT_AUTHENTICATED, raw=True)
    await c.barrier()
    await chat.check()


async def test_wrong_password_is_2002(server, clients, chat) -> None:
    c = await clients.anonymous(server)
    await c.expect_error(
        Login(rid=c.rid(), username="alice", password="not the one", device="d9"),
        ErrorCode.BAD_CREDENTIALS,
    )
    await chat.check()


async def test_message_to_unknown_user_is_3001(server, clients, chat) -> None:
    carol = await clients.user(server, "carol")
    await carol.expect_error(carol.send_msg("nobody", "hi"), ErrorCode.UNKNOWN_USER)
    await chat.check()


async def test_more_than_ten_malformed_frames_close_1002(server, clients, chat) -> None:
    c = await clients.anonymous(server)
    bad = HEADER.pack(3) + b"\xc1\xc1\xc1"
    await c.write_raw(bad * 10)
    for _ in range(10):
        err = await c.next_push()
        assert isinstance(err, Error) and err.code == ErrorCode.MALFORMED_FRAME
    await c.barrier()  # ten are tolerated
    await chat.check()
    await c.write_raw(bad)
    err = await c.next_push()  # the eleventh is still answered, then CLOSE
    assert isinstance(err, Error) and err.code == ErrorCode.MALFORMED_FRAME
    await c.expect_close(CloseCode.PROTOCOL_ERROR)
    await chat.check()


async def test_sync_past_head_is_3003(server, clients, chat) -> None:
    carol = await clients.user(server, "carol", sync=False)
    await carol.expect_error(Sync(rid=carol.rid(), since=1), ErrorCode.INVALID_CURSOR)
    err = await chat.alice.expect_error(
        Sync(rid=chat.alice.rid(), since=10_000), ErrorCode.INVALID_CURSOR
    )
    assert err.rid != 0
    await chat.check()  # alice's connection is still live


async def test_text_and_meta_over_the_limit_are_3002(server, clients, chat) -> None:
    carol = await clients.user(server, "carol")
    limit = server.config.max_text_len
    await carol.expect_error(
        carol.send_msg("alice", "x" * (limit + 1)), ErrorCode.MESSAGE_TOO_LARGE
    )
    # the limit counts UTF-8 bytes, not characters
    await carol.expect_error(
        carol.send_msg("alice", "€" * (limit // 3 + 1)), ErrorCode.MESSAGE_TOO_LARGE
    )
    await carol.expect_error(
        carol.send_msg("alice", "m", meta={"k": "v" * 17_000}), ErrorCode.MESSAGE_TOO_LARGE
    )
    # exactly at the limit is accepted and delivered whole
    await chat.alice.barrier()
    sent = await carol.send("alice", "€" * (limit // 3) + "x" * (limit % 3))
    push = await chat.alice.next_updates()
    assert push.updates[0].message.id == sent.id
    assert len(push.updates[0].message.text.encode()) == limit
    # an over-long or empty cmid is an invalid field
    await carol.expect_error(
        Send(rid=carol.rid(), to="alice", cmid="c" * 65, text="t"), ErrorCode.INVALID_FIELD
    )
    await carol.expect_error(
        Send(rid=carol.rid(), to="alice", cmid="", text="t"), ErrorCode.INVALID_FIELD
    )
    await chat.check()


async def test_invalid_fields_and_rids(server, clients, chat) -> None:
    c = await clients.anonymous(server)
    rid = c.rid()
    await c.write_frame(MessageType.PING, 0, {})  # a request with rid 0
    err = await c.next_push()
    assert isinstance(err, Error) and err.code == ErrorCode.INVALID_FIELD
    await c.write_frame(MessageType.LOGIN, rid, {"username": "alice"})  # missing fields
    err = await c.answer(rid)
    assert isinstance(err, Error) and err.code == ErrorCode.INVALID_FIELD
    await c.write_frame(MessageType.CLOSE, 0, {"reason": "no code"})  # does not close
    err = await c.next_push()
    assert isinstance(err, Error) and err.code == ErrorCode.INVALID_FIELD
    await c.barrier()
    await chat.check()


async def test_unsupported_version_is_1005_then_close_4004(server, clients, chat) -> None:
    c = await clients.connect(server)
    hello = Hello(rid=c.rid(), versions=(2, 7), client="future/9")
    err = await c.request(hello)
    assert isinstance(err, Error) and err.code == ErrorCode.UNSUPPORTED_VERSION
    assert err.rid == hello.rid
    assert err.data == {"versions": [1]}
    await c.expect_close(CloseCode.UNSUPPORTED_VERSION)
    await chat.check()
    # a list that includes 1 is fine
    c = await clients.connect(server)
    welcome = await c.hello(versions=(3, 1, 2))
    assert welcome.version == 1


async def test_client_close_ends_the_connection(server, clients, chat) -> None:
    c = await clients.anonymous(server)
    await c.write(Close(rid=0, code=1000, reason="done"))
    await c.expect_eof()
    await chat.check()


async def test_auth_deadline_closes_4000(tmp_path, clients) -> None:
    async with run_server(tmp_path, auth_timeout=1.0) as srv:
        chat = await Chat.start(srv, clients)  # authenticated in time: unaffected
        idle = await clients.anonymous(srv)
        registered = await clients.anonymous(srv)
        await registered.register("carol")
        silent = await clients.connect(srv)  # not even HELLO
        for c in (idle, registered, silent):
            await c.expect_close(CloseCode.AUTH_TIMEOUT, timeout=5)
        await chat.check()


async def test_idle_timeout_closes_4001_while_heartbeats_keep_others_open(
    tmp_path, clients
) -> None:
    async with run_server(tmp_path, idle_timeout=1.0, heartbeat_interval=0.25) as srv:
        chat = await Chat.start(srv, clients)
        quiet = await clients.user(srv, "carol")
        welcome = await (await clients.connect(srv)).hello()
        assert welcome.heartbeat == 0.25 and welcome.limits["idle_timeout"] == 1.0
        stop = asyncio.Event()

        async def heartbeat(c) -> None:
            while not stop.is_set():
                await c.barrier()  # PING/PONG
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.25)  # the advertised interval

        beats = [asyncio.ensure_future(heartbeat(c)) for c in (chat.alice, chat.bob)]
        try:
            await quiet.expect_close(CloseCode.IDLE_TIMEOUT, timeout=5)
        finally:
            stop.set()
            await asyncio.gather(*beats)
        await chat.check()


async def test_too_many_requests_in_flight_are_4001(server, clients, chat) -> None:
    carol = await clients.user(server, "carol")
    limit = server.config.max_inflight_requests
    msgs = [History(rid=carol.rid(), with_user="alice") for _ in range(limit + 300)]
    await carol.write(*msgs)  # one write: the server takes them all before answering any
    answers = [await carol.answer(m.rid) for m in msgs]
    refused = [a for a in answers if isinstance(a, Error)]
    assert refused, "no request was refused"
    assert all(a.code == ErrorCode.RATE_LIMITED and a.retry_after is None for a in refused)
    assert len(answers) - len(refused) >= limit
    await carol.barrier()  # load refusals do not close the connection
    await chat.check()
