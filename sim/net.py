"""The simulated network: TCP-like links between simulated clients and the server's real
`ServerConnection` protocol objects, driven by timers of the simulation's loop.

Within one link and direction bytes arrive in order and exactly once (it is TCP), but a
write may be split into pieces that arrive at different times, and pieces due together are
handed over in one call (coalesced). Every link has its own latency, so frames of different
connections overtake each other. The faults:

- `reset()`: the connection is cut and both sides see it (RST): what is still in flight is
  lost, both ends are told after a delay.
- `vanish_client()`: half-open, the client side is gone (the device lost its network or was
  killed) but the server keeps thinking it is connected: what it writes goes nowhere (the
  first `KERNEL_WINDOW` bytes are "accepted by the kernel", beyond that its write buffer
  grows, so a server that keeps pushing sees a slow consumer) until its idle timeout
  notices.
- `vanish_server()`: half-open the other way: the server side is gone (it saw a reset) but
  the client keeps thinking it is connected until its own keepalive and idle timeout notice.
- a server crash (`crash_incarnation`) stops every link of that server: nothing more is
  delivered to or from it; each client either sees a reset or is left half-open.

The server listens through `SimLoop.create_server` (below), so `Server.start()` runs as
is. Every callback into a server's protocol objects runs in the context of the server's
incarnation (loop.py), so a crash can tell its tasks apart.
"""

from __future__ import annotations

import asyncio
import contextvars
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from .loop import INCARNATION, SimLoop

KERNEL_WINDOW = 64 * 1024  # bytes a peer that does not read absorbs before writes buffer


@dataclass(frozen=True, slots=True)
class NetParams:
    min_latency: float = 0.0005  # one-way, seconds; each link draws its own base latency
    max_latency: float = 0.030
    jitter: float = 0.010  # extra delay per write, exponential with this mean
    split: float = 0.3  # chance that a write is cut into pieces
    connect_latency: float = 0.005


class ClientPeer(Protocol):
    """What a simulated client gets from its end of a link."""

    def net_connected(self, link: Link) -> None: ...
    def net_data(self, link: Link, data: bytes) -> None: ...
    def net_closed(self, link: Link, reset: bool) -> None: ...


class _Direction:
    __slots__ = ("chunks", "eof", "last", "unread", "void")

    def __init__(self) -> None:
        self.chunks: deque[tuple[float, bytes]] = deque()
        self.last = 0.0  # time the last queued piece arrives: later ones arrive after it
        self.void = False  # the receiving side is gone: bytes are dropped
        self.unread = 0  # bytes written into the void
        self.eof = False  # the sender closed: EOF after the queued pieces


class Link:
    """One TCP connection between a simulated client and the server."""

    def __init__(self, net: Network, lid: int, client: ClientPeer, label: str) -> None:
        self.net = net
        self.id = lid
        self.label = label
        self.client: ClientPeer | None = client  # None once the client is done with it
        self.latency = net.rng.uniform(net.params.min_latency, net.params.max_latency)
        self.c2s = _Direction()
        self.s2c = _Direction()
        self.transport: SimTransport | None = None
        self.incarnation = 0
        self.ctx: contextvars.Context | None = None  # the server's context
        self.server_up = False  # the server's side exists and has not been told it ended
        self.client_up = False
        self.connecting = True  # until the server accepts or refuses it
        self.fault = ""  # what happened to it, for the trace

    # ------------------------------------------------------------------ timing

    def _arrival(self, d: _Direction) -> float:
        net = self.net
        t = net.loop.time() + self.latency + net.rng.expovariate(1.0 / net.params.jitter)
        t = max(t, d.last)
        d.last = t
        return t

    def _queue(
        self,
        d: _Direction,
        data: bytes,
        deliver: Callable[[], None],
        ctx: contextvars.Context | None,
    ) -> None:
        rng = self.net.rng
        pieces = [data]
        if len(data) > 1 and rng.random() < self.net.params.split:
            cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, 3))))
            pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        for piece in pieces:
            t = self._arrival(d)
            d.chunks.append((t, piece))
            self.net.loop.call_at(t, deliver, context=ctx)

    @staticmethod
    def _due(d: _Direction, now: float) -> bytes:
        out = []
        while d.chunks and d.chunks[0][0] <= now:
            out.append(d.chunks.popleft()[1])
        return b"".join(out)

    # ------------------------------------------------------------------ client side

    def client_send(self, data: bytes) -> None:
        if not self.client_up or self.c2s.eof:
            return
        if self.c2s.void or not self.server_up:
            self.c2s.unread += len(data)
            return
        self._queue(self.c2s, data, self._to_server, self.ctx)

    def client_close(self) -> None:
        """The client closes (after what it wrote): the server reads EOF."""
        if not self.client_up:
            return
        self.client_up = False
        self.client = None
        if self.server_up and not self.c2s.void and not self.c2s.eof:
            self.c2s.eof = True
            self.net.loop.call_at(self._arrival(self.c2s), self._to_server, context=self.ctx)

    def client_abandon(self) -> None:
        """The client forgets the link without a word (it thinks it is dead)."""
        self.client_up = False
        self.client = None
        self.s2c.void = True
        self.c2s.void = True

    def _to_server(self) -> None:
        t = self.transport
        if t is None or not self.server_up:
            return
        data = self._due(self.c2s, self.net.loop.time())
        if data:
            t.incoming(data)
        if self.c2s.eof and not self.c2s.chunks:
            self.c2s.eof = False  # once
            t.incoming_eof()

    # ------------------------------------------------------------------ server side

    def server_send(self, data: bytes) -> None:
        if self.s2c.void or self.client is None:
            self.s2c.unread += len(data)
            return
        self._queue(self.s2c, data, self._to_client, None)

    def server_closed(self, reset: bool) -> None:
        """The server's transport closed (after its writes) or aborted."""
        if self.s2c.void or self.client is None or self.s2c.eof:
            return
        self.s2c.eof = True
        t = self._arrival(self.s2c)
        if reset:
            self.s2c.chunks.clear()
        self.net.loop.call_at(t, self._eof_to_client, reset)

    def _to_client(self) -> None:
        client = self.client
        if client is None or not self.client_up:
            return
        data = self._due(self.s2c, self.net.loop.time())
        if data:
            client.net_data(self, data)

    def _eof_to_client(self, reset: bool) -> None:
        client = self.client
        if client is None or not self.client_up:
            self.s2c.chunks.clear()
            return
        if self.s2c.chunks:  # pieces written before the close arrive first
            self._to_client()
            if self.s2c.chunks:
                self.net.loop.call_at(self.s2c.chunks[-1][0], self._eof_to_client, reset)
                return
            if self.client is not client or not self.client_up:
                return
        self.client_up = False
        self.client = None
        client.net_closed(self, reset)

    # ------------------------------------------------------------------ faults

    def reset(self) -> None:
        """Cut: both sides learn it after a delay; what was in flight is lost."""
        self.fault = self.fault or "reset"
        self.c2s.chunks.clear()
        self.s2c.chunks.clear()
        if self.server_up and self.transport is not None:
            tr = self.transport
            self.net.loop.call_at(
                self._arrival(self.c2s),
                tr.lost,
                ConnectionResetError("simulated reset"),
                context=self.ctx,
            )
        self.c2s.void = True
        if self.client is not None and self.client_up:
            self.s2c.eof = True
            self.net.loop.call_at(self._arrival(self.s2c), self._eof_to_client, True)
        self.s2c.void = True

    def vanish_client(self) -> None:
        """Half-open: the server keeps thinking it is connected."""
        self.fault = self.fault or "half-open (client gone)"
        client = self.client
        self.c2s.chunks.clear()
        self.s2c.chunks.clear()
        self.client_abandon()
        if client is not None:
            client.net_closed(self, True)  # the client knows: it abandoned the link

    def vanish_server(self) -> None:
        """Half-open the other way: the client keeps thinking it is connected."""
        self.fault = self.fault or "half-open (server gone)"
        self.c2s.chunks.clear()
        self.s2c.chunks.clear()
        self.c2s.void = True
        self.s2c.void = True
        if self.server_up and self.transport is not None:
            tr = self.transport
            self.net.loop.call_at(
                self._arrival(self.c2s),
                tr.lost,
                ConnectionResetError("simulated reset"),
                context=self.ctx,
            )

    def server_gone(self, client_notices: bool) -> None:
        """The server process died: nothing more reaches it or comes from it."""
        self.server_up = False
        self.c2s.chunks.clear()
        self.c2s.void = True
        self.s2c.chunks.clear()
        if client_notices and self.client is not None and self.client_up:
            self.fault = self.fault or "server crash (reset)"
            self.s2c.eof = True
            self.net.loop.call_at(self._arrival(self.s2c), self._eof_to_client, True)
        else:
            self.fault = self.fault or "server crash (half-open)"
        self.s2c.void = True


class SimTransport(asyncio.Transport):
    """The server's end of a link, as the asyncio transport its protocol expects."""

    def __init__(self, link: Link, protocol: asyncio.Protocol, peer: tuple[str, int]) -> None:
        super().__init__()
        self._link = link
        self._protocol = protocol
        self._peer = peer
        self._closing = False
        self._lost = False
        self._reading = True
        self._held = bytearray()
        self._held_eof = False
        self._high = 64 * 1024
        self._low = 16 * 1024
        self._paused = False

    # --------------------------------------------------------------- asyncio.Transport

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return self._peer
        if name == "sockname":
            return ("sim", 1)
        return default

    def is_closing(self) -> bool:
        return self._closing or self._lost

    def close(self) -> None:
        if self._closing or self._lost:
            return
        self._closing = True
        link = self._link
        if self.get_write_buffer_size():  # the peer does not read: the close never ends
            return
        link.server_closed(reset=False)
        self._schedule_lost(None)

    def abort(self) -> None:
        if self._lost:
            return
        self._closing = True
        self._link.server_closed(reset=True)
        self._schedule_lost(None)

    def _schedule_lost(self, exc: Exception | None) -> None:
        self._link.net.loop.call_soon(self.lost, exc, context=self._link.ctx)

    def lost(self, exc: Exception | None) -> None:
        """The connection ended for the server: tell its protocol once."""
        if self._lost:
            return
        self._lost = True
        self._closing = True
        self._link.server_up = False
        self._protocol.connection_lost(exc)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol  # type: ignore[assignment]

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    def is_reading(self) -> bool:
        return self._reading and not self._lost

    def pause_reading(self) -> None:
        self._reading = False

    def resume_reading(self) -> None:
        if self._reading or self._lost:
            return
        self._reading = True
        if self._held or self._held_eof:
            self._link.net.loop.call_soon(self._release_held, context=self._link.ctx)

    def _release_held(self) -> None:
        if not self._reading or self._lost:
            return
        if self._held:
            data, self._held = bytes(self._held), bytearray()
            self._protocol.data_received(data)
        if self._held_eof and self._reading and not self._lost:
            self._held_eof = False
            self._eof()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._high = 64 * 1024 if high is None else high
        self._low = self._high // 4 if low is None else low

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._low, self._high

    def get_write_buffer_size(self) -> int:
        return max(0, self._link.s2c.unread - KERNEL_WINDOW)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or self._lost or not data:
            return
        self._link.server_send(bytes(data))
        if not self._paused and self.get_write_buffer_size() > self._high:
            self._paused = True
            self._protocol.pause_writing()

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def write_eof(self) -> None:
        self.close()

    def can_write_eof(self) -> bool:
        return False

    # --------------------------------------------------------------- from the link

    def incoming(self, data: bytes) -> None:
        if self._lost:
            return
        if not self._reading or self._held:
            self._held += data
            return
        self._protocol.data_received(data)

    def incoming_eof(self) -> None:
        if self._lost:
            return
        if not self._reading or self._held:
            self._held_eof = True
            return
        self._eof()

    def _eof(self) -> None:
        keep_open = self._protocol.eof_received()
        if not keep_open:
            self.close()


class SimListener:
    """What `loop.create_server` returns: registers the server with the network."""

    def __init__(self, net: Network, factory: Callable[[], asyncio.Protocol]) -> None:
        self._net = net
        self._factory = factory
        self.incarnation = INCARNATION.get()
        self.ctx = contextvars.copy_context()
        self.sockets = [_FakeSocket()]
        self._serving = False

    async def start_serving(self) -> None:
        self._serving = True
        self._net.listener = self

    def is_serving(self) -> bool:
        return self._serving

    def close(self) -> None:
        self._serving = False
        if self._net.listener is self:
            self._net.listener = None

    async def wait_closed(self) -> None:
        return None

    def accept(self, link: Link, peer: tuple[str, int]) -> None:
        """A client connected: make the server's protocol for it (in its context)."""
        protocol = self.ctx.run(self._factory)
        link.incarnation = self.incarnation
        link.ctx = self.ctx
        link.server_up = True
        link.transport = SimTransport(link, protocol, peer)
        self.ctx.run(protocol.connection_made, link.transport)


class _FakeSocket:
    def getsockname(self) -> tuple[str, int]:
        return ("sim", 1)


class Network:
    """All links; the listener of the server that is up, if any."""

    def __init__(self, loop: SimLoop, rng: random.Random, params: NetParams) -> None:
        self.loop = loop
        self.rng = rng
        self.params = params
        self.listener: SimListener | None = None
        self.links: list[Link] = []
        self._next = 0
        loop.network = self

    def connect(self, client: ClientPeer, peer: tuple[str, int], label: str) -> Link:
        """Open a connection; the client hears net_connected or net_closed later."""
        self._next += 1
        link = Link(self, self._next, client, label)
        self.links.append(link)
        if len(self.links) > 64:  # forget the finished ones
            self.links = [k for k in self.links if k.connecting or k.server_up or k.client_up]
        t = self.loop.time() + self.params.connect_latency + link.latency
        self.loop.call_at(t, self._established, link, peer)
        return link

    def _established(self, link: Link, peer: tuple[str, int]) -> None:
        link.connecting = False
        client = link.client
        if client is None:
            return
        listener = self.listener
        if listener is None or not listener.is_serving():  # refused
            link.client = None
            client.net_closed(link, True)
            return
        link.client_up = True
        listener.accept(link, peer)
        client.net_connected(link)

    def live_links(self) -> list[Link]:
        return [k for k in self.links if k.server_up or k.client_up]

    def crash_incarnation(self, incarnation: int, client_notices: Callable[[Link], bool]) -> None:
        """The server of `incarnation` died: stop its links."""
        if self.listener is not None and self.listener.incarnation == incarnation:
            self.listener = None
        for link in self.links:
            if link.incarnation == incarnation and (link.server_up or link.client_up):
                link.server_gone(client_notices(link))
