#!/usr/bin/env python3
"""Crash soak: kill the server again and again under load, then prove nothing was lost.

    python scripts/crash_soak.py --duration 300 --kills 20 --users 12 --group-size 6
    python scripts/crash_soak.py --signal term --kills 5       # graceful restarts instead

A real `python -m liaotian.server` process (127.0.0.1 only, a free port, its own database)
serves N users of the reference client library (`liaotian.client`, reconnecting by itself).
Every user sends direct messages to a partner and, if a member, messages to one group, each
with its own cmid, while the server is SIGKILLed (or SIGTERMed) `--kills` times and started
again on the same port and database. When the load stops, with the server up:

* every acknowledged message (the client got a SENT for it) is in the update log of the
  sender and of every recipient (read with SYNC from 0, per user, on a fresh device), with
  the id, position and text of its SENT, and reached every recipient's client device;
* no cmid was stored twice (two message ids for one cmid is a duplicate), no device got one
  message twice;
* every reader's per-conversation positions are 1, 2, 3, ... (strictly increasing, no gap)
  and every update log is gap-free;
* `PRAGMA integrity_check` on the database says ok, and the last server exits 0 on SIGTERM.

A JSON summary goes to stdout (`crash_attempted`, `crash_acked`, `crash_delivered`,
`crash_lost`, `crash_duplicated` and more). Exit code 1 if anything was lost or duplicated
(or any other invariant above failed), 2 for a usage or setup error, 3 if the event loop
stopped turning (a livelock in the client library; the report then has `"livelock": true`
and the stack of the spinning coroutine).

`tests/faults/test_fault_crash.py` and `test_fault_graceful.py` run the same code with small
parameters; this script is the long variant. Every loop is bounded in count and time, every
process it starts is killed by PID when it ends.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

import liaotian.client as lt
from liaotian.client import Backoff
from liaotian.protocol import (
    Authenticated,
    Connection,
    ConnectionTerminated,
    Error,
    Hello,
    Login,
    Message,
    ProtocolViolation,
    Role,
    Sync,
    UpdateKind,
    Updates,
)

HOST = "127.0.0.1"  # the only address this script ever talks to
PASSWORD = "soak password 1"
SERVER_ENV = {  # cheap password hashing, as in the test suite
    "LIAOTIAN_ARGON2_TIME_COST": "1",
    "LIAOTIAN_ARGON2_MEMORY_KIB": "8192",
    "LIAOTIAN_ARGON2_PARALLELISM": "1",
    "LIAOTIAN_SHUTDOWN_GRACE": "5",
}


@dataclass
class SoakConfig:
    duration: float = 60.0  # seconds of load (the faults happen inside it)
    kills: int = 10  # how many times the server is stopped and started again
    users: int = 6
    group_size: int = 4  # members of the one group (users 0 .. group_size-1)
    signal: str = "kill"  # "kill" (SIGKILL) or "term" (SIGTERM, graceful)
    window: int = 2  # concurrent sends per user
    max_messages: int = 100_000  # per user, a hard bound besides the duration
    send_timeout: float = 20.0  # per attempt; a timed-out send is retried with its cmid
    send_attempts: int = 5
    down_max: float = 0.3  # seconds the server stays down after a fault, at most
    settle_timeout: float = 60.0  # bound for draining sends and device delivery at the end
    start_timeout: float = 20.0
    seed: int | None = None
    port: int | None = None
    workdir: str | None = None  # default: a temporary directory, removed afterwards
    keep: bool = False
    verbose: bool = False
    watchdog: float = 0.0  # > 0: exit 3 if the event loop stalls this long (see Watchdog)
    report: str | None = None  # where the watchdog writes its report (and main the summary)
    db_url: str = ""  # PostgreSQL instead of SQLite (the server's --db-url)


# ---------------------------------------------------------------------- the server process


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """`python -m liaotian.server` on HOST:port; ready once it logs "listening on".

    stderr is drained continuously (last lines kept for failure reports) so the server
    never blocks on a full pipe.
    """

    def __init__(
        self,
        db_path: str,
        port: int,
        env: dict[str, str] | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.db_path, self.port = db_path, port
        self.env = {**os.environ, **SERVER_ENV, **(env or {})}
        self.extra_args = extra_args
        self.proc: asyncio.subprocess.Process | None = None
        self.lines: deque[str] = deque(maxlen=200)
        self._reader: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def start(self, timeout: float = 20.0) -> None:
        self._ready = asyncio.Event()
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "liaotian.server",
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--db-path",
            self.db_path,
            *self.extra_args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=self.env,
        )
        self._reader = asyncio.ensure_future(self._read_log(self.proc))
        waiter = asyncio.ensure_future(self._ready.wait())
        try:
            await asyncio.wait(
                [waiter, self._reader], timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            waiter.cancel()
        if not self._ready.is_set():
            await self.kill()
            raise RuntimeError("server did not start:\n" + "".join(self.lines))

    async def _read_log(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        async for raw in proc.stderr:
            line = raw.decode(errors="replace")
            self.lines.append(line)
            if "listening on" in line:
                self._ready.set()

    async def kill(self) -> int | None:
        """SIGKILL by PID (if still running) and reap; returns the exit status."""
        proc = self.proc
        if proc is None:
            return None
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        rc = await proc.wait()
        await self._join_reader()
        return rc

    async def terminate(self, timeout: float = 20.0) -> int:
        """SIGTERM (graceful shutdown) and wait for the exit code; SIGKILL if it hangs."""
        proc = self.proc
        assert proc is not None
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        try:
            rc = await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            await self.kill()
            raise RuntimeError(f"server ignored SIGTERM for {timeout} s") from None
        await self._join_reader()
        return rc

    async def _join_reader(self) -> None:
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 5)

    def log_tail(self, n: int = 40) -> str:
        return "".join(list(self.lines)[-n:])


def integrity_check(db_path: str) -> str:
    con = sqlite3.connect(db_path)
    try:
        rows = con.execute("PRAGMA integrity_check").fetchall()
    finally:
        con.close()
    return "; ".join(str(r[0]) for r in rows)


def pg_integrity_check(url: str) -> str:
    """PostgreSQL checks its own pages; here: the schema is complete and no client
    message id is stored twice (the unique index would refuse it; this proves it)."""
    import psycopg

    with psycopg.connect(url) as con:
        versions = con.execute("SELECT count(*) FROM schema_version").fetchone()
        twice = con.execute(
            "SELECT count(*) FROM (SELECT 1 FROM messages GROUP BY sender_id, cmid "
            "HAVING count(*) > 1) d"
        ).fetchone()
    if not versions or versions[0] != 2:
        return f"schema_version has {versions} rows"
    return "ok" if twice and twice[0] == 0 else f"{twice} client message ids stored twice"


# ---------------------------------------------------------------------- a raw reader


class RawSession:
    """The smallest protocol client: enough to LOGIN on a fresh device and SYNC from 0.

    Independent of the client library on purpose: the verification must not share the
    code under test."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float
    ) -> None:
        self.reader, self.writer, self.timeout = reader, writer, timeout
        self.conn = Connection(Role.CLIENT)
        self.answers: dict[int, Message] = {}

    @classmethod
    async def open(cls, host: str, port: int, timeout: float = 10.0) -> RawSession:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        return cls(reader, writer, timeout)

    async def request(self, msg: Message) -> Message:
        self.conn.send(msg)
        self.writer.write(self.conn.data_to_send())
        await self.writer.drain()
        async with asyncio.timeout(self.timeout):
            while msg.rid not in self.answers:
                data = await self.reader.read(1 << 16)
                if not data:
                    raise ConnectionError("server closed the connection")
                self.conn.receive_data(data)
                while (ev := self.conn.next_event()) is not None:
                    if isinstance(ev, ProtocolViolation):
                        raise AssertionError(f"server broke the protocol: {ev}")
                    if isinstance(ev, ConnectionTerminated):
                        raise ConnectionError(f"connection closed: {ev}")
                    if ev.rid:
                        self.answers[ev.rid] = ev
        return self.answers.pop(msg.rid)

    async def login(self, user: str, password: str, device: str) -> Authenticated:
        welcome = await self.request(
            Hello(rid=self.conn.next_rid(), versions=(1,), client="crash-soak/1")
        )
        assert not isinstance(welcome, Error), welcome
        auth = await self.request(
            Login(rid=self.conn.next_rid(), username=user, password=password, device=device)
        )
        assert isinstance(auth, Authenticated), f"login of {user} answered {auth}"
        return auth

    async def sync_all(self, since: int = 0, max_pages: int = 100_000) -> list[Any]:
        out: list[Any] = []
        for _ in range(max_pages):
            page = await self.request(Sync(rid=self.conn.next_rid(), since=since, limit=1000))
            assert isinstance(page, Updates), f"SYNC answered {page}"
            out.extend(page.updates)
            if page.updates:
                since = page.updates[-1].seq
            if not page.more:
                return out
        raise AssertionError("SYNC never finished")

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()
            await asyncio.wait_for(self.writer.wait_closed(), 2)


# ---------------------------------------------------------------------- the watchdog


class Watchdog:
    """Notices an event loop that stopped turning.

    A coroutine that loops without ever awaiting something that suspends (a "livelock")
    freezes the whole loop: no timeout can fire, the soak would hang forever. This thread
    watches a heartbeat task; when it has not beaten for `limit` seconds it prints the main
    thread's stack and a JSON report (also to `report`), kills the server process by PID,
    and ends the process with exit code 3.
    """

    EXIT_CODE = 3

    def __init__(self, soak: Soak, limit: float, report: str | None) -> None:
        self.soak, self.limit, self.report = soak, limit, report
        self.last = time.monotonic()
        self._stop = threading.Event()
        self._main = threading.get_ident()
        self._task: asyncio.Task[None] | None = None
        self._thread = threading.Thread(target=self._watch, name="soak-watchdog", daemon=True)

    def start(self) -> None:
        self._main = threading.get_ident()
        self._task = asyncio.ensure_future(self._beat())
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
        if self._thread.is_alive():
            self._thread.join(2)

    async def _beat(self) -> None:
        while True:
            self.last = time.monotonic()
            await asyncio.sleep(0.1)

    def _watch(self) -> None:
        while not self._stop.wait(0.25):
            stalled = time.monotonic() - self.last
            if stalled > self.limit:
                self._fire(stalled)

    def _fire(self, stalled: float) -> None:
        frame = sys._current_frames().get(self._main)
        stack = "".join(traceback.format_stack(frame)) if frame is not None else "?"
        soak = self.soak
        report = {
            "livelock": True,
            "stalled_seconds": round(stalled, 1),
            "stack": stack,
            "faults": soak.faults,
            "crash_attempted": len(soak.attempts),
            "crash_acked": sum(1 for a in list(soak.attempts.values()) if a.sent is not None),
        }
        text = json.dumps(report, indent=2, sort_keys=True)
        print(text, flush=True)
        print(
            f"crash_soak: the event loop has not turned for {stalled:.1f} s (a coroutine "
            f"spins without awaiting); main thread:\n{stack}",
            file=sys.stderr,
            flush=True,
        )
        if self.report:
            with contextlib.suppress(OSError), open(self.report, "w") as fh:
                fh.write(text + "\n")
        proc = soak.proc.proc if soak.proc is not None else None
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
        if not soak.cfg.keep and soak.cfg.workdir is None:
            shutil.rmtree(soak.workdir, ignore_errors=True)
        os._exit(self.EXIT_CODE)


# ---------------------------------------------------------------------- the workload


@dataclass
class Attempt:
    sender: str
    cmid: str
    text: str
    recipients: frozenset[str]  # whose update logs must hold it (sender included)
    devices: frozenset[str]  # whose client devices must receive it (sender excluded)
    to: str = ""  # a direct message's recipient
    group: int | None = None
    sent: Any = None  # the Sent once acknowledged
    error: str | None = None


@dataclass
class Agent:
    name: str
    client: lt.Client
    received: Counter[int] = field(default_factory=Counter)  # message id -> times delivered
    received_cmids: dict[int, tuple[str, str]] = field(default_factory=dict)
    disconnects: int = 0
    reconnects: int = 0
    failure: str | None = None
    consumer: asyncio.Task[None] | None = None


class Soak:
    def __init__(self, cfg: SoakConfig) -> None:
        if cfg.signal not in ("kill", "term"):
            raise ValueError("signal must be 'kill' or 'term'")
        if not 2 <= cfg.users <= 500 or not 0 <= cfg.group_size <= cfg.users:
            raise ValueError("need 2..500 users and a group of at most that many")
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.names = [f"soak{i}" for i in range(cfg.users)]
        self.agents: list[Agent] = []
        self.attempts: dict[tuple[str, str], Attempt] = {}
        self.group: int | None = None
        self.members: frozenset[str] = frozenset()
        self.stop = asyncio.Event()
        self.exit_codes: list[int | None] = []
        self.errors: list[str] = []
        self.faults = 0
        self.proc: ServerProcess | None = None
        self.port = cfg.port or free_port()
        self.workdir = cfg.workdir or tempfile.mkdtemp(prefix="liaotian-soak-")
        os.makedirs(self.workdir, exist_ok=True)
        self.db_path = os.path.join(self.workdir, "soak.db")

    def log(self, text: str) -> None:
        if self.cfg.verbose:
            print(f"[soak {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)

    def error(self, text: str) -> None:
        self.errors.append(text)
        self.log("ERROR " + text)

    # ------------------------------------------------------------------ setup

    def partner(self, i: int) -> str:
        n = len(self.names)
        return self.names[(i + n // 2) % n] if n % 2 == 0 else self.names[(i + 1) % n]

    async def start_server(self) -> None:
        url = self.cfg.db_url
        self.proc = ServerProcess(
            self.db_path, self.port, extra_args=("--db-url", url) if url else ()
        )
        await self.proc.start(self.cfg.start_timeout)
        self.log(f"server pid {self.proc.pid} on {HOST}:{self.port}")

    async def setup(self) -> None:
        await self.start_server()
        for name in self.names:
            await lt.register(HOST, self.port, name, PASSWORD)
        for name in self.names:
            client = lt.Client(
                HOST,
                self.port,
                username=name,
                password=PASSWORD,
                device="soakdev",
                backoff=Backoff(base=0.05, cap=0.5),
                request_timeout=10.0,
                max_reconnect_attempts=10_000,
            )
            agent = Agent(name, client)
            self.agents.append(agent)
            await client.start()
            agent.consumer = asyncio.ensure_future(self.consume(agent))
        if self.cfg.group_size >= 2:
            for agent in self.agents[1 : self.cfg.group_size]:  # strangers may add them
                await agent.client.set_privacy(groups="everyone")
            owner = self.agents[0].client
            info = await owner.create_group("soak", self.names[1 : self.cfg.group_size])
            self.group = info.group
            self.members = frozenset(self.names[: self.cfg.group_size])

    async def consume(self, agent: Agent) -> None:
        try:
            async for ev in agent.client:
                if isinstance(ev, lt.MessageReceived):
                    m = ev.message
                    if m.event is None:
                        agent.received[m.id] += 1
                        agent.received_cmids[m.id] = (m.sender, m.cmid)
                elif isinstance(ev, lt.Disconnected):
                    agent.disconnects += 1
                elif isinstance(ev, lt.Reconnected):
                    agent.reconnects += 1
        except Exception as exc:  # the client ended by itself: that is a finding
            agent.failure = f"{type(exc).__name__}: {exc}"

    # ------------------------------------------------------------------ load

    async def sender(self, i: int, lane: int) -> None:
        agent = self.agents[i]
        name = agent.name
        partner = self.partner(i)
        in_group = self.group is not None and name in self.members
        for k in range(self.cfg.max_messages):
            if self.stop.is_set() or agent.failure is not None:
                return
            cmid = f"{name}-{lane}-{k}"
            to_group = in_group and k % 2 == 1
            if to_group:
                att = Attempt(
                    name,
                    cmid,
                    f"group {cmid}",
                    self.members,
                    self.members - {name},
                    group=self.group,
                )
            else:
                att = Attempt(
                    name,
                    cmid,
                    f"direct {cmid} to {partner}",
                    frozenset({name, partner}),
                    frozenset({partner}) - {name},
                    to=partner,
                )
            self.attempts[(name, cmid)] = att
            await self.send_one(agent, att)

    async def send_one(self, agent: Agent, att: Attempt) -> None:
        client = agent.client
        for attempt in range(self.cfg.send_attempts):
            try:
                if att.group is not None:
                    att.sent = await client.send_group(
                        att.group, att.text, cmid=att.cmid, timeout=self.cfg.send_timeout
                    )
                else:
                    att.sent = await client.send(
                        att.to, att.text, cmid=att.cmid, timeout=self.cfg.send_timeout
                    )
                att.error = None
                return
            except TimeoutError:
                att.error = f"timed out (attempt {attempt + 1})"  # retried with the same cmid
            except lt.RequestError as exc:
                att.error = f"refused: {exc}"
                self.error(f"{att.sender} {att.cmid}: {att.error}")
                return
            except lt.LiaotianError as exc:  # the client ended
                att.error = f"{type(exc).__name__}: {exc}"
                self.error(f"{att.sender} {att.cmid}: {att.error}")
                return

    async def faults_loop(self) -> None:
        cfg = self.cfg
        loop = asyncio.get_running_loop()
        end = loop.time() + cfg.duration
        interval = cfg.duration / (cfg.kills + 1)
        for n in range(cfg.kills):
            await asyncio.sleep(max(0.05, interval * self.rng.uniform(0.7, 1.3)))
            assert self.proc is not None
            if cfg.signal == "kill":
                rc = await self.proc.kill()
            else:
                rc = await self.proc.terminate()
            self.exit_codes.append(rc)
            self.faults += 1
            self.log(f"fault {n + 1}/{cfg.kills}: SIG{cfg.signal.upper()} -> exit {rc}")
            await asyncio.sleep(self.rng.uniform(0.0, cfg.down_max))
            await self.start_server()
        await asyncio.sleep(max(0.0, end - loop.time()))

    # ------------------------------------------------------------------ checks

    async def drain(self) -> None:
        """Stop the load; wait (bounded) until every send settled and every device has
        received what it should."""
        self.stop.set()
        deadline = asyncio.get_running_loop().time() + self.cfg.settle_timeout
        while asyncio.get_running_loop().time() < deadline:
            missing = self.device_missing()
            if not missing:
                return
            if any(a.failure for a in self.agents):
                return
            await asyncio.sleep(0.05)

    def device_missing(self) -> dict[str, int]:
        by_agent = {a.name: a for a in self.agents}
        out: dict[str, int] = defaultdict(int)
        for att in self.attempts.values():
            if att.sent is None:
                continue
            for d in att.devices:
                if by_agent[d].received[att.sent.id] == 0:
                    out[d] += 1
        return dict(out)

    async def read_logs(self) -> dict[str, list[Any]]:
        views: dict[str, list[Any]] = {}
        for name in self.names:
            s = await RawSession.open(HOST, self.port)
            try:
                await s.login(name, PASSWORD, "verify")
                views[name] = await s.sync_all(0)
            finally:
                await s.close()
        return views

    def verify(self, views: dict[str, list[Any]]) -> dict[str, Any]:
        # every stored message, by (sender, cmid), as each reader sees it
        ids_by_cmid: dict[tuple[str, str], set[int]] = defaultdict(set)
        seen: dict[str, dict[tuple[str, str], Any]] = {}
        position_errors: list[str] = []
        seq_errors: list[str] = []
        log_duplicates = 0  # one message in two entries of the same log
        for reader, updates in views.items():
            seqs = [u.seq for u in updates]
            if seqs != list(range(1, len(seqs) + 1)):
                seq_errors.append(
                    f"{reader}: update log seqs are not 1..n: {_first_break(seqs, 1)}"
                )
            mine: dict[tuple[str, str], Any] = {}
            by_conv: dict[int, list[int]] = defaultdict(list)
            entries_of: Counter[int] = Counter()  # message id -> entries in this log
            for u in updates:
                if u.kind != UpdateKind.MESSAGE or u.message is None:
                    continue
                m = u.message
                by_conv[m.conv].append(m.pos)
                entries_of[m.id] += 1
                if m.event is not None:
                    continue
                key = (m.sender, m.cmid)
                ids_by_cmid[key].add(m.id)
                if key in mine and mine[key].id != m.id:
                    ids_by_cmid[key].add(mine[key].id)
                mine[key] = m
            log_duplicates += sum(1 for n in entries_of.values() if n > 1)
            for conv, positions in by_conv.items():
                if positions != list(range(1, len(positions) + 1)):
                    position_errors.append(
                        f"{reader} conv {conv}: positions are not "
                        f"1, 2, 3, ...: {_first_break(positions, 1)}"
                    )
            seen[reader] = mine

        attempted = len(self.attempts)
        acked = delivered = lost = mismatched = 0
        lost_examples: list[str] = []
        for key, att in self.attempts.items():
            if att.sent is None:
                continue
            acked += 1
            ids_by_cmid[key].add(att.sent.id)
            ok = True
            for r in att.recipients:
                m = seen.get(r, {}).get(key)
                if m is None:
                    ok = False
                    if len(lost_examples) < 10:
                        lost_examples.append(
                            f"{att.sender} {att.cmid} id {att.sent.id} missing from {r}'s log"
                        )
                elif (m.id, m.pos, m.conv, m.text) != (
                    att.sent.id,
                    att.sent.pos,
                    att.sent.conv,
                    att.text,
                ):
                    mismatched += 1
            if ok:
                delivered += 1
            else:
                lost += 1
        duplicated = sum(1 for ids in ids_by_cmid.values() if len(ids) > 1)
        dup_examples = [f"{k}: ids {sorted(v)}" for k, v in ids_by_cmid.items() if len(v) > 1][:10]
        unacked_stored = sum(
            1
            for key, att in self.attempts.items()
            if att.sent is None and any(key in seen[r] for r in att.recipients)
        )
        acked_duplicate = sum(
            1 for att in self.attempts.values() if att.sent is not None and att.sent.duplicate
        )
        device_dups = sum(sum(1 for n in a.received.values() if n > 1) for a in self.agents)
        missing = self.device_missing()
        return {
            "crash_attempted": attempted,
            "crash_acked": acked,
            "crash_delivered": delivered,
            "crash_lost": lost,
            "crash_duplicated": duplicated,
            "unacked": attempted - acked,
            "unacked_stored": unacked_stored,
            "acked_duplicate": acked_duplicate,  # SENT lost to a fault, answered on a retry
            "mismatched": mismatched,
            "device_missing": sum(missing.values()),
            "device_duplicates": device_dups,
            "log_duplicates": log_duplicates,
            "position_errors": len(position_errors),
            "seq_errors": len(seq_errors),
            "details": (
                lost_examples
                + dup_examples
                + position_errors[:10]
                + seq_errors[:10]
                + [f"device {k} misses {v}" for k, v in missing.items()]
            ),
        }

    # ------------------------------------------------------------------ run

    async def run(self) -> dict[str, Any]:
        started = time.monotonic()
        summary: dict[str, Any] = {}
        watchdog = None
        if self.cfg.watchdog > 0:
            watchdog = Watchdog(self, self.cfg.watchdog, self.cfg.report)
            watchdog.start()
        try:
            await self.setup()
            load_start = time.monotonic()
            senders = [
                asyncio.ensure_future(self.sender(i, lane))
                for i in range(len(self.names))
                for lane in range(self.cfg.window)
            ]
            try:
                await self.faults_loop()
            finally:
                self.stop.set()
                done, pending = await asyncio.wait(senders, timeout=self.cfg.settle_timeout)
                for t in pending:
                    t.cancel()
                    self.error("a sender did not finish within the settle timeout")
                for t in done:
                    if not t.cancelled() and t.exception() is not None:
                        self.error(f"sender crashed: {t.exception()!r}")
            load_time = time.monotonic() - load_start
            await self.drain()
            for a in self.agents:
                await a.client.close()
                if a.consumer is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(a.consumer, 5)
            views = await self.read_logs()
            summary = self.verify(views)
            assert self.proc is not None
            final_rc = await self.proc.terminate()
            summary.update(
                {
                    "integrity": (
                        pg_integrity_check(self.cfg.db_url)
                        if self.cfg.db_url
                        else integrity_check(self.db_path)
                    ),
                    "final_exit_code": final_rc,
                    "faults": self.faults,
                    "signal": self.cfg.signal,
                    "exit_codes": self.exit_codes,
                    "reconnects": sum(a.reconnects for a in self.agents),
                    "disconnects": sum(a.disconnects for a in self.agents),
                    "client_failures": [f"{a.name}: {a.failure}" for a in self.agents if a.failure],
                    "users": len(self.names),
                    "load_seconds": round(load_time, 2),
                    "acked_per_second": round(summary["crash_acked"] / max(load_time, 1e-9), 1),
                    "seconds": round(time.monotonic() - started, 2),
                    "errors": self.errors[:20],
                }
            )
        finally:
            if watchdog is not None:
                watchdog.stop()
            for a in self.agents:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(a.client.close(), 5)
                if a.consumer is not None and not a.consumer.done():
                    a.consumer.cancel()
            if self.proc is not None:
                if summary.get("integrity") is None and self.proc.lines:
                    summary["server_log_tail"] = self.proc.log_tail()
                await self.proc.kill()
            if not self.cfg.keep and self.cfg.workdir is None:
                shutil.rmtree(self.workdir, ignore_errors=True)
        return summary


def _first_break(values: list[int], start: int) -> str:
    for i, v in enumerate(values):
        if v != start + i:
            near = values[max(0, i - 3) : i + 3]
            return f"at index {i}: expected {start + i}, got {v} (near {near})"
    return f"length {len(values)}"


def failures(summary: dict[str, Any]) -> list[str]:
    """Everything in a summary that breaks an invariant (empty list: all good)."""
    out = []
    for key in (
        "crash_lost",
        "crash_duplicated",
        "mismatched",
        "device_missing",
        "device_duplicates",
        "log_duplicates",
        "position_errors",
        "seq_errors",
    ):
        if summary.get(key, 0):
            out.append(f"{key}={summary[key]}")
    if summary.get("integrity") != "ok":
        out.append(f"integrity={summary.get('integrity')!r}")
    if summary.get("final_exit_code") != 0:
        out.append(f"final_exit_code={summary.get('final_exit_code')}")
    if summary.get("signal") == "term" and any(rc != 0 for rc in summary.get("exit_codes", [])):
        out.append(f"exit_codes={summary['exit_codes']}")
    if summary.get("client_failures"):
        out.append(f"client_failures={summary['client_failures']}")
    if summary.get("errors"):
        out.append(f"errors={summary['errors'][:3]}")
    if not summary.get("crash_acked"):
        out.append("nothing was acknowledged")
    return out


async def run_soak(cfg: SoakConfig) -> dict[str, Any]:
    return await Soak(cfg).run()


async def _run_until_signalled(cfg: SoakConfig) -> dict[str, Any]:
    """run_soak, cancelled (so that the server process is cleaned up) on SIGTERM."""
    task = asyncio.current_task()
    assert task is not None
    with contextlib.suppress(NotImplementedError):
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    return await run_soak(cfg)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    d = SoakConfig()
    p.add_argument("--duration", type=float, default=d.duration, help="seconds of load")
    p.add_argument("--kills", type=int, default=d.kills, help="server faults during the load")
    p.add_argument("--users", type=int, default=d.users)
    p.add_argument("--group-size", type=int, default=d.group_size)
    p.add_argument("--signal", choices=("kill", "term"), default=d.signal)
    p.add_argument("--window", type=int, default=d.window, help="concurrent sends per user")
    p.add_argument("--max-messages", type=int, default=d.max_messages, help="per user")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--port", type=int, default=None, help="default: a free port")
    p.add_argument("--workdir", default=None, help="database directory (kept)")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    p.add_argument("--json", metavar="FILE", help="also write the summary here")
    p.add_argument(
        "--watchdog",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="exit 3 with a stack dump if the event loop stalls this long (0: off)",
    )
    p.add_argument(
        "--db-url", default="", help="serve from PostgreSQL (postgresql://...), not SQLite"
    )
    p.add_argument("-v", "--verbose", action="store_true")
    a = p.parse_args(argv)
    if a.duration <= 0 or a.kills < 0 or a.window < 1:
        p.error("duration must be > 0, kills >= 0, window >= 1")
    cfg = SoakConfig(
        duration=a.duration,
        kills=a.kills,
        users=a.users,
        group_size=a.group_size,
        signal=a.signal,
        window=a.window,
        max_messages=a.max_messages,
        seed=a.seed,
        port=a.port,
        workdir=a.workdir,
        keep=a.keep,
        verbose=a.verbose,
        watchdog=a.watchdog,
        report=a.json,
        db_url=a.db_url,
    )
    try:
        summary = asyncio.run(_run_until_signalled(cfg))
    except ValueError as exc:
        print(f"crash_soak: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("crash_soak: interrupted", file=sys.stderr)
        return 130
    text = json.dumps(summary, indent=2, sort_keys=True)
    print(text)
    if a.json:
        with open(a.json, "w") as fh:
            fh.write(text + "\n")
    bad = failures(summary)
    if bad:
        print("crash_soak: FAILED: " + ", ".join(bad), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
