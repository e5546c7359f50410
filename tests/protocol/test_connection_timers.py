"""Timers: the caller passes the time in; nothing sleeps and nothing reads a clock."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from liaotian.protocol import (
    Close,
    CloseCode,
    Connection,
    ConnectionTerminated,
    Limits,
    Ping,
    Pong,
    Role,
    State,
    Sync,
)

if TYPE_CHECKING:  # helpers come from conftest.py fixtures; imported for annotations only
    from conftest import Pair

Decode = Callable[..., list[Any]]
LIMITS = Limits(auth_timeout=10.0, idle_timeout=90.0, heartbeat_interval=30.0)


def only_close(conn: Connection, decode: Decode) -> Close:
    (close,) = decode(conn.data_to_send())
    assert isinstance(close, Close)
    return close


# --------------------------------------------------------------------------- auth deadline


@pytest.mark.parametrize("created", [0.0, 1000.5])
def test_server_auth_deadline(created: float, decode: Decode) -> None:
    server = Connection(Role.SERVER, limits=LIMITS, now=created)
    assert server.get_timer() == created + 10.0
    server.handle_timer(created + 9.999)
    assert not server.closed and server.data_to_send() == b""
    server.handle_timer(created + 10.0)
    assert server.closed and server.close_code == CloseCode.AUTH_TIMEOUT
    assert only_close(server, decode).code == 4000
    assert list(server.events_received()) == [
        ConnectionTerminated(4000, "not authenticated in time", by_peer=False)
    ]
    assert server.get_timer() is None


def test_auth_deadline_is_not_extended_by_traffic(make_pair: type[Pair], decode: Decode) -> None:
    pair = make_pair(LIMITS, now=50.0)
    pair.handshake(now=55.0)  # HELLO/WELCOME at t=55: connected but not authenticated
    server = pair.server
    assert server.state is State.CONNECTED
    server.receive_data(Ping(rid=9).encode(), now=59.0)
    list(server.events_received())
    assert server.get_timer() == 60.0
    server.handle_timer(59.99)
    assert not server.closed
    server.handle_timer(60.0)
    assert server.close_code == 4000


def test_authenticated_server_has_no_auth_deadline(make_pair: type[Pair]) -> None:
    pair = make_pair(LIMITS, now=0.0)
    pair.login(now=3.0)
    server = pair.server
    assert server.get_timer() == 3.0 + 90.0  # only the idle timeout is left
    server.handle_timer(10.0)
    server.handle_timer(89.0)
    assert not server.closed and server.data_to_send() == b""


def test_auth_timeout_fires_before_idle_when_both_are_due(decode: Decode) -> None:
    server = Connection(Role.SERVER, limits=LIMITS, now=0.0)
    server.handle_timer(500.0)
    assert only_close(server, decode).code == CloseCode.AUTH_TIMEOUT


# --------------------------------------------------------------------------- idle timeout


def test_server_idle_timeout(make_pair: type[Pair], decode: Decode) -> None:
    pair = make_pair(LIMITS, now=0.0)
    pair.login(now=1.0)
    server = pair.server
    server.receive_data(Ping(rid=50).encode(), now=20.0)
    list(server.events_received())
    server.send(Pong(rid=50, time=20_000))
    server.data_to_send()
    assert server.get_timer() == 110.0
    server.handle_timer(109.9)
    assert not server.closed
    server.handle_timer(110.0)
    assert server.closed and server.close_code == CloseCode.IDLE_TIMEOUT
    assert only_close(server, decode).code == 4001
    assert list(server.events_received()) == [
        ConnectionTerminated(4001, "nothing received in time", by_peer=False)
    ]


def test_sending_does_not_reset_the_idle_timer(make_pair: type[Pair]) -> None:
    pair = make_pair(LIMITS, now=0.0)
    pair.login(now=0.0)
    server = pair.server
    server.handle_timer(80.0)
    server.send(Pong(rid=0, time=0))  # the server talking does not prove the peer is alive
    server.handle_timer(90.0)
    assert server.close_code == CloseCode.IDLE_TIMEOUT


def test_idle_timeout_when_limits_make_it_the_first_deadline(decode: Decode) -> None:
    server = Connection(Role.SERVER, limits=Limits(auth_timeout=100.0, idle_timeout=5.0))
    assert server.get_timer() == 5.0
    server.handle_timer(5.0)
    assert only_close(server, decode).code == CloseCode.IDLE_TIMEOUT


def test_client_idle_timeout_wins_over_heartbeat(make_pair: type[Pair], decode: Decode) -> None:
    pair = make_pair(LIMITS, now=0.0)
    pair.login(now=0.0)
    client = pair.client
    client.handle_timer(90.0)  # heartbeat also overdue: idle is checked first
    assert client.close_code == CloseCode.IDLE_TIMEOUT
    assert only_close(client, decode).code == 4001


# --------------------------------------------------------------------------- heartbeat


def test_client_heartbeat_sends_ping_after_the_welcome_interval(
    make_pair: type[Pair], decode: Decode
) -> None:
    pair = make_pair(LIMITS, now=100.0)
    pair.handshake(heartbeat=5.0, now=100.0)  # WELCOME's heartbeat beats Limits' 30 s
    client = pair.client
    assert client.get_timer() == 105.0
    client.handle_timer(104.99)
    assert client.data_to_send() == b""
    client.handle_timer(105.0)
    (ping,) = decode(client.data_to_send())
    assert isinstance(ping, Ping) and ping.rid >= 1
    assert client.pending_requests == 1
    assert client.get_timer() == 110.0  # the PING counts as sent traffic
    assert pair.server.state is State.CONNECTED
    pair.server.receive_data(ping.encode(), now=105.1)
    assert list(pair.server.events_received()) == [ping]
    pair.server.send(Pong(rid=ping.rid, time=105_100))
    assert pair.to_client(now=105.2) == [Pong(rid=ping.rid, time=105_100)]
    assert client.pending_requests == 0


def test_heartbeat_counts_from_the_last_frame_sent(make_pair: type[Pair], decode: Decode) -> None:
    pair = make_pair(LIMITS, now=0.0)
    pair.login(now=0.0, heartbeat=5.0)
    client = pair.client
    client.handle_timer(3.0)  # nothing due; the clock moves to 3
    client.send(Sync(rid=client.next_rid(), since=0))
    client.data_to_send()
    assert client.get_timer() == 8.0
    client.handle_timer(7.9)
    assert client.data_to_send() == b""
    client.handle_timer(8.0)
    assert [type(m) for m in decode(client.data_to_send())] == [Ping]


def test_heartbeat_falls_back_to_limits_when_welcome_has_none(make_pair: type[Pair]) -> None:
    pair = make_pair(LIMITS, now=0.0)
    pair.handshake(heartbeat=0.0, now=0.0)
    assert pair.client.get_timer() == 30.0


def test_no_heartbeat_before_welcome() -> None:
    client = Connection(Role.CLIENT, limits=LIMITS, now=7.0)
    assert client.get_timer() == 97.0  # only idle
    client.handle_timer(50.0)
    assert client.data_to_send() == b""
    assert not client.closed


def test_server_never_sends_heartbeats(make_pair: type[Pair]) -> None:
    pair = make_pair(LIMITS, now=0.0)
    pair.login(now=0.0, heartbeat=5.0)
    for t in (5.0, 10.0, 30.0, 60.0, 89.0):
        pair.server.handle_timer(t)
    assert pair.server.data_to_send() == b""


# --------------------------------------------------------------------------- closed


def test_get_timer_is_none_when_closed(make_pair: type[Pair]) -> None:
    for role in Role:
        conn = Connection(role, limits=LIMITS)
        assert conn.get_timer() is not None
        conn.close()
        assert conn.get_timer() is None
        conn.data_to_send()
        conn.handle_timer(10_000.0)  # nothing happens after the close
        assert conn.data_to_send() == b""
    pair = make_pair(LIMITS)
    pair.login()
    pair.client.receive_eof()
    list(pair.client.events_received())  # the EOF takes effect when its event is pulled
    assert pair.client.get_timer() is None


def test_timer_is_always_in_the_future_or_due(make_pair: type[Pair]) -> None:
    pair = make_pair(LIMITS, now=0.0)
    pair.login(now=0.0, heartbeat=5.0)
    now = 0.0
    for _ in range(30):
        timer = pair.client.get_timer()
        assert timer is not None and timer >= now
        now = timer
        pair.client.handle_timer(now)
        out = pair.client.data_to_send()
        if pair.client.closed:
            assert pair.client.close_code == CloseCode.IDLE_TIMEOUT
            break
        assert out  # every wakeup before the idle deadline sends a PING
    assert pair.client.closed and now == 90.0


# --------------------------------------------------------------------------- SPEC.md details


def test_spec_auth_deadline_applies_again_after_logged_out(
    make_pair: type[Pair], decode: Decode
) -> None:
    from liaotian.protocol import LoggedOut, Logout

    pair = make_pair(LIMITS, now=0.0)
    pair.login(now=1.0)
    assert pair.request(Logout(rid=40), now=30.0) == [Logout(rid=40)]
    pair.answer(LoggedOut(rid=40), now=30.0)
    assert pair.server.state is State.CONNECTED
    assert pair.server.get_timer() == 10.0  # counted from the start of the connection
    pair.server.handle_timer(30.0)
    assert only_close(pair.server, decode).code == CloseCode.AUTH_TIMEOUT


def test_spec_any_bytes_reset_the_idle_timer(make_pair: type[Pair]) -> None:
    pair = make_pair(LIMITS, now=0.0)
    pair.login(now=0.0)
    server = pair.server
    server.receive_data(Ping(rid=9).encode()[:3], now=50.0)  # part of a frame is enough
    assert list(server.events_received()) == []
    assert server.get_timer() == 140.0
    server.handle_timer(139.0)
    assert not server.closed
