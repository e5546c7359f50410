"""Shared helpers for the sans-I/O protocol tests.

Helpers are handed out through session-scoped fixtures (tests have no __init__.py, so they
cannot import each other); session scope keeps them usable inside hypothesis tests.
No sockets, no sleeps: a `Pair` moves bytes between a client and a server Connection.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from liaotian.protocol import (
    DEFAULT_LIMITS,
    Authenticated,
    Connection,
    Event,
    FrameReader,
    Hello,
    Limits,
    Login,
    Message,
    Role,
    State,
    Welcome,
    decode_message,
    unpack_body,
)

# Hypothesis' "too slow" health check times data generation against the wall clock; with the
# suite on both cores of a busy machine it can fail a good run (two property tests here each
# failed once under load and passed on rerun; the deadline is already off, so this check is
# the one load-dependent failure left). Only that check goes, for the whole session (profiles
# are process-wide): every other health check stays.
settings.register_profile("liaotian-protocol", suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("liaotian-protocol")

# When a hypothesis test fails, its pytest plugin imports hypothesis.extra._patching, which
# imports libcst, which triggers a DeprecationWarning from mypy_extensions; with the project's
# filterwarnings=error that turns every hypothesis failure into a pytest INTERNALERROR that
# hides the falsifying example. Import it once here with that warning silenced.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    with contextlib.suppress(ImportError):  # without libcst the plugin skips patching
        import hypothesis.extra._patching  # noqa: F401


def decode_stream(data: bytes, limits: Limits = DEFAULT_LIMITS) -> list[Message]:
    """Decode everything one side queued, as a stateless reader would (no state checks)."""
    reader = FrameReader(limits.max_frame_size)
    bodies = reader.feed(data)
    assert reader.buffered == 0, "queued output ends with a partial frame"
    return [decode_message(*unpack_body(body, limits), limits) for body in bodies]


class Pair:
    """A client and a server Connection wired back to back through explicit byte moves."""

    def __init__(
        self,
        limits: Limits = DEFAULT_LIMITS,
        *,
        server_limits: Limits | None = None,
        now: float = 0.0,
    ) -> None:
        self.client = Connection(Role.CLIENT, limits=limits, now=now)
        self.server = Connection(Role.SERVER, limits=server_limits or limits, now=now)

    # -- byte moves -------------------------------------------------------------------
    def to_server(self, now: float | None = None) -> list[Event]:
        """Move the client's queued bytes to the server; return every server event."""
        self.server.receive_data(self.client.data_to_send(), now)
        return list(self.server.events_received())

    def to_client(self, now: float | None = None) -> list[Event]:
        """Move the server's queued bytes to the client; return every client event."""
        self.client.receive_data(self.server.data_to_send(), now)
        return list(self.client.events_received())

    # -- canned exchanges -------------------------------------------------------------
    def request(self, msg: Message, now: float | None = None) -> list[Event]:
        assert self.client.send(msg)
        return self.to_server(now)

    def answer(self, msg: Message, now: float | None = None) -> list[Event]:
        assert self.server.send(msg)
        return self.to_client(now)

    def handshake(self, *, heartbeat: float = 30.0, now: float | None = None) -> Welcome:
        rid = self.client.next_rid()
        hello = Hello(rid=rid, versions=(1,), client="tests/1")
        assert self.request(hello, now) == [hello]
        welcome = Welcome(
            rid=rid,
            version=1,
            server="liaotian/0.1.0",
            time=1_700_000_000_000,
            heartbeat=heartbeat,
            limits=self.server.limits.advertised(),
        )
        assert self.answer(welcome, now) == [welcome]
        assert self.client.state is State.CONNECTED
        assert self.server.state is State.CONNECTED
        return welcome

    def login(self, *, now: float | None = None, **welcome: Any) -> Authenticated:
        self.handshake(now=now, **welcome)
        rid = self.client.next_rid()
        login = Login(rid=rid, username="alice", password="correct horse", device="laptop")
        assert self.request(login, now) == [login]
        auth = Authenticated(
            rid=rid, user="alice", device="laptop", head=0, acked=0, token="tok-123"
        )
        assert self.answer(auth, now) == [auth]
        assert self.client.state is State.AUTHENTICATED
        assert self.server.state is State.AUTHENTICATED
        assert self.client.pending_requests == 0
        assert self.server.pending_requests == 0
        return auth


@pytest.fixture(scope="session")
def make_pair() -> Callable[..., Pair]:
    return Pair


@pytest.fixture(scope="session")
def decode() -> Callable[..., list[Message]]:
    return decode_stream
