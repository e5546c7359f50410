"""Orchestration: start the server, the relay and the load processes; run the phases;
always clean up.

Processes:
    server   `python -m liaotian.server --port P --db-path TMP/bench.db --log-level warning`
             (cheap argon2 through LIAOTIAN_ARGON2_*; synchronous=full, the default)
    relay    `python -m bench.relay --port Q`
    loaders  multiprocessing (spawn) processes running bench.load.loader_entry, each owning a
             share of the pairs; commanded over pipes, all phases start at a shared
             time.monotonic() instant (CLOCK_MONOTONIC is system-wide on Linux).

Every wait has a deadline; `close()` (always reached through try/finally) asks everything
to exit, then terminates and finally kills whatever is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import bots as bot_bench
from . import channels as channel_bench
from . import cpu as cpu_split
from . import faults, report
from . import media as media_bench
from . import nearby as nearby_bench
from . import wallet as wallet_bench
from .load import (
    BenchError,
    group_member_name,
    idle_user_name,
    loader_entry,
    offline_sender_name,
    offline_user_name,
)

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parent.parent
SERVER_ENV = {
    # cheap password hashing: setting up 1,000 accounts takes seconds
    "LIAOTIAN_ARGON2_TIME_COST": "1",
    "LIAOTIAN_ARGON2_MEMORY_KIB": "8192",
    "LIAOTIAN_ARGON2_PARALLELISM": "1",
    # per-user send limits out of the way (the default is 100 msgs/s per user; the load drives
    # each sender at hundreds per second); the token buckets are still checked on every SEND.
    # A server without these settings ignores them.
    "LIAOTIAN_SEND_RATE": "1e9",
    "LIAOTIAN_SEND_BURST": "1e9",
    "LIAOTIAN_SEND_BYTES_RATE": "1e12",
    "LIAOTIAN_SEND_BYTES_BURST": "1e12",
    # every load connection comes from 127.0.0.1 and the idle phase opens ~100 connections
    # per user: the default per-address (64) and per-user (16) limits are lifted (0 = none)
    "LIAOTIAN_MAX_CONNECTIONS_PER_ADDRESS": "0",
    "LIAOTIAN_MAX_CONNECTIONS_PER_USER": "0",
    # registration throttling out of the way: setup registers thousands of users from one
    # address, 16 at a time per load process (hashes stay cheap, 8 MiB each)
    "LIAOTIAN_REGISTER_RATE": "1e9",
    "LIAOTIAN_REGISTER_BURST": "1e9",
    "LIAOTIAN_ARGON2_MAX_CONCURRENT": "64",
    "LIAOTIAN_REGISTER_MAX_CONCURRENT": "64",
    # and the login ceiling per address: logins in flight count against it (SPEC 9.4), and
    # setup logs in 32 users at once from 127.0.0.1
    "LIAOTIAN_LOGIN_FAILURES_PER_ADDRESS": "1000000",
    # the per-user write budgets out of the way, like the send limits: a group SEND costs one
    # update-log row per member, and the group senders send hundreds per second each
    "LIAOTIAN_WRITE_RATE": "1e9",
    "LIAOTIAN_WRITE_BURST": "1e9",
    "LIAOTIAN_WRITE_ROWS_RATE": "1e12",
    "LIAOTIAN_WRITE_ROWS_BURST": "1e12",
}
# sockets one load process may hold at most (the open-file limit is 20,000 per process here)
MAX_SOCKETS_PER_LOADER = 9000


@dataclass
class Options:
    quick: bool = False
    runs: int = 3
    pairs: int = 500
    duration: float = 10.0  # measurement window of the throughput and latency phases
    warmup: float = 3.0  # before each throughput window
    latency_warmup: float = 1.0
    latency_fraction: float = 0.2  # latency phase rate, as a fraction of measured throughput
    latency_rate: float | None = None  # a fixed rate instead, for comparisons at equal load
    cpu_rate: float = 5000.0  # the paced phase of cpu_us_per_msg_at_5k; 0 skips it
    server_python: str | None = None  # the interpreter (so the build) the server runs on
    offline_messages: int = 100_000
    offline_senders: int = 8
    offline_window: int = 64  # unacknowledged SENDs per offline sender
    sync_page: int = 1000
    window: int = 8  # unacknowledged SENDs per sender in the throughput phase
    # group fan-out: one group, some members online (live connections), a few of them send
    group_members: int = 500  # owner included; 0 skips the group phases
    group_online: int = 100
    group_senders: int = 10
    group_window: int = 4  # unacknowledged group SENDs per sender
    # idle connections: RSS of the server per authenticated idle connection
    idle_conns: int = 10_000  # 0 skips the measurement
    idle_users: int = 100  # each LOGINs once; its token authenticates idle_conns/idle_users
    idle_concurrency: int = 64  # connections being opened at once, per load process
    loaders: int = 2
    busy_threshold: float = 0.25  # cores used by other processes that make a phase "disturbed"
    quiet_wait: float = 5.0  # seconds to wait, at most, before each phase for a quiet machine
    retries: int = 3  # repeats of disturbed phases, in total over the whole invocation
    setup_concurrency: int = 16  # per loader; argon2 runs in the server's thread pool
    json: str | None = None
    profile: str | None = None  # directory for a py-spy profile of an extra throughput phase
    keep: bool = False  # keep the temporary directory (database, server log)
    server_log_level: str = "warning"  # "info" puts the writer's statistics in server.log
    faults: bool = True  # crash soak counts and the slow-consumer latency effect
    nearby: bool = True  # the nearby index, position updates, racing orders (nearby.py)
    media: bool = True  # media transfers, and the 1:1 latency under media load (media.py)
    media_mib: int = 64  # the blob uploaded and downloaded (quick: 16)
    media_uploaders: int = 20  # clients uploading 5 MiB blobs during chat_p99_ms_under_media
    channels: bool = True  # posts at 1,000/100,000 members, news, catch-up (channels.py)
    wallet: bool = True  # transfers, red-packet claims racing, the invariants (wallet.py)
    bots: bool = True  # a bot's command and press round trips (bots.py)
    pg: bool = True  # PostgreSQL beside SQLite, same workload (pg.py); skipped without one
    verbose: bool = True

    @classmethod
    def make(cls, *, quick: bool = False, **overrides: Any) -> Options:
        base = (
            cls(
                quick=True,
                runs=1,
                pairs=100,
                duration=3.0,
                warmup=1.0,
                offline_messages=20_000,
                quiet_wait=2.0,
                retries=0,
                group_members=100,
                group_online=20,
                idle_conns=2000,
                idle_users=20,
                media_mib=16,
                media_uploaders=5,
            )
            if quick
            else cls()
        )
        for k, v in overrides.items():
            if v is not None:
                setattr(base, k, v)
        if base.runs < 1 or base.pairs < 1 or base.duration <= 0 or base.offline_messages < 1:
            raise ValueError("runs, pairs, duration and offline messages must be positive")
        base.loaders = max(1, min(base.loaders, base.pairs))
        if base.group_members:
            if base.group_members < 2:
                raise ValueError("a group needs at least 2 members (or 0: no group phases)")
            base.group_online = min(base.group_online, base.group_members)
            if base.group_online < 2:
                raise ValueError("at least 2 group members must be online")
            base.group_senders = min(base.group_senders, base.group_online)
            if base.group_senders < 1 or base.group_window < 1:
                raise ValueError("group senders and group window must be positive")
        if base.idle_conns < 0 or (base.idle_conns and base.idle_users < 1):
            raise ValueError("idle connections need at least one idle user")
        if base.idle_conns:
            # every load process logs in users of its own (a second LOGIN of the same device
            # would replace the token another process uses)
            base.idle_users = max(min(base.idle_users, base.idle_conns), base.loaders)
            per = -(-base.idle_conns // base.loaders)
            if per > MAX_SOCKETS_PER_LOADER:
                raise ValueError(
                    f"{base.idle_conns} idle connections over {base.loaders} load "
                    f"processes is {per} per process; at most "
                    f"{MAX_SOCKETS_PER_LOADER}: raise --loaders"
                )
        return base

    def server_env(self) -> dict[str, str]:
        """SERVER_ENV plus the limits this configuration needs."""
        env = dict(SERVER_ENV)
        env["LIAOTIAN_MAX_GROUP_SIZE"] = str(max(500, self.group_members))
        conns = (
            self.idle_conns
            + 2 * self.pairs
            + self.group_online
            + self.offline_senders
            + self.runs
            + 1000
        )
        env["LIAOTIAN_MAX_CONNECTIONS"] = str(max(15_000, conns))
        return env


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def server_rss_kib(pid: int) -> int | None:
    """VmRSS of a process, in KiB (Linux)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def proc_io(pid: int) -> dict[str, int]:
    """/proc/PID/io counters (Linux): wchar/rchar include sockets, write_bytes/read_bytes
    only what reaches the block layer (the database and its WAL)."""
    try:
        with open(f"/proc/{pid}/io") as fh:
            return {k: int(v) for k, v in (line.split(":") for line in fh if ":" in line)}
    except (OSError, ValueError):
        return {}


def io_rates(
    start: dict[str, int], end: dict[str, int], seconds: float, messages: float
) -> dict[str, Any]:
    """The server's I/O over a window: per second, and disk bytes per acknowledged message."""
    if not start or not end or seconds <= 0:
        return {}
    d = {k: end[k] - start[k] for k in start if k in end}
    out: dict[str, Any] = {
        f"{k}_per_s": round(v / seconds)
        for k, v in d.items()
        if k in ("write_bytes", "read_bytes", "wchar", "syscw", "syscr")
    }
    if messages:
        out["disk_write_bytes_per_msg"] = round(d.get("write_bytes", 0) / messages)
    return out


CHANNEL_KEYS = (
    "channel_posts_per_s_1k",
    "channel_posts_per_s_100k",
    "channel_post_notice_ms_p99",
    "channel_notices_per_s",
    "channel_catch_up_posts_per_s",
    "channel_rss_bytes_per_member",
)


def channel_figures(run: dict[str, Any], quick: bool, failures: list[str]) -> None:
    """The channels' figures (bench/channels.py, its own server process on its own
    database) into the first run."""
    log("channels: posts at 1,000 and many members, news to online members, catch-up")
    ch = channel_bench.measure(quick)
    log(
        f"  posts/s {ch['channel_posts_per_s_1k']} (1,000 members), "
        f"{ch['channel_posts_per_s_100k']} ({ch['members_big']:,} members); news p99 "
        f"{ch['channel_post_notice_ms_p99']} ms to {ch['online']:,} online; catch-up "
        f"{ch['channel_catch_up_posts_per_s']} posts/s"
    )
    if ch["server_exit_code"] != 0 or ch["notices_received"] != ch["notices_expected"]:
        failures.append(f"channels: {ch}")
    run.update({k: ch[k] for k in CHANNEL_KEYS})
    run["details"]["channels"] = ch
    # one process of its own, after the others: not measured against other phases
    run.setdefault("disturbed", {}).update(dict.fromkeys(CHANNEL_KEYS, False))


WALLET_KEYS = (
    "wallet_transfers_per_s",
    "red_packet_claims_per_s",
    "red_packet_claim_ms_p99",
    "wallet_invariant_violations",
)


def wallet_figures(run: dict[str, Any], quick: bool, failures: list[str]) -> None:
    """The wallet's figures (bench/wallet.py, its own server process on its own database)
    into the first run; any invariant violation, unpaid packet or bad exit is a failure."""
    log("wallet: transfers between 1,000 users, 500 members racing for red packets")
    w = wallet_bench.measure(quick)
    log(
        f"  {w['wallet_transfers_per_s']} transfers/s; {w['red_packet_claims_per_s']} claims/s, "
        f"claim p99 {w['red_packet_claim_ms_p99']} ms; "
        f"{w['wallet_invariant_violations']} invariant violations"
    )
    if w["wallet_invariant_violations"] or w["problems"] or w["server_exit_code"] != 0:
        failures.append(f"wallet: {w}")
    run.update({k: w[k] for k in WALLET_KEYS})
    run["details"]["wallet"] = w
    run.setdefault("disturbed", {}).update(dict.fromkeys(WALLET_KEYS, False))


BOT_KEYS = ("bot_command_ms_p50", "bot_command_ms_p99", "bot_press_ms_p50", "bot_press_ms_p99")


def bot_figures(run: dict[str, Any], quick: bool, failures: list[str]) -> None:
    """The bots' round trips (bench/bots.py, its own server and bot processes) into the
    first run."""
    log("bots: command -> reply and press -> answer round trips through the Bot framework")
    try:
        b = bot_bench.measure(quick)
    except (RuntimeError, OSError, TimeoutError) as exc:
        failures.append(f"bots: {exc!r}")
        return
    log(
        f"  command p50 {b['bot_command_ms_p50']} ms, p99 {b['bot_command_ms_p99']} ms; "
        f"press p50 {b['bot_press_ms_p50']} ms, p99 {b['bot_press_ms_p99']} ms "
        f"({b['commands']} of each over {b['users']} users)"
    )
    if b["server_exit_code"] != 0:
        failures.append(f"bots: {b}")
    run.update({k: b[k] for k in BOT_KEYS})
    run["details"]["bots"] = b
    run.setdefault("disturbed", {}).update(dict.fromkeys(BOT_KEYS, False))


def raise_nofile() -> None:
    with contextlib.suppress(Exception):
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = hard if hard != resource.RLIM_INFINITY else 65536
        if soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


class Daemon:
    """A child process that listens on 127.0.0.1:port; output goes to a log file."""

    def __init__(
        self, name: str, argv: list[str], port: int, logfile: Path, env: dict[str, str]
    ) -> None:
        self.name = name
        self.argv = argv
        self.port = port
        self.logfile = logfile
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 20.0) -> None:
        with open(self.logfile, "ab") as out:
            # own session: a Ctrl-C in the terminal reaches only the controller, which then
            # stops this process itself (the server treats a second signal as "exit now")
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise BenchError(
                    f"{self.name} exited with {self.proc.returncode} at start-up:\n"
                    + self.log_tail()
                )
            try:
                with socket.create_connection((HOST, self.port), timeout=0.5):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise BenchError(
                    f"{self.name} did not accept on {HOST}:{self.port} within "
                    f"{timeout} s:\n" + self.log_tail()
                )
            time.sleep(0.05)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM and wait; returns the exit code (None if it had to be killed)."""
        p = self.proc
        if p is None:
            return None
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
                self.proc = None
                return None
        self.proc = None
        return p.returncode

    def kill(self) -> None:
        p = self.proc
        if p is None:
            return
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.wait(5)
        self.proc = None

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"


class CpuMeter:
    """CPU time per role over a phase, from /proc (Linux; empty elsewhere).

    Reports cores used (CPU seconds per wall second) by the server, the relay, the load
    processes and the controller; "other" is user+system time of every other process on the
    machine (a busy neighbour makes the figures of that phase unreliable); "irq" is kernel
    interrupt/softirq time (mostly the loopback TCP stack, not attributed to any process);
    "steal" is time the hypervisor gave to other guests."""

    def __init__(self, roles: dict[str, list[int]]) -> None:
        self.roles = roles
        self.hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.start = self._sample()

    @staticmethod
    def _machine() -> tuple[int, int, int]:
        with open("/proc/stat") as fh:
            f = [int(x) for x in fh.readline().split()[1:]] + [0] * 8
        # user nice system idle iowait irq softirq steal
        return f[0] + f[1] + f[2], f[5] + f[6], f[7]

    @staticmethod
    def _proc(pid: int) -> int:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                rest = fh.read().rsplit(")", 1)[1].split()
            return int(rest[11]) + int(rest[12])  # utime + stime, all threads
        except (OSError, IndexError, ValueError):
            return 0

    def _sample(self) -> tuple[float, tuple[int, int, int], dict[str, int]] | None:
        try:
            return (
                time.monotonic(),
                self._machine(),
                {r: sum(self._proc(p) for p in pids) for r, pids in self.roles.items()},
            )
        except (OSError, ValueError):
            return None

    def stop(self) -> dict[str, float]:
        end = self._sample()
        if self.start is None or end is None:
            return {}
        wall = end[0] - self.start[0]
        if wall <= 0:
            return {}
        hz = self.hz
        out = {r: (end[2][r] - self.start[2][r]) / hz / wall for r in self.roles}
        busy, irq, steal = (e - s for e, s in zip(end[1], self.start[1], strict=True))
        out["other"] = max(0.0, busy / hz / wall - sum(out.values()))
        out["irq"] = irq / hz / wall
        out["steal"] = steal / hz / wall
        return {k: round(v, 2) for k, v in out.items()}


@contextlib.contextmanager
def _alarm(seconds: float, what: str) -> Any:
    """Bound a blocking call of the main thread (a pipe recv of a truncated message would
    otherwise block forever) with SIGALRM."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise BenchError(f"{what}: timed out after {seconds:.1f} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


class LoaderSet:
    def __init__(self, configs: list[dict[str, Any]]) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.procs: list[Any] = []
        self.pipes: list[Any] = []
        for cfg in configs:
            parent, child = ctx.Pipe()
            p = ctx.Process(
                target=loader_entry,
                args=(child, cfg),
                daemon=True,
                name=f"bench-loader-{cfg['index']}",
            )
            p.start()
            child.close()
            self.procs.append(p)
            self.pipes.append(parent)

    def call(
        self,
        cmd: str,
        args: list[dict[str, Any]] | dict[str, Any],
        timeout: float,
        only: list[int] | None = None,
    ) -> list[Any]:
        idx = only if only is not None else list(range(len(self.pipes)))
        per = args if isinstance(args, list) else [args] * len(idx)
        for i, a in zip(idx, per, strict=True):
            self.pipes[i].send((cmd, a))
        return self.collect(cmd, timeout, idx)

    def collect(self, cmd: str, timeout: float, only: list[int] | None = None) -> list[Any]:
        idx = only if only is not None else list(range(len(self.pipes)))
        deadline = time.monotonic() + timeout
        results = []
        for i in idx:
            pipe, proc = self.pipes[i], self.procs[i]
            while not pipe.poll(0.2):
                if not proc.is_alive():
                    raise BenchError(f"loader {i} died (exit code {proc.exitcode}) during {cmd}")
                if time.monotonic() > deadline:
                    raise BenchError(f"loader {i}: no answer to {cmd} within {timeout:.0f} s")
            try:
                with _alarm(max(5.0, deadline - time.monotonic()), f"loader {i}: {cmd} answer"):
                    status, res = pipe.recv()
            except (EOFError, OSError) as exc:
                raise BenchError(f"loader {i}: pipe broken during {cmd}: {exc!r}") from None
            if status != "ok":
                raise BenchError(str(res))
            results.append(res)
        return results

    def close(self) -> None:
        for pipe, p in zip(self.pipes, self.procs, strict=True):
            if p.is_alive():
                with contextlib.suppress(Exception):
                    pipe.send(("exit", {}))
        deadline = time.monotonic() + 5.0
        for p in self.procs:
            p.join(max(0.1, deadline - time.monotonic()))
        for p in self.procs:
            if p.is_alive():
                p.terminate()
                p.join(3.0)
            if p.is_alive():
                p.kill()
                p.join(3.0)
        for pipe in self.pipes:
            with contextlib.suppress(Exception):
                pipe.close()
        self.procs.clear()
        self.pipes.clear()


class Bench:
    def __init__(self, opts: Options) -> None:
        self.o = opts
        self.tmp: Path | None = None
        self.server: Daemon | None = None
        self.relay: Daemon | None = None
        self.loaders: LoaderSet | None = None
        self.failures: list[str] = []
        self.pair_counts: list[int] = []
        self.retries_used = 0
        self.env: dict[str, str] = opts.server_env()
        self.group_online_counts: list[int] = []  # online members per load process
        self.group_sender_counts: list[int] = []
        self.group: dict[str, Any] | None = None  # group id and setup figures
        self.idle: dict[str, Any] | None = None  # the idle-connection measurement

    def cpu(self) -> CpuMeter:
        roles = {
            "server": [self.server.pid] if self.server and self.server.proc else [],
            "relay": [self.relay.pid] if self.relay and self.relay.proc else [],
            "loaders": [p.pid for p in self.loaders.procs] if self.loaders else [],
            "controller": [os.getpid()],
        }
        return CpuMeter(roles)

    def say(self, msg: str) -> None:
        if self.o.verbose:
            log(msg)

    # ------------------------------------------------------------------ processes

    def start(self) -> dict[str, Any]:
        o = self.o
        raise_nofile()
        self.tmp = Path(tempfile.mkdtemp(prefix="liaotian-bench-"))
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIAOTIAN_")}
        env.update(self.env)
        sport = free_port()
        self.server = Daemon(
            "server",
            [
                o.server_python or sys.executable,
                "-m",
                "bench.named_threads",  # liaotian.server with named threads (bench/cpu.py)
                "--port",
                str(sport),
                "--db-path",
                str(self.tmp / "bench.db"),
                "--log-level",
                o.server_log_level,
                "--stats-interval",
                "2",
            ],
            sport,
            self.tmp / "server.log",
            {
                **env,
                "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
            },
        )
        self.server.start()
        self.say(f"server pid {self.server.pid} on {HOST}:{sport} (db {self.tmp / 'bench.db'})")
        renv = dict(env)
        renv["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
        rport = free_port()
        self.relay = Daemon(
            "relay",
            [sys.executable, "-m", "bench.relay", "--port", str(rport)],
            rport,
            self.tmp / "relay.log",
            renv,
        )
        self.relay.start()
        self.say(f"relay pid {self.relay.pid} on {HOST}:{rport}")

        n = o.loaders
        chunks = [list(range(o.pairs))[i * o.pairs // n : (i + 1) * o.pairs // n] for i in range(n)]
        self.pair_counts = [len(c) for c in chunks]
        gm, go = o.group_members, o.group_online
        senders = {k * go // o.group_senders for k in range(o.group_senders)} if gm else set()
        online = [list(range(go))[i * go // n : (i + 1) * go // n] for i in range(n)]
        self.group_online_counts = [len(c) for c in online]
        self.group_sender_counts = [sum(1 for j in c if j in senders) for c in online]
        configs = []
        for i, chunk in enumerate(chunks):
            configs.append(
                {
                    "index": i,
                    "server_port": sport,
                    "relay_port": rport,
                    "pair_indices": chunk,
                    "setup_concurrency": o.setup_concurrency,
                    "group_register": [group_member_name(j) for j in range(gm)][
                        i * gm // n : (i + 1) * gm // n
                    ],
                    "group_online": [[group_member_name(j), j in senders] for j in online[i]],
                    "offline_senders": (
                        [offline_sender_name(j) for j in range(o.offline_senders)] if i == 0 else []
                    ),
                    "offline_users": (
                        [offline_user_name(r) for r in range(o.runs)] if i == 0 else []
                    ),
                }
            )
        self.loaders = LoaderSet(configs)
        if o.idle_conns:
            self.idle = self.idle_connections()
        t0 = time.monotonic()
        users = 2 * o.pairs + o.offline_senders + o.runs + gm
        self.say(f"setup: {n} load processes, {o.pairs} pairs, registering {users} users")
        res = self.loaders.call("setup", {}, timeout=120 + users * 0.2)
        self._check(res, "setup")
        setup = {
            "users": users,
            "connections": sum(r["connections"] for r in res),
            "seconds": round(time.monotonic() - t0, 2),
            "per_loader": [r["timing"] for r in res],
            "login_retries": sum(r["login_retries"] for r in res),
        }
        self.say(f"setup done in {setup['seconds']:.1f} s ({setup['connections']} connections)")
        if setup["login_retries"]:
            notes = [n for r in res for n in r["notes"]][:3]
            self.say(
                f"WARNING: {setup['login_retries']} LOGIN(s) right after REGISTERED were "
                f"refused with BAD_CREDENTIALS and retried (server read-after-write), "
                f"e.g. {notes}"
            )
        if gm:
            setup["group"] = self.group = self.group_setup()
        return setup

    def idle_connections(self) -> dict[str, Any]:
        """Server RSS per authenticated idle connection, on the fresh server (before any
        other setup, so that little freed memory is there to be reused)."""
        o = self.o
        assert self.loaders is not None and self.server is not None
        n = len(self.loaders.procs)
        users = [idle_user_name(j) for j in range(o.idle_users)]
        shares = [users[i::n] for i in range(n)]
        counts = [o.idle_conns * (i + 1) // n - o.idle_conns * i // n for i in range(n)]
        self.say(
            f"idle connections: registering {len(users)} users, then {o.idle_conns:,} "
            f"connections ({', '.join(map(str, counts))} per load process), each "
            f"HELLO + AUTH"
        )
        t0 = time.monotonic()
        prep = self.loaders.call(
            "idle_prepare", [{"users": sh} for sh in shares], timeout=60 + len(users)
        )
        self._check(prep, "idle connections (prepare)")
        pid = self.server.pid
        time.sleep(0.5)
        before = server_rss_kib(pid)
        meter = self.cpu()
        t1 = time.monotonic()
        timeout = 60 + o.idle_conns / 200
        opened = self.loaders.call(
            "idle_open",
            [{"count": c, "concurrency": o.idle_concurrency, "timeout": timeout} for c in counts],
            timeout=timeout + 30,
        )
        open_s = time.monotonic() - t1
        cpu = meter.stop()
        self._check(opened, "idle connections (open)")
        total = sum(r["opened"] for r in opened)
        time.sleep(0.5)  # let the AUTH commits (last_seen) and anything transient settle
        after = server_rss_kib(pid)
        closed = self.loaders.call("idle_close", {"timeout": 10.0}, timeout=40)
        time.sleep(0.5)
        after_close = server_rss_kib(pid)
        self._check(closed, "idle connections (close)")
        per = (
            (after - before) / total if total and before is not None and after is not None else None
        )
        res = {
            "connections": total,
            "users": len(users),
            "rss_kib_before": before,
            "rss_kib_after": after,
            "rss_kib_after_close": after_close,
            "kib_per_conn": per,
            "open_s": round(open_s, 2),
            "opened_per_s": round(total / open_s, 1) if open_s > 0 else None,
            "prepare_s": round(t1 - t0, 2),
            "per_loader": counts,
            "cpu_cores": cpu,
        }
        self.say(
            f"idle connections: {total:,} authenticated in {open_s:.1f} s; server RSS "
            f"{before} -> {after} KiB ({per:.2f} KiB per connection), {after_close} KiB "
            f"after closing them"
            if per is not None
            else f"idle connections: {total:,} opened; RSS not readable"
        )
        return res

    def group_setup(self) -> dict[str, Any]:
        """GROUP_CREATE by member 0 with every other member, then the online members log in
        and go live."""
        o = self.o
        assert self.loaders is not None
        owner = group_member_name(0)
        owner_loader = next(i for i, c in enumerate(self.group_online_counts) if c)
        t0 = time.monotonic()
        members = [group_member_name(j) for j in range(1, o.group_members)]
        created = self.loaders.call(
            "group_create",
            {"owner": owner, "members": members, "name": "bench group", "timeout": 60.0},
            timeout=90,
            only=[owner_loader],
        )[0]
        live = self.loaders.call(
            "group_live", {"group": created["group"]}, timeout=120 + o.group_online * 0.2
        )
        self._check(live, "group setup")
        online = sum(r["online"] for r in live)
        snd = sum(r["senders"] for r in live)
        if online != o.group_online or snd != o.group_senders:
            raise BenchError(
                f"group setup: {online} online and {snd} senders, expected "
                f"{o.group_online} and {o.group_senders}"
            )
        res = {
            "group": created["group"],
            "members": created["members"],
            "online": online,
            "senders": snd,
            "create_s": created["create_s"],
            "seconds": round(time.monotonic() - t0, 2),
        }
        self.say(
            f"group {res['group']}: {res['members']} members, {online} online "
            f"({', '.join(map(str, self.group_online_counts))} per load process), "
            f"{snd} senders; set up in {res['seconds']:.1f} s"
        )
        return res

    def close(self) -> int | None:
        """Stop everything; returns the server's exit code (None if it had to be killed)."""
        code = None
        try:
            if self.loaders is not None:
                self.loaders.close()
                self.loaders = None
        finally:
            try:
                if self.server is not None:
                    code = self.server.stop(timeout=30.0)
            finally:
                for d in (self.relay, self.server):
                    if d is not None:
                        with contextlib.suppress(Exception):
                            d.stop(timeout=10.0)
                        d.kill()
                if self.tmp is not None and not self.o.keep:
                    shutil.rmtree(self.tmp, ignore_errors=True)
                elif self.tmp is not None:
                    log(f"kept {self.tmp}")
        return code

    @staticmethod
    def _check(results: list[dict[str, Any]], phase: str) -> None:
        bad = [
            r
            for r in results
            if r.get("errors") or r.get("closes") or r.get("lost") or r.get("unexpected")
        ]
        if bad:
            notes = [n for r in bad for n in r.get("notes", [])][:10]
            raise BenchError(
                f"{phase}: the load saw errors, closes or lost connections:\n  "
                + "\n  ".join(notes)
            )

    # ------------------------------------------------------------------ phases

    def throughput(self, target: str, *, during: Any = None) -> dict[str, Any]:
        o = self.o
        assert self.loaders is not None
        t_start = time.monotonic() + 0.5
        t_w0 = t_start + o.warmup
        t_w1 = t_w0 + o.duration
        args = {
            "target": target,
            "t_start": t_start,
            "t_w0": t_w0,
            "t_w1": t_w1,
            "window": o.window,
            "drain_timeout": 30.0,
        }
        for pipe in self.loaders.pipes:  # send now, collect after the window
            pipe.send(("throughput", args))
        if during is not None:
            during(t_w0, o.duration)
        spid = self.server.pid if target == "server" and self.server else None
        time.sleep(max(0.0, t_w0 - time.monotonic()))
        meter = self.cpu()
        threads = cpu_split.ThreadMeter(spid)
        io0 = proc_io(spid) if spid else {}
        time.sleep(max(0.0, t_w1 - time.monotonic()))
        io1 = proc_io(spid) if spid else {}
        split = threads.stop()
        cpu = meter.stop()
        res = self.loaders.collect("throughput", timeout=60)
        self._check(res, f"throughput ({target})")
        if not all(r["drained"] for r in res):
            raise BenchError(f"throughput ({target}): in-flight messages did not all arrive: {res}")
        rate = sum(min(r["acked"], r["delivered"]) / r["window_s"] for r in res)
        acked = sum(r["acked"] for r in res)
        delivered = sum(r["delivered"] for r in res)
        window = max(r["window_s"] for r in res)
        return {
            "msgs_per_s": rate,
            "acked": acked,
            "delivered": delivered,
            "window_s": window,
            "acked_per_s": sum(r["acked"] / r["window_s"] for r in res),
            "delivered_per_s": sum(r["delivered"] / r["window_s"] for r in res),
            "sent_total": sum(r["sent_total"] for r in res),
            "cpu_cores": cpu,
            "server_cpu": cpu_split.per_message(split, acked),
            **({"server_io": io_rates(io0, io1, window, acked)} if spid else {}),
        }

    def latency(self, total_rate: float) -> dict[str, Any]:
        o = self.o
        assert self.loaders is not None
        t_start = time.monotonic() + 0.5
        t_warm = t_start + o.latency_warmup
        t_end = t_warm + o.duration
        args = [
            {
                "rate": total_rate * n / o.pairs,
                "t_start": t_start,
                "t_warm": t_warm,
                "t_end": t_end,
                "drain_timeout": 30.0,
            }
            for n in self.pair_counts
        ]
        for i, a in enumerate(args):  # send now, collect after the window
            self.loaders.pipes[i].send(("latency", a))
        time.sleep(max(0.0, t_warm - time.monotonic()))
        meter = self.cpu()
        threads = cpu_split.ThreadMeter(self.server.pid if self.server else None)
        time.sleep(max(0.0, t_end - time.monotonic()))
        split = threads.stop()
        cpu = meter.stop()
        res = self.loaders.collect("latency", timeout=60)
        self._check(res, "latency")
        if not all(r["drained"] for r in res):
            raise BenchError("latency: not every probe was acknowledged and delivered")
        samples = [x for r in res for x in r["samples"]]
        if not samples:
            raise BenchError("latency: no samples")
        issued = sum(r["issued"] for r in res)
        overlapped = sum(r["overlapped"] for r in res)
        return {
            "target_rate": total_rate,
            "achieved_rate": issued / (o.latency_warmup + o.duration),
            "samples": len(samples),
            "overlapped": overlapped,  # probes sent while their pair still had one in flight
            "p50_ms": report.percentile(samples, 50),
            "p90_ms": report.percentile(samples, 90),
            "p99_ms": report.percentile(samples, 99),
            "max_ms": max(samples),
            "mean_ms": sum(samples) / len(samples),
            "cpu_cores": cpu,
            # the probes sent in the window are the messages its CPU time paid for
            "server_cpu": cpu_split.per_message(split, len(samples)),
        }

    def offline_fill(self, run: int) -> dict[str, Any]:
        o = self.o
        assert self.loaders is not None
        n = o.offline_messages
        fill: dict[str, Any] = self.loaders.call(
            "offline_fill",
            {
                "user": offline_user_name(run),
                "n": n,
                "window": o.offline_window,
                "timeout": 60 + n / 500,
            },
            timeout=90 + n / 500,
            only=[0],
        )[0]
        return fill

    def offline_drain(self, run: int) -> dict[str, Any]:
        o = self.o
        assert self.loaders is not None
        n = o.offline_messages
        meter = self.cpu()
        drain: dict[str, Any] = self.loaders.call(
            "offline_drain",
            {
                "user": offline_user_name(run),
                "expect": n,
                "limit": o.sync_page,
                "timeout": 60 + n / 2000,
            },
            timeout=90 + n / 2000,
            only=[0],
        )[0]
        drain["cpu_cores"] = meter.stop()
        if not drain["verified"] or drain["head_at_login"] != n:
            self.failures.append(
                f"offline sync run {run}: expected seqs 1..{n}, got "
                f"{drain['messages']} ({drain['first_seq']}..{drain['last_seq']}"
                f", {drain['gaps']} gaps, head {drain['head_at_login']})"
            )
        return drain

    def wait_quiet(self) -> float:
        """Wait (at most quiet_wait seconds) until other processes leave the CPUs alone."""
        o = self.o
        t0 = time.monotonic()
        while time.monotonic() - t0 < o.quiet_wait:
            meter = self.cpu()
            time.sleep(0.5)
            if meter.stop().get("other", 0.0) < o.busy_threshold:
                break
        return round(time.monotonic() - t0, 1)

    def measured(self, name: str, phase: Any) -> dict[str, Any]:
        """Run a phase; if other processes were busy during it, repeat it while the retry
        budget (shared by the whole invocation) lasts. The last attempt is kept."""
        o = self.o
        attempt = 0
        while True:
            attempt += 1
            waited = self.wait_quiet()
            res: dict[str, Any] = phase()
            other = (res.get("cpu_cores") or {}).get("other", 0.0)
            res.update(attempt=attempt, quiet_wait_s=waited, disturbed=other >= o.busy_threshold)
            if not res["disturbed"] or self.retries_used >= o.retries:
                return res
            self.retries_used += 1
            self.say(
                f"  {name}: other processes used {other} cores meanwhile; repeating "
                f"({o.retries - self.retries_used} repeat(s) left)"
            )

    def one_run(self, run: int) -> dict[str, Any]:
        o = self.o
        self.say(
            f"run {run + 1}/{o.runs}: throughput (server), {o.pairs} pairs x {o.window} "
            f"in flight, {o.warmup:g} s warm-up + {o.duration:g} s window"
        )
        tp = self.measured("throughput", lambda: self.throughput("server"))
        self.say(
            f"  throughput {tp['msgs_per_s']:,.0f} msgs/s (acked {tp['acked_per_s']:,.0f}/s,"
            f" delivered {tp['delivered_per_s']:,.0f}/s)"
        )
        rate = o.latency_rate or o.latency_fraction * tp["msgs_per_s"]
        self.say(f"  latency at {rate:,.0f} msgs/s for {o.latency_warmup:g} + {o.duration:g} s")
        lat = self.measured("latency", lambda: self.latency(rate))
        self.say(
            f"  latency p50 {lat['p50_ms']:.2f} ms, p99 {lat['p99_ms']:.2f} ms "
            f"({lat['samples']} samples)"
        )
        c5 = None
        if o.cpu_rate:
            self.say(f"  CPU per message at a paced {o.cpu_rate:,.0f} msgs/s")
            c5 = self.measured("cpu at 5k", lambda: self.latency(o.cpu_rate))
            self.say(
                f"  {c5['server_cpu'].get('cpu_us_per_msg', float('nan')):.1f} us/msg at "
                f"{o.cpu_rate:,.0f}/s, {tp['server_cpu'].get('cpu_us_per_msg', float('nan')):.1f}"
                f" us/msg saturated (p50 {c5['p50_ms']:.2f} ms, p99 {c5['p99_ms']:.2f} ms)"
            )
        self.say(f"  offline sync: queueing {o.offline_messages:,} messages")
        fill = self.offline_fill(run)
        d = self.measured("offline sync", lambda: self.offline_drain(run))
        self.say(
            f"  offline sync {d['msgs_per_s']:,.0f} msgs/s ({d['messages']:,} in "
            f"{d['drain_s']:.2f} s, {d['pages']} pages, verified={d['verified']}; "
            f"queued at {fill['fill_msgs_per_s']:,.0f} msgs/s)"
        )
        raw = self.measured("raw relay", lambda: self.throughput("relay"))
        self.say(f"  raw relay {raw['msgs_per_s']:,.0f} msgs/s")
        phases = (tp, lat, d, raw) + ((c5,) if c5 is not None else ())
        others = [x["cpu_cores"].get("other") for x in phases if x.get("cpu_cores")]
        cpu_keys: dict[str, Any] = {
            "cpu_us_per_msg_saturated": tp["server_cpu"].get("cpu_us_per_msg"),
        }
        cpu_disturbed = {"cpu_us_per_msg_saturated": tp["disturbed"]}
        if c5 is not None:
            cpu_keys["cpu_us_per_msg_at_5k"] = c5["server_cpu"].get("cpu_us_per_msg")
            cpu_disturbed["cpu_us_per_msg_at_5k"] = c5["disturbed"]
        return {
            "other_cpu_cores": max(others) if others else None,
            "disturbed_phases": sum(1 for x in phases if x.get("disturbed")),
            "disturbed": {
                "throughput_msgs_per_s": tp["disturbed"],
                "latency_ms_p50": lat["disturbed"],
                "latency_ms_p99": lat["disturbed"],
                "offline_sync_msgs_per_s": d["disturbed"],
                "raw_relay_msgs_per_s": raw["disturbed"],
                "ratio_to_raw_relay": tp["disturbed"] or raw["disturbed"],
                **cpu_disturbed,
            },
            **cpu_keys,
            "throughput_msgs_per_s": tp["msgs_per_s"],
            "latency_ms_p50": lat["p50_ms"],
            "latency_ms_p99": lat["p99_ms"],
            "offline_sync_msgs_per_s": d["msgs_per_s"],
            "raw_relay_msgs_per_s": raw["msgs_per_s"],
            "ratio_to_raw_relay": tp["msgs_per_s"] / raw["msgs_per_s"],
            "details": {
                "throughput": tp,
                "latency": lat,
                "offline": {"fill": fill, "drain": d},
                "relay": raw,
                **({"cpu_at_5k": c5} if c5 is not None else {}),
            },
        }

    # ------------------------------------------------------------------ media (media.py)

    def media_run(self, run: dict[str, Any]) -> dict[str, Any]:
        """The media figures, and chat latency (the first run's rate) under media load."""
        o = self.o
        assert self.server is not None
        port = self.server.port
        self.say(
            f"media: {o.media_mib} MiB up and down, then latency while "
            f"{o.media_uploaders} clients upload 5 MiB blobs"
        )
        self.wait_quiet()
        meter = self.cpu()
        t = asyncio.run(
            media_bench.transfers(HOST, port, size_mib=o.media_mib, runs=1 if o.quick else 3)
        )
        other = meter.stop().get("other", 0.0)
        busy = other >= o.busy_threshold
        self.say(
            f"  upload {t['media_upload_mib_per_s']} MiB/s, download "
            f"{t['media_download_mib_per_s']} MiB/s, dedup {t['media_dedup_upload_ms']} "
            f"ms (ceiling {t['details']['ceiling_sha256_write_fsync_mib_per_s']} MiB/s)"
        )
        rate = run["details"]["latency"]["target_rate"]
        load = media_bench.MediaLoad(HOST, port, clients=o.media_uploaders, size_mib=5)
        load.start()
        try:
            lat = self.measured("latency under media", lambda: self.latency(rate))
        finally:
            background = load.stop()
        if background.get("died") or not background.get("uploads"):
            raise BenchError(f"the media load was not running during the phase: {background}")
        without = run["latency_ms_p99"]
        self.say(
            f"  latency under media p99 {lat['p99_ms']:.2f} ms (without: {without:.2f} ms, "
            f"x{lat['p99_ms'] / without:.2f}); {o.media_uploaders} uploaders moved "
            f"{background.get('mib_per_s')} MiB/s"
        )
        return {
            "media_upload_mib_per_s": t["media_upload_mib_per_s"],
            "media_download_mib_per_s": t["media_download_mib_per_s"],
            "media_dedup_upload_ms": t["media_dedup_upload_ms"],
            "chat_p99_ms_under_media": lat["p99_ms"],
            "media_details": {
                **t["details"],
                "latency_under_media": lat,
                "latency_ms_p99_without_media": without,
                "chat_p99_ratio_under_media": round(lat["p99_ms"] / without, 2)
                if without
                else None,
                "media_load": background,
                "other_cpu_cores_during_transfers": other,
            },
            "disturbed": {
                **run.get("disturbed", {}),
                "media_upload_mib_per_s": busy,
                "media_download_mib_per_s": busy,
                "media_dedup_upload_ms": busy,
                "chat_p99_ms_under_media": lat["disturbed"],
            },
        }

    # ------------------------------------------------------------------ group phases

    def _group_collect(self, cmd: str, res: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """After a group phase: every local SEND was acknowledged; now wait until every
        online member in every process has received every message (but its own)."""
        assert self.loaders is not None
        self._check(res, cmd)
        if not all(r["acked_all"] for r in res):
            raise BenchError(f"{cmd}: group SENDs not all acknowledged within 30 s: {res}")
        total = sum(r["sent_total"] for r in res)
        expect = [
            total * on - r["sent_total"]
            for on, r in zip(self.group_online_counts, res, strict=True)
        ]
        got = self.loaders.call(
            "group_wait", [{"expect": e, "timeout": 30.0} for e in expect], timeout=60
        )
        self._check(got, cmd)
        bad = [
            (i, g["pushed_total"], e)
            for i, (g, e) in enumerate(zip(got, expect, strict=True))
            if g["pushed_total"] != e
        ]
        if bad:
            raise BenchError(f"{cmd}: group pushes (process, received, expected): {bad}")
        return got

    def group_throughput(self, *, during: Any = None) -> dict[str, Any]:
        o = self.o
        assert self.loaders is not None and self.group is not None
        t_start = time.monotonic() + 0.5
        t_w0 = t_start + o.warmup
        t_w1 = t_w0 + o.duration
        args = {
            "t_start": t_start,
            "t_w0": t_w0,
            "t_w1": t_w1,
            "window": o.group_window,
            "drain_timeout": 30.0,
        }
        for pipe in self.loaders.pipes:
            pipe.send(("group_throughput", args))
        if during is not None:
            during(t_w0, o.duration)
        assert self.server is not None
        spid = self.server.pid
        time.sleep(max(0.0, t_w0 - time.monotonic()))
        meter = self.cpu()
        io0 = proc_io(spid)
        time.sleep(max(0.0, t_w1 - time.monotonic()))
        io1 = proc_io(spid)
        cpu = meter.stop()
        res = self.loaders.collect("group_throughput", timeout=60)
        self._group_collect("group throughput", res)
        members = self.group["members"]
        msgs = sum(r["acked"] / r["window_s"] for r in res)
        pushes = sum(r["pushed"] / r["window_s"] for r in res)
        return {
            "messages_per_s": msgs,
            "deliveries_per_s": msgs * (members - 1),
            "push_deliveries_per_s": pushes,
            "push_per_message": pushes / msgs if msgs else None,
            "acked": sum(r["acked"] for r in res),
            "pushed": sum(r["pushed"] for r in res),
            "window_s": max(r["window_s"] for r in res),
            "sent_total": sum(r["sent_total"] for r in res),
            "members": members,
            "online": self.group["online"],
            "senders": self.group["senders"],
            "in_flight": o.group_window * o.group_senders,
            "cpu_cores": cpu,
            "server_io": io_rates(
                io0, io1, max(r["window_s"] for r in res), sum(r["acked"] for r in res)
            ),
        }

    def group_latency(self, total_rate: float) -> dict[str, Any]:
        o = self.o
        assert self.loaders is not None
        t_start = time.monotonic() + 0.5
        t_warm = t_start + o.latency_warmup
        t_end = t_warm + o.duration
        cut_ns = int(t_warm * 1e9)  # time.monotonic() and time.monotonic_ns(): one clock
        args = [
            {
                "rate": total_rate * k / o.group_senders,
                "t_start": t_start,
                "t_end": t_end,
                "cut_ns": cut_ns,
                "drain_timeout": 30.0,
            }
            for k in self.group_sender_counts
        ]
        for pipe, a in zip(self.loaders.pipes, args, strict=True):
            pipe.send(("group_latency", a))
        time.sleep(max(0.0, t_warm - time.monotonic()))
        meter = self.cpu()
        time.sleep(max(0.0, t_end - time.monotonic()))
        cpu = meter.stop()
        res = self.loaders.collect("group_latency", timeout=60)
        got = self._group_collect("group latency", res)
        samples = [x for g in got for x in g["samples"]]
        if not samples:
            raise BenchError("group latency: no samples")
        issued = sum(r["issued"] for r in res)
        return {
            "target_rate": total_rate,
            "achieved_rate": issued / (o.latency_warmup + o.duration),
            "issued": issued,
            "samples": len(samples),  # (probe, online receiver) pairs after the warm-up
            "overlapped": sum(r["overlapped"] for r in res),
            "p50_ms": report.percentile(samples, 50),
            "p90_ms": report.percentile(samples, 90),
            "p99_ms": report.percentile(samples, 99),
            "max_ms": max(samples),
            "mean_ms": sum(samples) / len(samples),
            "cpu_cores": cpu,
        }

    def group_run(self, run: int) -> dict[str, Any]:
        o = self.o
        g = self.group
        assert g is not None
        self.say(
            f"run {run + 1}/{o.runs}: group fan-out, {g['members']} members, "
            f"{g['online']} online, {g['senders']} senders x {o.group_window} in flight, "
            f"{o.warmup:g} s warm-up + {o.duration:g} s window"
        )
        tp = self.measured("group throughput", self.group_throughput)
        self.say(
            f"  group {tp['messages_per_s']:,.0f} msgs/s = {tp['deliveries_per_s']:,.0f} "
            f"log deliveries/s, {tp['push_deliveries_per_s']:,.0f} pushes/s"
        )
        rate = o.latency_fraction * tp["messages_per_s"]
        self.say(
            f"  group latency at {rate:,.0f} msgs/s for {o.latency_warmup:g} + {o.duration:g} s"
        )
        lat = self.measured("group latency", lambda: self.group_latency(rate))
        self.say(
            f"  group latency p50 {lat['p50_ms']:.2f} ms, p99 {lat['p99_ms']:.2f} ms "
            f"({lat['samples']} samples)"
        )
        phases = (tp, lat)
        others = [x["cpu_cores"].get("other") for x in phases if x.get("cpu_cores")]
        return {
            "other_cpu_cores": max(others) if others else None,
            "disturbed_phases": sum(1 for x in phases if x.get("disturbed")),
            "disturbed": {
                "group_messages_per_s": tp["disturbed"],
                "group_deliveries_per_s": tp["disturbed"],
                "group_push_deliveries_per_s": tp["disturbed"],
                "group_latency_ms_p50": lat["disturbed"],
                "group_latency_ms_p99": lat["disturbed"],
            },
            "group_messages_per_s": tp["messages_per_s"],
            "group_deliveries_per_s": tp["deliveries_per_s"],
            "group_push_deliveries_per_s": tp["push_deliveries_per_s"],
            "group_latency_ms_p50": lat["p50_ms"],
            "group_latency_ms_p99": lat["p99_ms"],
            "details": {"group_throughput": tp, "group_latency": lat},
        }

    def profile(self, outdir: str) -> dict[str, Any]:
        """Extra, unmeasured phases with py-spy recording the server: the 1:1 throughput
        phase and, when there is a group, the group fan-out phase."""
        res = self._profile_phase(
            outdir,
            "throughput",
            "server-throughput",
            lambda during: self.throughput("server", during=during),
            "msgs_per_s",
        )
        if self.group is not None:
            g = self._profile_phase(
                outdir,
                "group fan-out",
                "server-group",
                lambda during: self.group_throughput(during=during),
                "messages_per_s",
            )
            res["group"] = {
                "raw": g["raw"],
                "summary_file": g["summary_file"],
                "group_messages_per_s": g["throughput_msgs_per_s"],
                "summary": g["summary"],
            }
        return res

    def _profile_phase(
        self, outdir: str, what: str, stem: str, phase: Any, key: str
    ) -> dict[str, Any]:
        from . import profile as prof

        assert self.server is not None
        exe = shutil.which("py-spy")
        if exe is None:
            raise BenchError("--profile needs py-spy on PATH")
        out = Path(outdir)
        out.mkdir(parents=True, exist_ok=True)
        raw = out / f"{stem}.txt"
        summary_file = out / (
            "summary.txt"
            if stem == "server-throughput"
            else f"summary-{stem.removeprefix('server-')}.txt"
        )
        spy: list[subprocess.Popen[bytes]] = []
        pid = self.server.pid

        def start_spy(t_w0: float, dur: float) -> None:
            time.sleep(max(0.0, t_w0 - time.monotonic() - 0.3))
            with open(out / f"py-spy-{stem}.log", "wb") as err:
                spy.append(
                    subprocess.Popen(
                        [
                            exe,
                            "record",
                            "-p",
                            str(pid),
                            "-d",
                            str(round(dur)),
                            "-r",
                            "100",
                            "--threads",
                            "--idle",
                            "--native",
                            "-f",
                            "raw",
                            "-o",
                            str(raw),
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=err,
                        stdin=subprocess.DEVNULL,
                    )
                )

        self.say(f"profile: {what} phase with py-spy on server pid {pid} -> {raw}")
        try:
            tp = phase(start_spy)
        finally:
            for p in spy:
                try:
                    p.wait(self.o.duration + 30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
        if not raw.exists():
            raise BenchError(f"py-spy wrote no profile; see {out / f'py-spy-{stem}.log'}")
        summary = prof.summarize(raw.read_text())
        summary_file.write_text(prof.format_summary(summary))
        self.say(f"profile: {what} under py-spy {tp[key]:,.0f} msgs/s; summary in {summary_file}")
        return {
            "raw": str(raw),
            "summary_file": str(summary_file),
            "throughput_msgs_per_s": tp[key],
            "summary": summary,
        }


def pg_run(opts: Options) -> dict[str, Any]:
    """PostgreSQL's and SQLite's throughput on one workload, each on a server of its own
    (pg.py); nothing when no PostgreSQL answers (said on stderr)."""
    from . import pg as pg_bench

    args = pg_bench.parse(["--quick"] if opts.quick else ["--duration", str(opts.duration)])
    if opts.verbose:
        log("pg: SQLite and PostgreSQL, same workload, one server each")
    result = asyncio.run(pg_bench.run(args))
    if result["problems"]:
        log(f"pg: skipped ({'; '.join(result['problems'])})")
    return {k: v for k, v in result.items() if k.endswith("_msgs_per_s")}


def _thread_medians(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Median over runs of the server's CPU us per message, by thread kind (bench/cpu.py)."""
    out: dict[str, dict[str, float]] = {}
    for key, phase in (("saturated", "throughput"), ("at_5k", "cpu_at_5k")):
        per = [
            r["details"][phase]["server_cpu"]["by_thread_us_per_msg"]
            for r in runs
            if r["details"].get(phase, {}).get("server_cpu")
        ]
        if per:
            out[key] = {k: round(statistics.median(p[k] for p in per), 1) for k in per[0]}
    return out


def run(opts: Options) -> tuple[dict[str, Any], int]:
    """Run the whole benchmark; returns (JSON document, exit status)."""
    started = datetime.now(UTC)
    machine = report.machine_info()
    quiet = CpuMeter({})
    time.sleep(1.0)
    machine["busy_cores_before_start"] = quiet.stop().get("other")
    bench = Bench(opts)
    runs: list[dict[str, Any]] = []
    setup: dict[str, Any] = {}
    prof: dict[str, Any] | None = None
    server_code: int | None = None
    error: str | None = None

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    old = signal.signal(signal.SIGTERM, on_term)
    try:
        setup = bench.start()
        for r in range(opts.runs):
            runs.append(bench.one_run(r))
        # the group phases come after every run of the others: their update-log rows (one per
        # member per message) grow the database, and the 1:1 figures stay comparable with
        # those of a harness without them
        for r in range(opts.runs) if bench.group is not None else ():
            g = bench.group_run(r)
            run = runs[r]
            run["details"].update(g.pop("details"))
            others = [
                x for x in (run.get("other_cpu_cores"), g.pop("other_cpu_cores")) if x is not None
            ]
            run["other_cpu_cores"] = max(others) if others else None
            run["disturbed_phases"] = run.get("disturbed_phases", 0) + g.pop("disturbed_phases")
            run.setdefault("disturbed", {}).update(g.pop("disturbed"))
            run.update(g)
        if opts.media and runs:
            runs[0].update(bench.media_run(runs[0]))
        if opts.pg and runs:
            runs[0].update(pg_run(opts))
        if opts.profile:
            prof = bench.profile(opts.profile)
    except BenchError as exc:
        error = str(exc)
        log(f"FAILED: {error}")
        if bench.server is not None:
            log("server log tail:\n" + bench.server.log_tail(20))
    finally:
        try:
            server_code = bench.close()
        finally:
            signal.signal(signal.SIGTERM, old)
    if bench.idle is not None and runs:
        # measured once, before the runs (see Bench.idle_connections): part of run 1
        runs[0]["rss_kib_per_idle_conn"] = bench.idle["kib_per_conn"]
        runs[0]["details"]["idle_connections"] = bench.idle
        # a memory figure: other processes' CPU use does not change it
        runs[0].setdefault("disturbed", {})["rss_kib_per_idle_conn"] = False
    if runs and not error and opts.faults:
        log("faults: crash soak (SIGKILL under load), then a slow consumer")
        crash = faults.crash_counts(opts.quick, bench.env)
        log(
            f"  crash: acked {crash['crash_acked']}, lost {crash['crash_lost']}, "
            f"duplicated {crash['crash_duplicated']} over {crash['faults']} kills"
        )
        if crash["exit_code"] != 0 or crash["crash_lost"] or crash["crash_duplicated"]:
            bench.failures.append(f"crash soak failed: {crash}")
        slow = faults.slow_consumer(opts.quick, bench.env)
        log(
            f"  slow consumer: others' p99 {slow['p99_ms_without']} ms without, "
            f"{slow['p99_ms_with']} ms with (evicted: {slow['slow_consumer_evicted']})"
        )
        runs[0].update({k: crash[k] for k in ("crash_acked", "crash_lost", "crash_duplicated")})
        runs[0]["slow_consumer_p99_ms_without"] = slow["p99_ms_without"]
        runs[0]["slow_consumer_p99_ms_with"] = slow["p99_ms_with"]
        runs[0]["details"]["crash"] = crash
        runs[0]["details"]["slow_consumer"] = slow
        runs[0].setdefault("disturbed", {}).update(
            dict.fromkeys(("crash_acked", "crash_lost", "crash_duplicated"), False)
        )
    if runs and not error and opts.nearby:
        log("nearby: 1,000,000 positions (quick: 100,000), 5 km queries, updates, an order race")
        try:
            near = nearby_bench.figures(opts.quick)
        except RuntimeError as exc:
            bench.failures.append(f"nearby: {exc}")
        else:
            log(
                f"  query p50 {near['nearby_query_ms_p50']} ms, p99 {near['nearby_query_ms_p99']} "
                f"ms; {near['nearby_updates_per_s']} updates/s (walking; every one a new cell: "
                f"{near['nearby_jumps_per_s']}/s); {near['orders_per_s']} orders/s "
                f"({near['orders_succeeded']} of 200 buyers got the 100 units)"
            )
            runs[0].update({k: v for k, v in near.items() if k != "details"})
            runs[0]["details"]["nearby"] = near["details"]
    if runs and not error and opts.channels:
        channel_figures(runs[0], opts.quick, bench.failures)
    if runs and not error and opts.wallet:
        wallet_figures(runs[0], opts.quick, bench.failures)
    if runs and not error and opts.bots:
        bot_figures(runs[0], opts.quick, bench.failures)
    if server_code != 0:
        bench.failures.append(f"server exit code {server_code} (expected 0 after SIGTERM)")
    if error:
        bench.failures.append(error)

    summary = report.summarize(runs)
    doc: dict[str, Any] = {
        "benchmark": "liaotian",
        "date": started.isoformat(timespec="seconds"),
        "elapsed_s": round((datetime.now(UTC) - started).total_seconds(), 1),
        "quick": opts.quick,
    }
    for key, _, _ in report.METRICS:
        doc[key] = summary[key]["median"]
    doc.update(
        {
            "runs": len(runs),
            "summary": summary,
            "per_run": runs,
            "machine": machine,
            "config": {k: v for k, v in asdict(opts).items() if k not in ("verbose",)},
            "server": {"synchronous": "full", "env": bench.env, "exit_code": server_code},
            "setup": setup,
            "idle_connections": bench.idle,
            "ok": not bench.failures,
            "failures": bench.failures,
        }
    )
    doc["cpu_us_per_msg_by_thread"] = _thread_medians(runs)
    others = [r["other_cpu_cores"] for r in runs if r.get("other_cpu_cores") is not None]
    doc["max_other_cpu_cores"] = max(others) if others else None
    doc["disturbed_phases"] = sum(r.get("disturbed_phases", 0) for r in runs)
    doc["retries_used"] = bench.retries_used
    if prof is not None:
        doc["profile"] = prof
    return doc, (0 if not bench.failures else 1)
