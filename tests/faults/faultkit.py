"""Helpers shared by the fault-injection tests (tests/faults).

* `Opened`: raw clients (tests/integration/rawclient.py), plain sockets and proxies opened
  by a test, all closed (by the `opened` fixture) when it ends;
* `DroppingProxy`: a TCP proxy on 127.0.0.1 that swallows one chosen server frame (a SENT)
  and cuts both connections right there: the commit happened, its answer never arrived;
* `wait_for`: a bounded poll of server state that has no event to await (the hub's
  connection table), with short awaits;
* `run_crash_soak()`: scripts/crash_soak.py, the crash/restart engine that the crash and
  graceful-restart tests run (in a process of its own) with small parameters.

Everything here talks to 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from liaotian.protocol import (
    DEFAULT_LIMITS,
    FrameReader,
    Message,
    MessageType,
    decode_message,
    encode_frame,
    unpack_body,
)
from liaotian.server.testing import RunningServer
from rawclient import PASSWORD, RawClient

HOST = "127.0.0.1"
WAIT = 10.0  # seconds: generous bound for any single expected event
REPO = Path(__file__).resolve().parents[2]


def run_crash_soak(
    tmp_path: Path, args: list[str], timeout: float = 180.0, watchdog: float = 10.0
) -> tuple[int, dict[str, Any], str]:
    """Run scripts/crash_soak.py in its own process group; return (exit code, JSON
    summary, stderr).

    A process of its own, because a livelocked event loop (a coroutine spinning without
    awaiting) cannot be interrupted from inside: the script's watchdog then exits with 3
    and a report (it kills its server itself, as it does on every exit); should even that
    fail, the whole group (script and server) is killed by its id after `timeout`."""
    report = tmp_path / "soak.json"
    cmd = [
        sys.executable,
        str(REPO / "scripts" / "crash_soak.py"),
        "--json",
        str(report),
        "--workdir",
        str(tmp_path / "db"),
        "--watchdog",
        str(watchdog),
        *args,
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        _out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the script is still alive: its group id
        _out, err = proc.communicate()
        raise AssertionError(
            f"crash_soak did not finish within {timeout} s:\n{err[-4000:]}"
        ) from None
    summary = json.loads(report.read_text()) if report.exists() else {}
    return proc.returncode, summary, err


async def wait_for(
    cond: Callable[[], bool],
    what: str,
    timeout: float = WAIT,
    *,
    tick: float = 0.02,
    between: Callable[[], Awaitable[Any]] | None = None,
) -> float:
    """Await cond() becoming true: short awaits in a loop bounded by `timeout` (for server
    state that offers nothing to await, like the hub's connection table). `between` runs
    each round (a PING keeps a client alive under a short idle timeout). Returns the
    seconds it took."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not cond():
        if loop.time() - start > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        if between is not None:
            await between()
        await asyncio.sleep(tick)
    return loop.time() - start


def server_conns(srv: RunningServer, username: str | None = None) -> list[Any]:
    """The server's open connections (its hub), optionally only those of one user."""
    assert srv.server is not None
    return [c for c in srv.server.hub.connections if username is None or c.username == username]


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    assert samples
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


class Opened:
    """Everything a test opened; `close_all()` closes it (the `opened` fixture calls it)."""

    def __init__(self) -> None:
        self.clients: list[RawClient] = []
        self._closers: list[Callable[[], Awaitable[Any]]] = []

    async def client(
        self,
        srv: RunningServer,
        *,
        rcvbuf: int | None = None,
        cls: type[RawClient] = RawClient,
        **kw: Any,
    ) -> RawClient:
        """A raw client connected to srv (or to a (host, port) pair through `port=`).

        `rcvbuf` shrinks the socket's receive buffer before connecting, so that a client
        that stops reading fills the server's side quickly."""
        port = kw.pop("port", srv.port)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            if rcvbuf is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.setblocking(False)
            await asyncio.wait_for(
                asyncio.get_running_loop().sock_connect(sock, (HOST, port)), WAIT
            )
            reader, writer = await asyncio.open_connection(sock=sock)
        except BaseException:
            sock.close()
            raise
        c = cls(reader, writer, **kw)
        self.clients.append(c)
        return c

    async def anonymous(self, srv: RunningServer, **kw: Any) -> RawClient:
        c = await self.client(srv, **kw)
        await c.hello()
        return c

    async def user(
        self,
        srv: RunningServer,
        name: str,
        device: str = "d1",
        *,
        register: bool = False,
        sync: bool = True,
        **kw: Any,
    ) -> RawClient:
        """Logged in (registering first if asked) and, unless sync=False, live."""
        c = await self.anonymous(srv, **kw)
        if register:
            await c.register(name, PASSWORD)
        await c.login(name, PASSWORD, device)
        if sync:
            await c.sync_all()
        return c

    async def resume(self, srv: RunningServer, token: str, **kw: Any) -> RawClient:
        """A new connection that resumes a session with its token (AUTH), not synced."""
        c = await self.anonymous(srv, **kw)
        await c.auth(token)
        return c

    def on_close(self, closer: Callable[[], Awaitable[Any]]) -> None:
        self._closers.append(closer)

    async def close_all(self) -> None:
        for c in self.clients:
            t = c.writer.transport
            if t is not None and not t.is_closing():
                t.abort()  # a client that stopped reading cannot close gracefully
            await c.close()
        for closer in reversed(self._closers):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(closer(), 5)


class DroppingProxy:
    """A TCP proxy on 127.0.0.1 in front of a server.

    Client to server, bytes pass unchanged. Server to client, frames pass one by one; while
    `armed`, the first frame of type `drop_type` (default SENT) is swallowed instead, kept
    in `dropped` (decoded), and both connections are reset right there. The server has done
    the work and written the answer; the client never sees it. Disarmed after one drop.
    """

    def __init__(self, upstream_port: int, drop_type: int = int(MessageType.SENT)) -> None:
        self.upstream_port = upstream_port
        self.drop_type = drop_type
        self.armed = True
        self.dropped: list[Message] = []
        self.cut = asyncio.Event()
        self.port = 0
        self._server: asyncio.base_events.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._handlers: set[asyncio.Task[None]] = set()

    async def start(self) -> DroppingProxy:
        self._server = await asyncio.start_server(self._handle, HOST, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _handle(self, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.append(cwriter)
        try:
            sreader, swriter = await asyncio.open_connection(HOST, self.upstream_port)
        except OSError:
            cwriter.transport.abort()
            self._handlers.discard(task)
            return
        self._writers.append(swriter)
        up = asyncio.ensure_future(self._pipe(creader, swriter))
        down = asyncio.ensure_future(self._frames(sreader, cwriter))
        try:
            await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (up, down):
                t.cancel()
            await asyncio.gather(up, down, return_exceptions=True)
            for w in (cwriter, swriter):
                w.transport.abort()  # a reset, no CLOSE frame: the connection just dropped
            self._handlers.discard(task)

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(1 << 16):
                writer.write(data)
                await writer.drain()

    async def _frames(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        frames = FrameReader(1 << 30)
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(1 << 16):
                for body in frames.feed(data):
                    msg_type, rid, payload = unpack_body(body)
                    if self.armed and msg_type == self.drop_type:
                        self.armed = False
                        self.dropped.append(decode_message(msg_type, rid, payload, DEFAULT_LIMITS))
                        self.cut.set()
                        return
                    writer.write(encode_frame(body))
                await writer.drain()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for w in self._writers:
            w.transport.abort()
        for t in list(self._handlers):
            t.cancel()
        if self._handlers:
            await asyncio.wait(self._handlers, timeout=5)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None


async def send_window(c: RawClient, to: str, texts: list[str]) -> list[Any]:
    """Pipeline several SENDs (one write), then collect their answers (SENT or ERROR) in
    order: one group commit can take them all."""
    msgs = [c.send_msg(to, t) for t in texts]
    await c.write(*msgs)
    return [await c.answer(m.rid) for m in msgs]


SOAK_COUNTS = (
    "crash_attempted",
    "crash_acked",
    "crash_delivered",
    "crash_lost",
    "crash_duplicated",
    "acked_duplicate",
    "unacked",
    "unacked_stored",
    "disconnects",
    "reconnects",
    "integrity",
    "exit_codes",
    "final_exit_code",
)


def measure_crash_soak(tmp_path: Path, args: list[str]) -> tuple[int, dict[str, Any], str]:
    """run_crash_soak once. The soak's watchdog reports an event-loop stall (the client
    livelock fixed in client/connection.py, test_fault_client_reset.py) instead of
    hanging; such a run fails the test like any other wrong count."""
    run_dir = tmp_path / "run0"
    run_dir.mkdir()
    rc, summary, err = run_crash_soak(run_dir, args)
    assert not summary.get("livelock"), (
        "client event loop stalled after a reset:\n" + str(summary.get("stack", ""))[-2000:]
    )
    return rc, summary, err
