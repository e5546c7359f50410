"""Raw relay baseline: `python -m bench.relay --port N` (127.0.0.1 only).

A bare uvloop TCP relay that speaks just enough of the liaotian framing for the load
generator to run unchanged against it:

* every frame is decoded (msgpack) and nothing else is validated;
* any request (rid > 0) gets one answer frame of the corresponding reply type (HELLO ->
  WELCOME, REGISTER -> REGISTERED, LOGIN/AUTH -> AUTHENTICATED, SYNC -> an empty UPDATES
  page, PING -> PONG, ...);
* LOGIN binds the username to the connection;
* SEND is answered at once with a SENT to the sender, and the message is pushed as an
  UPDATES frame (same encoding helpers as the server) to the recipient's connection if it
  has one. No persistence, no ordering guarantees beyond TCP, no limits.

What it measures: the cost of the network path, the event loop and the frame encoding
shared with the real server, i.e. an upper bound for any Python server on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import time
from typing import Any

import msgpack
from liaotian.protocol import encode_update, encode_updates_frame
from liaotian.protocol.messages import encode_message_map

from .wire import HDR, T_LOGIN, T_SEND, frame

_unpack_hdr = HDR.unpack_from
_unpackb = msgpack.unpackb

REPLY = {1: 2, 3: 4, 10: 11, 12: 14, 13: 14, 15: 16, 17: 18, 19: 20, 30: 31, 32: 33, 35: 36}
_REPLY_PAYLOAD: dict[int, dict[str, Any]] = {
    2: {
        "version": 1,
        "server": "liaotian-bench-relay/1.0",
        "time": 0,
        "heartbeat": 30.0,
        "limits": {},
    },
    4: {"time": 0},
    16: {},
    18: {"devices": []},
    33: {"updates": [], "head": 0, "more": False},
    36: {"messages": [], "more": False},
}


class Relay:
    def __init__(self) -> None:
        self.users: dict[str, RelayConn] = {}
        self.seqs: dict[str, int] = {}
        self.next_id = 0
        self.dirty: set[RelayConn] = set()
        self.conns: set[RelayConn] = set()

    def flush(self) -> None:
        for c in self.dirty:
            if c.out:
                t = c.transport
                if t is not None:
                    t.write(b"".join(c.out))
                c.out.clear()
        self.dirty.clear()


class RelayConn(asyncio.Protocol):
    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.user = ""
        self.out: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.relay.conns.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.relay.conns.discard(self)
        if self.user and self.relay.users.get(self.user) is self:
            del self.relay.users[self.user]

    def data_received(self, data: bytes) -> None:
        if self.buf:
            data = self.buf + data
        n = len(data)
        pos = 0
        relay = self.relay
        relay.dirty.add(self)
        try:
            while n - pos >= 4:
                end = pos + 4 + _unpack_hdr(data, pos)[0]
                if end > n:
                    break
                self.on_frame(_unpackb(data[pos + 4 : end]))
                pos = end
        except Exception:  # undecodable: this is a baseline, not a server
            if self.transport is not None:
                self.transport.abort()
            return
        finally:
            self.buf = data[pos:] if pos < n else b""
            relay.flush()

    def on_frame(self, msg: Any) -> None:
        typ, rid, p = msg
        if typ == T_SEND:
            self.on_send(rid, p)
            return
        if not rid:
            return  # ACK, CLOSE
        reply = REPLY.get(typ, 6)
        if typ == T_LOGIN:
            self.user = p["username"]
            self.relay.users[self.user] = self
            payload: dict[str, Any] = {
                "user": self.user,
                "device": p.get("device", ""),
                "head": 0,
                "acked": 0,
                "token": "relay",
            }
        elif reply == 11:
            payload = {"user": p.get("username", "")}
        elif reply == 14:
            payload = {"user": self.user, "device": "", "head": 0, "acked": 0}
        elif reply == 20:
            payload = {"device": p.get("device", "")}
        elif reply == 6:
            payload = {"code": 1002, "message": "unknown message type"}
        else:
            payload = _REPLY_PAYLOAD[reply]
        self.out.append(frame(reply, rid, payload))

    def on_send(self, rid: int, p: dict[str, Any]) -> None:
        relay = self.relay
        to = p["to"]
        cmid = p["cmid"]
        relay.next_id = mid = relay.next_id + 1
        ts = int(time.time() * 1000)
        seqs = relay.seqs
        seqs[self.user] = s_seq = seqs.get(self.user, 0) + 1
        self.out.append(
            frame(
                31,
                rid,
                {
                    "id": mid,
                    "conv": 1,
                    "pos": mid,
                    "ts": ts,
                    "seq": s_seq,
                    "cmid": cmid,
                    "duplicate": False,
                },
            )
        )
        target = relay.users.get(to)
        if target is not None:
            seqs[to] = r_seq = seqs.get(to, 0) + 1
            body = encode_message_map(
                mid, 1, mid, self.user, to, ts, cmid, p["text"], p.get("meta")
            )
            target.out.append(encode_updates_frame(0, [encode_update(r_seq, 1, body)], r_seq))
            relay.dirty.add(target)


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    relay = Relay()
    server = await loop.create_server(lambda: RelayConn(relay), "127.0.0.1", port, backlog=4096)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    for c in list(relay.conns):
        if c.transport is not None:
            c.transport.abort()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(server.wait_closed(), 5.0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.relay", description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args(argv)
    import uvloop

    uvloop.run(serve(args.port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
