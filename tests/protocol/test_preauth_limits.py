"""The server codec before authentication (issue 11 items 19 and 23): small frames only,
the limit rises with AUTHENTICATED and falls with LOGGED_OUT, and a closed connection
drops its buffered input at once."""

from __future__ import annotations

import struct

from liaotian.protocol import (
    Authenticated,
    Connection,
    ConnectionTerminated,
    Hello,
    Limits,
    LoggedOut,
    Role,
    Welcome,
)
from liaotian.protocol.frames import peek_header

LIMITS = Limits(max_preauth_frame_size=1024)


def authenticated_server() -> Connection:
    c = Connection(Role.SERVER, limits=LIMITS)
    c.receive_data(Hello(rid=1, versions=(1,), client="t").encode())
    assert isinstance(c.next_event(), Hello)
    c.send(Welcome(rid=1, version=1, server="s", time=0, heartbeat=30.0))
    return c


def test_the_frame_limit_follows_the_session() -> None:
    c = authenticated_server()
    c.receive_data(struct.pack(">I", 1025))
    events = list(c.events_received())
    assert [(type(e), e.code) for e in events] == [(ConnectionTerminated, 1009)]

    c = authenticated_server()
    c.send(Authenticated(rid=0, user="a", device="d", head=0, acked=0, token="t"))
    c.receive_data(struct.pack(">I", 2000) + b"\xc1" * 2000)  # accepted once authenticated
    assert [e.code for e in c.events_received()] == [1001]  # (garbage: answered, not closed)
    assert not c.closed
    c.send(LoggedOut(rid=0))
    c.receive_data(struct.pack(">I", 1025))
    events = list(c.events_received())
    assert [(type(e), e.code) for e in events] == [(ConnectionTerminated, 1009)]


def test_closing_frees_a_partial_frame_and_queued_frames_at_once() -> None:
    c = authenticated_server()
    c.receive_data(struct.pack(">I", 1000) + b"\x00" * 900)  # a partial frame
    assert c._reader.buffered == 904
    c.close(1000, "bye")
    assert c._reader.buffered == 0
    c.receive_data(b"\x00" * 100)
    assert c._reader.buffered == 0


def test_peek_header_reads_type_and_rid_only() -> None:
    assert peek_header(b"\x93\x1e\x05\xc1") == (30, 5)
    assert peek_header(b"\x93\xcd\x01\x00\xce\x00\x01\x00\x00") == (256, 65536)
    assert peek_header(b"\x93\xd0\x03\x08\x80") == (3, 8)
    assert peek_header(b"\x93\x00\x05\x80") is None  # type 0
    assert peek_header(b"\x93\xff\x05\x80") is None  # negative type
    assert peek_header(b"\x92\x03\x05") is None
    assert peek_header(b"\x93\xcd\x01") is None  # truncated
