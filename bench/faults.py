"""Fault figures for the report: the crash soak's counts and a slow consumer's effect on
everyone else's latency. Each runs its own server process on a fresh database, after the
performance phases, so neither disturbs the other figures.

crash: `scripts/crash_soak.py` (SIGKILLs the server again and again under 1:1 and group
load, then checks every acknowledged message reached every recipient exactly once).

slow consumer: a pair (a -> b) sends one message at a time and times send -> push, first
alone, then while a heavy sender pushes 48 KB messages at a third user who has stopped
reading. The server must evict that reader (CLOSE 4003 or a dropped socket) and keep the
pair's latency bounded. Reported: the pair's p99 without and with the slow consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from liaotian.protocol import (
    Connection,
    Hello,
    Login,
    Register,
    Role,
    Send,
    Sent,
    Sync,
    Updates,
)

from .report import percentile

REPO = Path(__file__).resolve().parent.parent


def crash_counts(quick: bool, env: dict[str, str]) -> dict[str, Any]:
    """Run the crash soak and return its counts (crash_attempted ... crash_duplicated)."""
    with tempfile.TemporaryDirectory(prefix="liaotian-crash-") as tmp:
        out = Path(tmp) / "soak.json"
        args = [
            sys.executable,
            str(REPO / "scripts" / "crash_soak.py"),
            "--duration",
            "8" if quick else "30",
            "--kills",
            "2" if quick else "6",
            "--users",
            "6",
            "--group-size",
            "4",
            "--json",
            str(out),
            "--workdir",
            str(Path(tmp) / "db"),
        ]
        proc = subprocess.run(
            args, env={**os.environ, **env}, capture_output=True, timeout=300, check=False
        )
        summary = json.loads(out.read_text()) if out.exists() else {}
    keys = (
        "crash_attempted",
        "crash_acked",
        "crash_delivered",
        "crash_lost",
        "crash_duplicated",
        "faults",
        "integrity",
    )
    result = {k: summary.get(k) for k in keys}
    result["exit_code"] = proc.returncode
    return result


class _Peer(asyncio.Protocol):
    """Just enough client: requests with futures, pushes counted by cmid arrival time."""

    def __init__(self) -> None:
        self.conn = Connection(Role.CLIENT)
        self.waiting: dict[int, asyncio.Future[Any]] = {}
        self.arrived: dict[str, float] = {}
        self.transport: asyncio.Transport | None = None
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.conn.receive_data(data)
        now = time.perf_counter()
        for ev in self.conn.events_received():
            if isinstance(ev, Updates) and ev.rid == 0:
                for u in ev.updates:
                    if u.message is not None:
                        self.arrived[u.message.cmid] = now
            fut = self.waiting.pop(getattr(ev, "rid", 0), None)
            if fut is not None and not fut.done():
                fut.set_result(ev)
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(True)

    def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def post(self, msg: Any) -> asyncio.Future[Any]:
        fut = asyncio.get_running_loop().create_future()
        self.waiting[msg.rid] = fut
        self.conn.send(msg)
        self._flush()
        return fut

    async def request(self, msg: Any) -> Any:
        return await asyncio.wait_for(self.post(msg), 30)


async def _peer(port: int, user: str, register: bool = True) -> _Peer:
    _, p = await asyncio.get_running_loop().create_connection(_Peer, "127.0.0.1", port)
    c = p.conn
    await p.request(Hello(rid=c.next_rid(), versions=(1,), client="bench-faults"))
    if register:
        await p.request(Register(rid=c.next_rid(), username=user, password="bench-password"))
    auth = await p.request(
        Login(rid=c.next_rid(), username=user, password="bench-password", device="bench")
    )
    await p.request(Sync(rid=c.next_rid(), since=auth.head))
    return p


async def _pair_latencies(a: _Peer, b: _Peer, n: int, label: str) -> list[float]:
    out = []
    for i in range(n):
        cmid = f"{label}-{i}"
        t0 = time.perf_counter()
        sent = await a.request(Send(rid=a.conn.next_rid(), to="sc-bob", cmid=cmid, text="ping"))
        assert isinstance(sent, Sent), sent
        deadline = time.perf_counter() + 10
        while cmid not in b.arrived:
            if time.perf_counter() > deadline:
                raise TimeoutError("push never arrived")
            await asyncio.sleep(0)
        out.append((b.arrived[cmid] - t0) * 1000)
    return out


async def _slow_consumer(port: int, n: int) -> dict[str, Any]:
    a, b = await _peer(port, "sc-alice"), await _peer(port, "sc-bob")
    heavy, slow = await _peer(port, "sc-heavy"), await _peer(port, "sc-slow")
    base = await _pair_latencies(a, b, n, "base")
    assert slow.transport is not None
    slow.transport.pause_reading()  # stops reading: the server's buffer for it fills
    stop = False
    big = "x" * 48_000

    async def flood() -> int:
        k = 0
        while not stop:
            futs = [
                heavy.post(
                    Send(rid=heavy.conn.next_rid(), to="sc-slow", cmid=f"flood-{k}-{j}", text=big)
                )
                for j in range(8)
            ]
            await asyncio.wait_for(asyncio.gather(*futs), 30)
            k += 1
        return k * 8

    flooder = asyncio.ensure_future(flood())
    try:
        with_slow = await _pair_latencies(a, b, n, "slow")
    finally:
        stop = True
        sent_to_slow = await flooder
    # The slow reader has not read a byte, so it cannot have noticed an eviction yet: let it
    # read what the kernel holds; an evicted connection then ends (EOF or reset).
    assert slow.transport is not None
    slow.transport.resume_reading()
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(asyncio.shield(slow.lost), 15)
    evicted = slow.lost.done()
    for p in (a, b, heavy, slow):
        if p.transport is not None:
            p.transport.close()
    return {
        "p99_ms_without": round(percentile(base, 99), 3),
        "p99_ms_with": round(percentile(with_slow, 99), 3),
        "p50_ms_without": round(percentile(base, 50), 3),
        "p50_ms_with": round(percentile(with_slow, 50), 3),
        "samples": n,
        "sent_to_slow_consumer": sent_to_slow,
        "slow_consumer_evicted": evicted,
    }


def slow_consumer(quick: bool, env: dict[str, str]) -> dict[str, Any]:
    """A server process with an 1 MiB outbound limit and a 2 s write deadline."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="liaotian-slow-") as tmp:
        server_env = {
            **os.environ,
            **env,
            "LIAOTIAN_MAX_OUTBOUND_BUFFER": str(1 << 20),
            "LIAOTIAN_WRITE_TIMEOUT": "2",
        }
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "liaotian.server",
                "--port",
                str(port),
                "--db-path",
                str(Path(tmp) / "slow.db"),
                "--log-level",
                "warning",
            ],
            env=server_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise RuntimeError("slow-consumer server did not start") from None
                    time.sleep(0.1)
            return asyncio.run(_slow_consumer(port, 200 if quick else 1000))
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
