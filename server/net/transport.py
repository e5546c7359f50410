"""One asyncio.Protocol per socket, feeding the sans-I/O protocol.Connection.

Reads: bytes -> Connection -> events -> router, one event at a time, so a request that
changes the session (LOGIN, AUTH) holds back the frames pipelined behind it until it is
answered. Writes: everything leaves through `flush()`, the one write path. A peer that
leaves more than `max_outbound_buffer` bytes unread, or keeps the socket unwritable for
`write_timeout` seconds, is a slow consumer and is disconnected; its updates stay in its
log for the next sync. All connections together may leave at most `max_outbound_total`
bytes unread: beyond that, the ones with the most unread bytes are evicted the same way.

With TLS the listener is plain TCP and each connection is upgraded here, so a connection
counts towards the connection limits and its authentication deadline from the TCP accept,
through the handshake (which must also finish within `auth_timeout`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import ssl
from dataclasses import dataclass
from typing import Any, cast

from liaotian.protocol import CloseCode, Connection, Limits, Message, Role

from ..config import Config
from .hub import Hub
from .router import Router

log = logging.getLogger("liaotian.conn")
_ids = itertools.count(1)


class ConnLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return f"[conn {self.extra['conn']}] {msg}", kwargs  # type: ignore[index]


@dataclass(eq=False)
class Endpoint:
    """What every connection of the listener shares; built and switched by app.py."""

    config: Config
    limits: Limits
    hub: Hub
    router: Router
    loop: asyncio.AbstractEventLoop
    tls: ssl.SSLContext | None = None  # upgrade each connection to TLS with this
    accepting: bool = False  # False: new connections are told "going away"


class ServerConnection(asyncio.Protocol):
    """One socket; implements net/peer.py's Peer for the rest of the server."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.id = next(_ids)
        self.log = ConnLog(log, {"conn": self.id})
        self.loop = endpoint.loop
        self.conn = Connection(Role.SERVER, limits=endpoint.limits, now=self.loop.time())
        self.transport: asyncio.Transport | None = None
        self.peer_host = ""
        # session, set once authenticated
        self.user_id = 0
        self.username = ""
        self.device = ""
        self.live = False  # receives pushes (after its first complete SYNC)
        self.sent_upto = 0  # highest seq this connection has been sent
        self.head_at_auth = 0  # the user's head when this connection authenticated
        self.syncing = False
        self.busy = False  # an exclusive request is running: hold later frames
        self._holds = 0  # hold() calls not yet released (exclusive requests, media bound)
        self._timer: asyncio.TimerHandle | None = None
        self._paused_since: float | None = None
        self._gone = False
        self._handshaking = False  # TLS handshake running on the raw transport
        self._tls_task: asyncio.Task[None] | None = None
        self._early = bytearray()  # TLS bytes read before start_tls took the transport over
        # plaintext the TLS layer delivered after the handshake but before start_tls returned
        # the new transport: held, so nothing is answered (or closed) on the raw one
        self._plain = bytearray()
        self.unread = 0  # bytes of our output this connection last had queued, unread
        self._frames_out = endpoint.router.counters.frames_out  # ops: frames sent, by type

    def authenticated(self, user_id: int, username: str, device: str, head: int) -> None:
        """The connection now speaks for this user's device (LOGIN, AUTH)."""
        self.user_id, self.username, self.device = user_id, username, device
        self.head_at_auth = head

    # ------------------------------------------------------------------ asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is duck-typed
        peer = transport.get_extra_info("peername")
        self.peer_host = str(peer[0]) if peer else ""
        tls = self.endpoint.tls
        if tls is None:
            cast(asyncio.WriteTransport, transport).set_write_buffer_limits(high=256 * 1024)
        else:  # nothing may be written in clear: a refusal below only drops the socket
            self._handshaking = True
        hub = self.endpoint.hub
        cfg = self.endpoint.config
        reason = None
        if len(hub.connections) >= cfg.max_connections:
            reason = "server connection limit reached"
        elif (
            cfg.max_connections_per_address
            and hub.count_from(self.peer_host) >= cfg.max_connections_per_address
        ):
            reason = "per-address connection limit reached"
        hub.opened(self)
        if reason is not None or not self.endpoint.accepting:
            if reason is None:
                self.close(CloseCode.GOING_AWAY, "server shutting down")
            else:
                self.close(CloseCode.TOO_MANY_CONNECTIONS, reason)
            return
        self.log.debug("opened from %s", peer)
        self._arm_timer()  # the authentication deadline covers a TLS handshake too
        # with TLS, the TLS layer (~50 KiB) is set up when the first byte arrives

    def _begin_tls(self) -> None:
        tls = self.endpoint.tls
        assert tls is not None and self._tls_task is None
        self._tls_task = self.loop.create_task(self._start_tls(tls))
        # the bytes read so far (and any read before start_tls takes the transport over) are
        # handed to the TLS layer once start_tls has installed it; its set-up callbacks are
        # queued first, and the loop runs callbacks in order
        self.loop.call_soon(self.loop.call_soon, self._feed_early)

    def _feed_early(self) -> None:
        data, self._early = bytes(self._early), bytearray()
        t = self.transport
        if not data or t is None or self._gone or not self._handshaking:
            return
        proto = t.get_protocol()
        if proto is self:  # start_tls did not take over (failed at once): drop the bytes
            return
        if hasattr(proto, "get_buffer"):  # asyncio's and uvloop's SSLProtocol: buffered
            buffered = cast(asyncio.BufferedProtocol, proto)
            view = memoryview(data)
            while view:
                buf = memoryview(buffered.get_buffer(len(view))).cast("B")
                n = min(len(buf), len(view))
                buf[:n] = view[:n]
                buffered.buffer_updated(n)
                view = view[n:]
        else:
            cast(asyncio.Protocol, proto).data_received(data)

    async def _start_tls(self, ctx: ssl.SSLContext) -> None:
        raw = self.transport
        assert raw is not None
        try:
            new = await self.loop.start_tls(
                raw,
                self,
                ctx,
                server_side=True,
                ssl_handshake_timeout=min(60.0, self.endpoint.limits.auth_timeout),
            )
        except Exception as exc:  # handshake failed, timed out, or the socket went away
            self.log.debug("TLS handshake failed: %r", exc)
            raw.abort()
            self.connection_lost(exc)
            return
        if new is None or self._gone or self.conn.closed:  # closed during the handshake
            if new is not None:
                new.abort()
            raw.abort()
            self.connection_lost(None)  # idempotent: the SSL layer may report it too
            return
        self._handshaking = False
        self.transport = new
        if self.busy:  # hold() paused the raw transport during the handshake: move it
            raw.resume_reading()
            new.pause_reading()
        cast(asyncio.WriteTransport, new).set_write_buffer_limits(high=256 * 1024)
        if self._plain:
            data, self._plain = bytes(self._plain), bytearray()
            self.conn.receive_data(data, self.loop.time())
            self.process()  # flushes
        else:
            self.flush()

    def data_received(self, data: bytes) -> None:
        t = self.transport
        if self._handshaking and t is not None and t.get_protocol() is self:
            # raw TLS bytes read before start_tls took the transport over (see _feed_early)
            self._early += data
            if len(self._early) > 64 * 1024:
                t.abort()
            elif self._tls_task is None and not self.conn.closed:
                t.pause_reading()
                self._begin_tls()
            return
        if self._handshaking:  # plaintext from the TLS layer, before start_tls returned
            self._plain += data
            if len(self._plain) > self.conn.limits.max_frame_size:
                self.close(CloseCode.FRAME_TOO_LARGE, "too much data during the handshake")
            return
        self.conn.receive_data(data, self.loop.time())
        self.process()

    def eof_received(self) -> bool | None:
        self.conn.receive_eof()
        self.process()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._gone:
            return
        self._gone = True
        self._count_unread(0)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.endpoint.hub.closed(self)
        self.live = False
        self.log.debug("lost (%s)", exc or "closed")

    def pause_writing(self) -> None:
        self._paused_since = self.loop.time()
        if self._timer is not None:  # make sure the write deadline is watched
            self._timer.cancel()
        self._arm_timer()

    def resume_writing(self) -> None:
        self._paused_since = None
        if self.transport is not None and not self._gone:
            self._count_unread(self.transport.get_write_buffer_size())

    # ------------------------------------------------------------------ events

    def process(self) -> None:
        """Hand queued events to the router until one needs to run alone."""
        router = self.endpoint.router
        conn = self.conn
        while not self.busy:
            event = conn.next_event()
            if event is None:
                break
            router.dispatch(self, event)
        self.flush()
        if self.conn.closed:
            self._finish()

    def hold(self) -> None:
        """An exclusive request started (or the media bound is reached): stop reading and
        handing out frames until every hold() is matched by a release()."""
        self._holds += 1
        if self._holds > 1:
            return
        self.busy = True
        if self.transport is not None and not self._gone:
            self.transport.pause_reading()

    def release(self) -> None:
        self._holds -= 1
        if self._holds > 0:
            return
        self._holds = 0
        self.busy = False
        if self.transport is not None and not self._gone and not self.conn.closed:
            self.transport.resume_reading()
        self.process()

    # ------------------------------------------------------------------ output

    def send(self, msg: Message) -> None:
        """Queue a message and flush it; a no-op once the connection is closed."""
        if self.conn.send(msg):
            self._frames_out[msg.TYPE] += 1  # ops
            self.flush()

    def send_frame(self, frame: bytes, msg_type: int, rid: int = 0) -> None:
        if self.conn.send_frame(frame, msg_type, rid):
            self._frames_out[msg_type] += 1  # ops
            self.flush()

    def write_shared(self, frame: bytes, msg_type: int) -> None:
        """One frame many connections get (CHANNEL_NEWS to 10,000 members): the checks of
        send_frame, then the frame goes to the socket as it is, not through the output
        queue and the join. Whatever is unusual (TLS handshake, output queued, closed)
        takes the ordinary path."""
        t = self.transport
        if self._handshaking or t is None or self._gone or not self.conn.send_now(msg_type):
            self.send_frame(frame, msg_type)
            return
        self._frames_out[msg_type] += 1  # ops
        t.write(frame)
        unread = t.get_write_buffer_size()
        if unread != self.unread:  # the socket did not take it all (rare): as flush() does
            if unread > self.endpoint.config.max_outbound_buffer:
                self.log.info("slow consumer: %d bytes unread", unread)
                self.evict("outbound buffer full")
            else:
                self._count_unread(unread)

    def flush(self) -> None:
        """The one write path."""
        if self._handshaking:  # kept queued until the TLS session is up
            return
        bufs = self.conn.buffers_to_send()
        t = self.transport
        if not bufs or t is None or self._gone:
            return
        if len(bufs) == 1:
            t.write(bufs[0])
        else:  # a media chunk's head and bytes: no join (a copy of the chunk)
            t.writelines(bufs)
        unread = t.get_write_buffer_size()
        if unread > self.endpoint.config.max_outbound_buffer:
            self.log.info("slow consumer: %d bytes unread", unread)
            self.evict("outbound buffer full")
        elif unread != self.unread:
            self._count_unread(unread)

    def _count_unread(self, unread: int) -> None:
        """Keep the server-wide total of unread output (Hub.outbound) up to date."""
        self.endpoint.hub.count_unread(self, unread)

    def evict(self, reason: str) -> None:
        """Disconnect as a slow consumer (4003): its updates stay in its log."""
        self._count_unread(0)
        self.conn.close(CloseCode.SLOW_CONSUMER, reason)
        self._finish(abort=True)

    def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        self.conn.close(code, reason)
        self.flush()
        self._finish()

    def _finish(self, *, abort: bool = False) -> None:
        """Take the connection out of the hub and close the socket after the last write."""
        self.live = False
        self.endpoint.hub.unbind(self)
        t = self.transport
        if t is None or self._gone:
            return
        if abort or self._handshaking:  # nothing can be said before the TLS handshake
            t.abort()
        elif not t.is_closing():
            t.close()  # flushes what is buffered first; a peer that never reads would
            # keep the socket (and its hub slot) forever, so the flush gets a deadline
            self.loop.call_later(self.endpoint.config.write_timeout, self._abort_if_open)

    def _abort_if_open(self) -> None:
        if not self._gone and self.transport is not None:
            self.log.info(
                "close deadline passed with %d bytes unsent: aborting",
                self.transport.get_write_buffer_size(),
            )
            self.transport.abort()

    # ------------------------------------------------------------------ timers

    def _arm_timer(self) -> None:
        when = self.conn.get_timer()
        if when is not None and not self._gone:
            if self._paused_since is not None:
                when = min(when, self._paused_since + self.endpoint.config.write_timeout)
            self._timer = self.loop.call_at(max(when, self.loop.time() + 0.05), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        now = self.loop.time()
        if (
            self._paused_since is not None
            and now - self._paused_since >= self.endpoint.config.write_timeout
        ):
            self.log.info("slow consumer: socket unwritable for %.1f s", now - self._paused_since)
            self.conn.close(CloseCode.SLOW_CONSUMER, "write timeout")
            self._finish(abort=True)
            return
        self.conn.handle_timer(now)
        if self.conn.closed:
            self.log.info("closing: %s", self.conn.close_reason)
            self.flush()
            self._finish()
            return
        self._arm_timer()
