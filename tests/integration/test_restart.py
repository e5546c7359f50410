"""Restarts and shutdown: what survives (history, sequences, positions, tokens), CLOSE 1001
for connected clients, and a real server process stopped with SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys

from liaotian.protocol import CloseCode, Error, ErrorCode, Ping, Sent
from rawclient import Closed, RawClient


async def test_restart_keeps_history_sequences_positions_and_tokens(server, clients) -> None:
    alice = await clients.user(server, "alice")
    bob = await clients.user(server, "bob")
    sent = [await alice.send("bob", f"m{i}") for i in range(1, 4)]
    for _ in range(3):
        await bob.next_updates()
    await bob.ack(2)
    await bob.barrier()  # the ACK has been processed
    tokens = alice.token, bob.token

    await server.restart()
    for c in (alice, bob):
        await c.expect_close(CloseCode.GOING_AWAY)

    alice = await clients.anonymous(server)
    a_auth = await alice.auth(tokens[0])
    assert (a_auth.user, a_auth.head) == ("alice", 3)
    bob = await clients.anonymous(server)
    b_auth = await bob.auth(tokens[1])
    assert (b_auth.user, b_auth.head, b_auth.acked) == ("bob", 3, 2)

    # bob resumes from his stored position: only what he had not acknowledged
    pages = await bob.sync_all(b_auth.acked)
    assert [u.seq for p in pages for u in p.updates] == [3]
    await alice.sync_all(3)

    # numbering continues where it stopped
    s4 = await alice.send("bob", "m4")
    assert (s4.id, s4.conv, s4.pos, s4.seq) == (4, sent[0].conv, 4, 4)
    push = await bob.next_updates()
    assert [u.seq for u in push.updates] == [4]
    s5 = await bob.send("alice", "r5")
    assert (s5.id, s5.pos, s5.seq) == (5, 5, 5)
    assert [u.seq for u in (await alice.next_updates()).updates] == [5]

    # history and idempotency keys survived too
    full = await alice.full_history("bob")
    assert [m.text for m in full] == ["m1", "m2", "m3", "m4", "r5"]
    assert [m.id for m in full[:3]] == [s.id for s in sent]
    dup = await alice.send("bob", "m1 again", cmid=sent[0].cmid)
    assert dup.duplicate and (dup.id, dup.pos, dup.seq) == (sent[0].id, 1, 1)
    await bob.assert_no_push()


async def test_shutdown_sends_going_away_to_everyone(server, clients) -> None:
    live = await clients.user(server, "alice")
    authed = await clients.user(server, "bob", sync=False)
    anonymous = await clients.anonymous(server)
    fresh = await clients.connect(server)  # no HELLO; an answer proves it was accepted
    await fresh.expect_error(Ping(rid=fresh.rid()), ErrorCode.BAD_STATE, raw=True)
    await server.stop()
    for c in (live, authed, anonymous, fresh):
        await c.expect_close(CloseCode.GOING_AWAY)


async def test_shutdown_answers_queued_sends_before_closing(server, clients) -> None:
    alice = await clients.user(server, "alice")
    await clients.register(server, "bob")
    msgs = [alice.send_msg("bob", f"m{i}") for i in range(100)]
    await alice.write(*msgs)
    await alice.barrier()  # all 100 were taken by the server
    stopping = asyncio.ensure_future(server.stop())
    await alice.expect_close(CloseCode.GOING_AWAY)
    await stopping
    # every SEND taken before the shutdown began was committed and answered first
    answers = [alice.answers.get(m.rid) for m in msgs]
    assert all(isinstance(a, Sent) for a in answers), answers
    assert [a.pos for a in answers] == list(range(1, 101))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """`python -m liaotian.server` in a subprocess; ready once it logs "listening on"."""

    def __init__(self, db_path: str, port: int) -> None:
        self.db_path, self.port = db_path, port
        self.proc: asyncio.subprocess.Process | None = None
        self.lines: list[str] = []
        self._reader: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        env = {
            **os.environ,
            "LIAOTIAN_ARGON2_TIME_COST": "1",
            "LIAOTIAN_ARGON2_MEMORY_KIB": "8192",
            "LIAOTIAN_ARGON2_PARALLELISM": "1",
        }
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "liaotian.server",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--db-path",
            self.db_path,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        self._ready = asyncio.Event()
        self._reader = asyncio.ensure_future(self._read_log())
        waiter = asyncio.ensure_future(self._ready.wait())
        await asyncio.wait([waiter, self._reader], timeout=15, return_when=asyncio.FIRST_COMPLETED)
        if not self._ready.is_set():
            waiter.cancel()
            await self.kill()
            raise AssertionError("server did not start:\n" + "".join(self.lines))

    async def _read_log(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        async for raw in self.proc.stderr:
            line = raw.decode(errors="replace")
            self.lines.append(line)
            if "listening on" in line:
                self._ready.set()

    async def terminate(self, timeout: float = 10.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        rc = await asyncio.wait_for(self.proc.wait(), timeout)
        await asyncio.wait_for(self._reader, timeout)
        return rc

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 5)


async def test_sigterm_is_graceful_and_loses_no_acknowledged_message(tmp_path) -> None:
    port = _free_port()
    db = str(tmp_path / "server.db")
    proc = ServerProcess(db, port)
    await proc.start()
    opened: list[RawClient] = []
    try:
        setup = await RawClient.connect("127.0.0.1", port)
        opened.append(setup)
        await setup.hello()
        await setup.register("bob")
        alice = await RawClient.connect("127.0.0.1", port)
        opened.append(alice)
        await alice.hello()
        await alice.register("alice")
        await alice.login("alice")
        await alice.sync_all()

        acked: list[Sent] = []
        refused = 0
        terminated = None
        window, total = 40, 400
        for start in range(0, total, window):
            msgs = [alice.send_msg("bob", f"m{i}") for i in range(start, start + window)]
            try:
                await alice.write(*msgs)
                for m in msgs:
                    ans = await alice.answer(m.rid, timeout=10)
                    if isinstance(ans, Sent):
                        acked.append(ans)
                    else:
                        assert isinstance(ans, Error) and ans.code == ErrorCode.UNAVAILABLE
                        refused += 1
            except (Closed, ConnectionError):
                break
            if start == 2 * window:  # mid-stream: ask the server to stop
                terminated = asyncio.ensure_future(proc.terminate())
        else:
            raise AssertionError("the server never closed the connection")
        await alice.wait_until_closed()
        assert alice.terminated.code == CloseCode.GOING_AWAY
        assert terminated is not None
        assert await terminated == 0
        assert len(acked) >= 3 * window
        assert [s.pos for s in acked] == list(range(1, len(acked) + 1))

        # a new process on the same database has every acknowledged message
        proc = ServerProcess(db, port)
        await proc.start()
        check = await RawClient.connect("127.0.0.1", port)
        opened.append(check)
        await check.hello()
        await check.login("bob")
        stored = await check.full_history("alice")
        by_id = {m.id: m for m in stored}
        for s in acked:
            assert s.id in by_id, f"acknowledged message {s.id} was lost"
            assert (by_id[s.id].pos, by_id[s.id].cmid) == (s.pos, s.cmid)
        assert [m.pos for m in stored] == list(range(1, len(stored) + 1))  # no holes
        pages = await check.sync_all(0)
        assert len([u for p in pages for u in p.updates]) == len(stored)
        assert await proc.terminate() == 0
    finally:
        for c in opened:
            await c.close()
        await proc.kill()
