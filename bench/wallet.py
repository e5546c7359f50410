"""The wallet's benchmark: durable transfers, red-packet claims racing, and the invariants.

    python -m bench.wallet --quick                  # smoke run, seconds
    python -m bench.wallet --json /tmp/wallet.json  # 1,000 users, a group of 500

A real `liaotian-server` process (127.0.0.1, a free port, a temporary database, cheap
password hashing, write budgets lifted, a check-in task paying every user its coins) and
raw connections (bench/wire.py framing; answers matched by rid, pushes read and dropped):

* `wallet_transfers_per_s`: PAYs of 1 coin between `users` users in pairs (i pays i+1),
  `window` unanswered per pair, each with its own idempotency key; counted when PAID
  arrives, which the server sends only after the commit (so each one is durable);
* `red_packet_claims_per_s`, `red_packet_claim_ms_p99`: `members` members of one group
  all send RED_PACKET_CLAIM at once for a packet of `shares` shares, `packets` times; the
  rate is shares paid per second from the first claim sent to the last answer, the p99 over
  every claim's answer (paid or PACKET_EMPTY); every packet's payouts must sum to its amount
  (GET_RED_PACKET);
* `wallet_invariant_violations`: chat/audit.py over the ledger read back from the database
  after the server stopped (SIGTERM): must be 0.

The load generator is this one process: on a small shared machine it limits the figures
before the server does (see bench/README.md, "Wallet").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import socket
import sys
import tempfile
import time
from typing import Any

from liaotian.protocol import MessageType
from liaotian.server.chat.audit import audit
from liaotian.server.config import parse_tasks
from liaotian.server.store import SQLiteStore

from .wire import RawConn

T = MessageType
PASSWORD = "bench password 1"
TASKS = '[{"name": "checkin", "trigger": "checkin", "reward": 1000000}]'
ENV = {
    "LIAOTIAN_ARGON2_TIME_COST": "1",
    "LIAOTIAN_ARGON2_MEMORY_KIB": "8192",
    "LIAOTIAN_ARGON2_PARALLELISM": "1",
    "LIAOTIAN_REGISTER_RATE": "100000",
    "LIAOTIAN_REGISTER_BURST": "100000",
    "LIAOTIAN_WRITE_RATE": "1000000",
    "LIAOTIAN_WRITE_BURST": "1000000",
    "LIAOTIAN_WRITE_ROWS_RATE": "100000000",
    "LIAOTIAN_WRITE_ROWS_BURST": "100000000",
    "LIAOTIAN_SEND_RATE": "1000000",
    "LIAOTIAN_SEND_BURST": "1000000",
    "LIAOTIAN_WALLET_TASKS": TASKS,
    "LIAOTIAN_MAX_CONNECTIONS_PER_ADDRESS": "0",
    "LIAOTIAN_PRESENCE_INTERVAL": "3600",
    "LIAOTIAN_MAX_INFLIGHT_REQUESTS": "1024",
    "LIAOTIAN_LOG_LEVEL": "warning",
    "LIAOTIAN_ARGON2_MAX_CONCURRENT": "4",
    "LIAOTIAN_REGISTER_MAX_CONCURRENT": "4",
    "LIAOTIAN_LOGIN_FAILURES_PER_ADDRESS": "1000000",
}


class Conn(RawConn):
    """One raw connection: requests answered by rid; pushes dropped."""

    @classmethod
    async def open(cls, port: int) -> Conn:
        c: Conn = await cls.connect(port, "bench-wallet")
        return c


async def login(port: int, user: str) -> Conn:
    c = await Conn.open(port)
    await c.ask(T.LOGIN, {"username": user, "password": PASSWORD, "device": "b"}, T.AUTHENTICATED)
    return c


async def _register(port: int, names: list[str]) -> None:
    """One connection registers up to 25 (a connection sends at most 32 frames before it
    is authenticated), one at a time."""
    reg = await Conn.open(port)
    for u in names:
        await reg.ask(T.REGISTER, {"username": u, "password": PASSWORD}, T.REGISTERED)
    await reg.close()


async def setup(port: int, users: list[str]) -> list[Conn]:
    batches = [users[i : i + 25] for i in range(0, len(users), 25)]
    for i in range(0, len(batches), 4):
        await asyncio.gather(*[_register(port, b) for b in batches[i : i + 4]])
    conns = []
    for i in range(0, len(users), 50):
        conns += await asyncio.gather(*[login(port, u) for u in users[i : i + 50]])
    await asyncio.gather(
        *[c.ask(T.SET_PRIVACY, {"coins": "everyone", "groups": "everyone"}, T.OK) for c in conns]
    )
    await asyncio.gather(*[c.ask(T.CHECK_IN, {"key": "seed"}, T.CHECKED_IN) for c in conns])
    return conns


async def transfers(conns: list[Conn], users: list[str], window: int, duration: float) -> float:
    done = 0
    stop = time.perf_counter() + duration
    keys = itertools.count()

    async def pair(i: int) -> None:
        nonlocal done
        c, to = conns[i], users[(i + 1) % len(users)]

        async def lane() -> None:
            nonlocal done
            while time.perf_counter() < stop:
                t, _ = await c.send(T.PAY, {"to": to, "amount": 1, "key": f"k{next(keys)}"})
                if t == T.PAID:
                    done += 1

        await asyncio.gather(*[lane() for _ in range(window)])

    start = time.perf_counter()
    await asyncio.gather(*[pair(i) for i in range(len(conns))])
    return done / (time.perf_counter() - start)


async def _claim(c: Conn, pid: int) -> tuple[int, float]:
    t0 = time.perf_counter()
    t, _ = await c.send(T.RED_PACKET_CLAIM, {"packet": pid})
    return t, time.perf_counter() - t0


async def packets(
    conns: list[Conn], members: int, shares: int, rounds: int
) -> tuple[float, float, list[str]]:
    owner, group_conns = conns[0], conns[:members]
    info = await owner.ask(
        T.GROUP_CREATE,
        {"name": "bench", "members": [f"bw{i:05d}" for i in range(1, members)]},
        T.GROUP_INFO,
    )
    group = info["group"]
    latencies: list[float] = []
    paid = 0
    busy = 0.0
    problems: list[str] = []
    for r in range(rounds):
        amount = shares * 10
        sent = await owner.ask(
            T.RED_PACKET_SEND,
            {"group": group, "amount": amount, "count": shares, "key": f"rp{r}"},
            T.RED_PACKET_SENT,
        )
        pid = sent["packet"]

        t0 = time.perf_counter()
        results = await asyncio.gather(*[_claim(c, pid) for c in group_conns])
        busy += time.perf_counter() - t0
        latencies += [lat for _t, lat in results]
        paid += sum(1 for t, _ in results if t == T.RED_PACKET_CLAIMED)
        p = await owner.ask(T.GET_RED_PACKET, {"packet": pid}, T.RED_PACKET)
        total = sum(c["amount"] for c in p["claims"])
        if total != amount or p["state"] != "emptied":
            problems.append(f"packet {pid}: paid {total} of {amount}, {p['state']}")
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    return paid / busy, p99, problems


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def start_server(
    port: int, flags: list[str], extra_env: dict[str, str] | None = None
) -> asyncio.subprocess.Process:
    """A `liaotian-server` process on 127.0.0.1:`port` with ENV (and `extra_env`), once it
    accepts connections; RuntimeError if it exits first or takes over 20 s."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIAOTIAN_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "liaotian.server",
        "--port",
        str(port),
        *flags,
        env={**env, **ENV, **(extra_env or {})},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )
    for _ in range(400):
        with contextlib.suppress(OSError):
            _r, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            return proc
        if proc.returncode is not None:
            break
        await asyncio.sleep(0.05)
    if proc.returncode is None:
        proc.terminate()
        await proc.wait()
    raise RuntimeError(f"liaotian-server {' '.join(flags)} did not start")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = tempfile.mkdtemp(prefix="bench-wallet-")
    db, port = os.path.join(tmp, "bench.db"), free_port()
    proc = await start_server(port, ["--db-path", db])
    try:
        users = [f"bw{i:05d}" for i in range(max(args.users, args.members))]
        conns = await setup(port, users)
        rate = await transfers(conns[: args.users], users[: args.users], args.window, args.duration)
        claims, p99, problems = await packets(conns, args.members, args.shares, args.packets)
        for c in conns:
            await c.close()
    finally:
        if proc.returncode is None:
            proc.terminate()
        code = await proc.wait()
    store = SQLiteStore(db, read_connections=1)
    await store.open()
    try:
        violations = audit(await store.ledger_dump(), parse_tasks(TASKS))
    finally:
        await store.close()
    return {
        "wallet_transfers_per_s": round(rate, 1),
        "red_packet_claims_per_s": round(claims, 1),
        "red_packet_claim_ms_p99": round(p99, 2),
        "wallet_invariant_violations": len(violations),
        "server_exit_code": code,
        "problems": problems + violations[:20],
        "users": args.users,
        "window": args.window,
        "members": args.members,
        "shares": args.shares,
        "packets": args.packets,
    }


def measure(quick: bool) -> dict[str, Any]:
    """For `python -m bench` (runner.py): run with the defaults (or --quick's)."""
    args = build_parser().parse_args(["--quick"] if quick else [])
    apply_quick(args)
    return asyncio.run(run(args))


def apply_quick(args: argparse.Namespace) -> None:
    if args.quick:
        args.users, args.members, args.duration, args.packets = 200, 100, 2.0, 2


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="200 users, a group of 100, 2 s")
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--window", type=int, default=8, help="unanswered PAYs per pair")
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--members", type=int, default=500)
    ap.add_argument("--shares", type=int, default=100)
    ap.add_argument("--packets", type=int, default=5)
    ap.add_argument("--json", help="also write the result here")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    apply_quick(args)
    result = asyncio.run(run(args))
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as fh:
            fh.write(text)
    ok = (
        result["wallet_invariant_violations"] == 0
        and not result["problems"]
        and result["server_exit_code"] == 0
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
