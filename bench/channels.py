"""The channels' benchmark: posts at 1,000 and 100,000 members, news to online members,
catching up, and server memory per member.

    python -m bench.channels --quick                 # 20,000 members, 1,000 online, seconds
    python -m bench.channels --json /tmp/ch.json     # 100,000 members, 10,000 online

Its own `liaotian-server` process on a temporary database (cheap password hashing, write
budgets lifted). The owner registers and creates two channels; with the server stopped,
the members are loaded in bulk through the store (SQLiteStore.seed_channel_members: users,
a device token for those who go online, member rows), and the server is started again:

* `channel_posts_per_s_1k`, `channel_posts_per_s_100k`: durable posts (counted when
  CHANNEL_POSTED arrives, sent after the commit) by the owner, `window` unanswered, in the
  1,000-member and the big channel, four rounds each, alternating (the median). A post is
  one row whatever the member count: the two must be alike;
* `channel_post_notice_ms_p99`, `channel_notices_per_s`: `online` members of the big
  channel connected (AUTH with their tokens) over `loaders` processes; the owner posts
  `notice_posts` posts 0.3 s apart; each member's CHANNEL_NEWS arrival minus the time the
  owner got CHANNEL_POSTED (the commit), p99 over every member and post (the server
  sends the first news after a quiet 50 ms at once, and coalesces what follows for up to
  50 ms); notices per second: notices received over the time from each commit to its
  last notice; the server's CPU per notice over the posting (`news_*_cpu_us_per_notice`);
* `channel_catch_up_posts_per_s`: a member fetches `catch_up` new posts (CHANNEL_FETCH,
  200 a page) after the owner posted them;
* `channel_rss_bytes_per_member`: the server's RSS growth from its start on the seeded
  database to the end of the posting phase (no member online yet), over the big channel's
  member count: an upper bound (the posts and the caches grow it too); the members
  themselves are never loaded (fan-out on read).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import itertools
import json
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
from typing import Any

from liaotian.protocol import MessageType
from liaotian.server.store import SQLiteStore

from . import cpu as cpu_split
from .wire import RawConn

T = MessageType
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # bench.channels's root
PYPATH = os.environ.get("PYTHONPATH", "")
PASSWORD = "bench password 1"
NEWS = int(T.CHANNEL_NEWS)
ENV = {
    "LIAOTIAN_ARGON2_TIME_COST": "1",
    "LIAOTIAN_ARGON2_MEMORY_KIB": "8192",
    "LIAOTIAN_ARGON2_PARALLELISM": "1",
    "LIAOTIAN_WRITE_RATE": "1000000",
    "LIAOTIAN_WRITE_BURST": "1000000",
    "LIAOTIAN_WRITE_ROWS_RATE": "100000000",
    "LIAOTIAN_WRITE_ROWS_BURST": "100000000",
    "LIAOTIAN_MAX_CONNECTIONS_PER_ADDRESS": "0",
    "LIAOTIAN_MAX_CONNECTIONS": "19000",
    "LIAOTIAN_PRESENCE_INTERVAL": "3600",
    "LIAOTIAN_MAX_INFLIGHT_REQUESTS": "1024",
    "LIAOTIAN_LOG_LEVEL": "warning",
}


def raise_nofile() -> None:
    """Up to the hard limit: the server and the loaders inherit it."""
    with contextlib.suppress(Exception):
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = hard if hard != resource.RLIM_INFINITY else 65536
        if soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def token(i: int) -> str:
    return f"bench-channel-token-{i:07d}"


def member(i: int) -> str:
    return f"cm{i:07d}"


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Conn(RawConn):
    """One raw connection: requests answered by rid; CHANNEL_NEWS recorded with arrival
    time; other pushes dropped."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.news: list[tuple[int, float]] = []  # (pos, time.time())
        super().__init__(reader, writer)

    @classmethod
    async def open(cls, port: int) -> Conn:
        c: Conn = await cls.connect(port, "bench-channels")
        return c

    def on_push(self, msg_type: int, payload: dict[str, Any]) -> None:
        if msg_type == NEWS:
            self.news.append((payload["pos"], time.time()))


async def authed(port: int, i: int) -> Conn:
    c = await Conn.open(port)
    await c.ask(T.AUTH, {"token": token(i)}, T.AUTHENTICATED)
    return c


# ---------------------------------------------------------------------------- the server


class Server:
    def __init__(self, db: str, python: str | None = None) -> None:
        self.db, self.port = db, free_port()
        self.python = python or sys.executable  # --server-python: another build's
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIAOTIAN_")}
        self.port = free_port()
        self.proc = await asyncio.create_subprocess_exec(
            self.python,
            "-m",
            "liaotian.server",
            "--port",
            str(self.port),
            "--db-path",
            self.db,
            env={**env, **ENV},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
        for _ in range(400):
            with contextlib.suppress(OSError):
                _r, w = await asyncio.open_connection("127.0.0.1", self.port)
                w.close()
                return
            await asyncio.sleep(0.05)
        raise RuntimeError("the server did not start")

    async def stop(self) -> int:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.terminate()
        return await self.proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------------- loaders


async def _loader(port: int, first: int, count: int) -> None:
    """A load process: `count` members online (tokens first..first+count-1); prints
    "ready", then on "done" from stdin prints their CHANNEL_NEWS arrivals as JSON."""
    conns: list[Conn] = []
    for i in range(first, first + count, 100):
        conns += await asyncio.gather(
            *[authed(port, j) for j in range(i, min(i + 100, first + count))]
        )
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)
    arrivals: dict[int, list[float]] = {}
    for c in conns:
        for pos, ts in c.news:
            arrivals.setdefault(pos, []).append(ts)
    print(json.dumps(arrivals), flush=True)
    for c in conns:
        await c.close()


async def start_loaders(port: int, online: int, loaders: int) -> list[asyncio.subprocess.Process]:
    procs = []
    per = -(-online // loaders)
    for k in range(loaders):
        first, count = k * per, min(per, online - k * per)
        if count <= 0:
            break
        procs.append(
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.channels",
                "--loader",
                f"{port}:{first}:{count}",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                limit=1 << 26,
                env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [REPO, PYPATH]))},
            )
        )
    for p in procs:
        assert p.stdout is not None
        line = await asyncio.wait_for(p.stdout.readline(), 300)
        if line.strip() != b"ready":
            raise RuntimeError(f"a loader failed to start: {line!r}")
    return procs


async def finish_loaders(procs: list[asyncio.subprocess.Process]) -> dict[int, list[float]]:
    arrivals: dict[int, list[float]] = {}
    for p in procs:
        assert p.stdin is not None and p.stdout is not None
        p.stdin.write(b"done\n")
        await p.stdin.drain()
        got = json.loads(await asyncio.wait_for(p.stdout.readline(), 120))
        for pos, times in got.items():
            arrivals.setdefault(int(pos), []).extend(times)
        await p.wait()
    return arrivals


# ---------------------------------------------------------------------------- phases


async def posts_per_s(owner: Conn, channel: int, window: int, duration: float) -> float:
    done = 0
    stop = time.perf_counter() + duration
    cmids = itertools.count()

    async def lane() -> None:
        nonlocal done
        while time.perf_counter() < stop:
            t, _ = await owner.send(
                T.CHANNEL_POST,
                {"channel": channel, "cmid": f"p{channel}-{next(cmids)}", "text": "bench post"},
            )
            if t == T.CHANNEL_POSTED:
                done += 1

    start = time.perf_counter()
    await asyncio.gather(*[lane() for _ in range(window)])
    return done / (time.perf_counter() - start)


async def post_many(owner: Conn, channel: int, n: int, window: int) -> None:
    cmids = iter(range(n))

    async def lane() -> None:
        for i in cmids:
            await owner.ask(
                T.CHANNEL_POST,
                {"channel": channel, "cmid": f"cu{channel}-{i}", "text": f"catch up {i}"},
                T.CHANNEL_POSTED,
            )

    await asyncio.gather(*[lane() for _ in range(window)])


def p99(values: list[float]) -> float:
    xs = sorted(values)
    return xs[min(len(xs) - 1, int(len(xs) * 0.99))] if xs else float("nan")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    raise_nofile()
    tmp = tempfile.mkdtemp(prefix="bench-channels-")
    db = os.path.join(tmp, "bench.db")
    server = Server(db, getattr(args, "server_python", None))
    # 1. the owner and the channels
    await server.start()
    c = await Conn.open(server.port)
    await c.ask(T.REGISTER, {"username": "chowner", "password": PASSWORD}, T.REGISTERED)
    await c.ask(T.LOGIN, {"username": "chowner", "password": PASSWORD, "device": "b"})
    small = (await c.ask(T.CHANNEL_CREATE, {"name": "small"}, T.CHANNEL_INFO))["channel"]
    big = (await c.ask(T.CHANNEL_CREATE, {"name": "big"}, T.CHANNEL_INFO))["channel"]
    await c.close()
    await server.stop()
    # 2. the members, in bulk, with the server stopped
    t0 = time.perf_counter()
    store = SQLiteStore(db, read_connections=1)
    await store.open()
    try:
        hashes = [hashlib.sha256(token(i).encode()).digest() for i in range(args.online)]
        users = [
            (member(i), hashes[i] if i < args.online else None) for i in range(args.members - 1)
        ]
        n_small = await store.seed_channel_members(small, users[: args.small - 1], "x")
        n_big = await store.seed_channel_members(big, users, "x")
    finally:
        await store.close()
    seed_s = time.perf_counter() - t0
    # 3. the server again, on the seeded database
    await server.start()
    assert server.proc is not None
    pid = server.proc.pid
    await asyncio.sleep(1.0)
    rss0 = rss_kib(pid)
    result: dict[str, Any] = {"members_small": n_small, "members_big": n_big, "seed_s": seed_s}
    try:
        owner = await Conn.open(server.port)
        await owner.ask(
            T.LOGIN, {"username": "chowner", "password": PASSWORD, "device": "b"}, T.AUTHENTICATED
        )
        # alternating, so that neither channel has the warmer database: medians of 4 each
        smalls, bigs = [], []
        for r in range(4):  # small-big, big-small, ...: neither always follows the other
            for ch in (small, big) if r % 2 == 0 else (big, small):
                rate = await posts_per_s(owner, ch, args.window, args.duration / 4)
                (smalls if ch == small else bigs).append(rate)
        rate_small, rate_big = statistics.median(smalls), statistics.median(bigs)
        rss_posts = rss_kib(pid)  # before anyone else connects: members are not loaded
        # news to the online members
        procs = await start_loaders(server.port, args.online, args.loaders)
        rss_online = rss_kib(pid)
        posted: dict[int, float] = {}
        meter = cpu_split.ThreadMeter(pid)  # the server's CPU for the news (bench/cpu.py)
        for i in range(args.notice_posts):
            await asyncio.sleep(0.3)
            got = await owner.ask(
                T.CHANNEL_POST,
                {"channel": big, "cmid": f"news-{i}", "text": "news"},
                T.CHANNEL_POSTED,
            )
            posted[got["pos"]] = time.time()
        await asyncio.sleep(1.0)
        news_cpu = meter.stop()
        arrivals = await finish_loaders(procs)
        lat: list[float] = []
        received = 0
        span = 0.0
        for pos, t_commit in posted.items():
            times = arrivals.get(pos, [])
            received += len(times)
            lat += [(t - t_commit) * 1000 for t in times]
            if times:
                span += max(times) - t_commit
        # catching up
        before = (await owner.ask(T.GET_CHANNEL, {"channel": big}, T.CHANNEL_INFO))["pos"]
        await post_many(owner, big, args.catch_up, args.window)
        reader = await authed(server.port, 0)
        t1 = time.perf_counter()
        after, fetched = before, 0
        while True:
            page = await reader.ask(
                T.CHANNEL_FETCH, {"channel": big, "after": after, "limit": 200}, T.CHANNEL_PAGE
            )
            fetched += len(page["posts"])
            if not page["posts"] or not page["more"]:
                break
            after = page["posts"][-1]["pos"]
        catch_up = fetched / (time.perf_counter() - t1)
        await reader.close()
        await owner.close()
        rss1 = rss_kib(pid)
    finally:
        code = await server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    result.update(
        {
            "channel_posts_per_s_1k": round(rate_small, 1),
            "channel_posts_per_s_100k": round(rate_big, 1),
            "channel_post_notice_ms_p99": round(p99(lat), 2),
            "channel_notices_per_s": round(received / span, 1) if span else None,
            "channel_catch_up_posts_per_s": round(catch_up, 1),
            "channel_rss_bytes_per_member": round((rss_posts - rss0) * 1024 / max(1, n_big), 1),
            "notice_ms_p50": round(sorted(lat)[len(lat) // 2], 2) if lat else None,
            "notice_ms_max": round(max(lat), 2) if lat else None,
            "notices_expected": len(posted) * args.online,
            "notices_received": received,
            # server CPU (the loop: tid == pid) per notice over the posting of the news,
            # which on a shared machine moves far less than the latency percentiles
            "news_server_cpu_us_per_notice": round(news_cpu["cpu_s"] * 1e6 / received, 2)
            if news_cpu and received
            else None,
            "news_system_cpu_us_per_notice": round(news_cpu["system_s"] * 1e6 / received, 2)
            if news_cpu and received
            else None,
            "news_loop_cpu_us_per_notice": round(news_cpu["threads"]["loop"] * 1e6 / received, 2)
            if news_cpu and received
            else None,
            "online": args.online,
            "loaders": args.loaders,
            "catch_up_posts": fetched,
            "posts_per_s_rounds": {"1k": smalls, "100k": bigs},
            "server_rss_kib": {
                "start": rss0,
                "after_posts": rss_posts,
                "online": rss_online,
                "end": rss1,
            },
            "server_exit_code": code,
        }
    )
    return result


def options(quick: bool) -> argparse.Namespace:
    """The defaults (`--quick`: 20,000 members, 1,000 online, 2,000 posts to catch up)."""
    return build_parser().parse_args(["--quick"] if quick else [])


def measure(quick: bool) -> dict[str, Any]:
    """For `python -m bench` (runner.py): run with the defaults."""
    args = options(quick)
    apply_quick(args)
    return asyncio.run(run(args))


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="20,000 members, 1,000 online")
    ap.add_argument("--members", type=int, default=100_000, help="of the big channel")
    ap.add_argument("--small", type=int, default=1_000, help="members of the small channel")
    ap.add_argument("--online", type=int, default=10_000, help="big-channel members online")
    ap.add_argument("--loaders", type=int, default=4, help="processes holding them")
    ap.add_argument("--notice-posts", type=int, default=10)
    ap.add_argument("--catch-up", type=int, default=10_000)
    ap.add_argument("--window", type=int, default=32, help="unanswered posts")
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--json", help="also write the result here")
    ap.add_argument(
        "--server-python", help="run the server with this interpreter (another build, A/B)"
    )
    ap.add_argument("--loader", help=argparse.SUPPRESS)
    return ap


def apply_quick(args: argparse.Namespace) -> None:
    if args.quick:
        args.members, args.online, args.loaders = 20_000, 1_000, 2
        args.catch_up, args.duration, args.notice_posts = 2_000, 2.0, 5


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.loader:
        port, first, count = (int(x) for x in args.loader.split(":"))
        asyncio.run(_loader(port, first, count))
        return 0
    apply_quick(args)
    result = asyncio.run(run(args))
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as fh:
            fh.write(text)
    ok = (
        result["server_exit_code"] == 0
        and result["notices_received"] == (result["notices_expected"])
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
