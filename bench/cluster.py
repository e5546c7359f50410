"""Nodes on loopback: 1, 2 and 3 nodes over one PostgreSQL schema and NATS (issue 17).

    python -m bench.cluster --quick               # smoke run, seconds
    python -m bench.cluster --json /tmp/cl.json   # 100 pairs, window 4, 8 s per figure

For each node count a set of `liaotian-server` processes (bench/pg.py's start-up: cheap
password hashing, write budgets lifted) on one scratch schema, routing over NATS under a
subject prefix of the run's own. `pairs` x 2 users, each live (SYNCed) on one node; user
2k and 2k+1 send to each other, `window` SENDs unanswered per sender. Placement:

* `cross`: the two users of a pair on different nodes (every delivery crosses NATS and
  costs the recipient's node a log read); with one node, the same as `same`;
* `same`: both on the same node (pairs spread over the nodes): deliveries stay local;
* `same_no_nats` (`--baseline`): `same` on nodes without `cluster_nats`: what the shared
  database costs without any routing (correct here only because no user is on two nodes).

Per run: `msgs_per_s` (SENTs per second, each after its COMMIT), `delivery_p50_ms` and
`delivery_p99_ms` (SEND written to push read by the recipient: both ends are this
process, one clock), `sent_p99_ms`, and `cpu_us_per_msg` (user + system CPU of all
server processes, from /proc, per message), `pg_cpu_us_per_msg` and
`nats_cpu_us_per_msg` (the same for the machine's PostgreSQL and nats-server
processes): the per-message costs the scaling model in bench/README.md starts from.
The load generator is this one process, on the same cores: on a 2-core machine it limits
the figures before the servers do; compare within a run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from contextlib import AsyncExitStack
from typing import Any

from liaotian.protocol import MessageType

from .pg import start_server, stop_server
from .wallet import PASSWORD, Conn, _register, free_port
from .wire import HDR, decode

T = MessageType
NATS = os.environ.get("LIAOTIAN_TEST_NATS", "nats://127.0.0.1:4222")


class Live(Conn):
    """A raw connection that also reads its pushes: the latency of each message."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.delivered: list[float] = []
        self.record_after = 0.0
        super().__init__(reader, writer)

    async def _read(self) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                (n,) = HDR.unpack(await self.reader.readexactly(4))
                body = await self.reader.readexactly(n)
                msg_type, rid, payload = decode(body, 0, n)
                if rid == 0 and msg_type == T.UPDATES:
                    now = time.perf_counter()
                    if now > self.record_after:
                        for u in payload.get("updates", ()):
                            data = u[2]
                            text = data.get("text", "") if isinstance(data, dict) else ""
                            if text[:1] == "t":
                                self.delivered.append(now - float(text[1:]))
                    continue
                fut = self.waiting.pop(rid, None)
                if fut is not None and not fut.done():
                    fut.set_result((msg_type, payload))
        for fut in self.waiting.values():
            if not fut.done():
                fut.set_exception(ConnectionError("closed"))


async def live(port: int, user: str) -> Live:
    r, w = await asyncio.open_connection("127.0.0.1", port, limit=1 << 24)
    c = Live(r, w)
    await c.ask(T.HELLO, {"versions": [1], "client": "bench-cluster"})
    await c.ask(T.LOGIN, {"username": user, "password": PASSWORD, "device": "b"}, T.AUTHENTICATED)
    since = 0
    while True:
        page = await c.ask(T.SYNC, {"since": since}, T.UPDATES)
        ups = page.get("updates", [])
        if ups:
            since = ups[-1][0]
        if not page.get("more"):
            return c


def cpu_seconds(pids: list[int]) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def pids_named(*names: str) -> list[int]:
    """Processes of these command names (PostgreSQL's backends, nats-server): their CPU
    per message is the model's database and broker cost. The machine's, not only ours:
    other sessions' queries count too."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            with contextlib.suppress(OSError), open(f"/proc/{d}/comm") as fh:
                if fh.read().strip() in names:
                    out.append(int(d))
    return out


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return 0.0
    s = sorted(xs)
    return round(s[min(len(s) - 1, int(q * len(s)))] * 1000, 2)


async def load(
    ports: list[int], pids: list[int], args: argparse.Namespace, placement: str, tag: str
) -> dict[str, Any]:
    n = len(ports)
    users = [f"{tag}{i:05d}" for i in range(2 * args.pairs)]
    batches = [users[i : i + 25] for i in range(0, len(users), 25)]
    for i in range(0, len(batches), 4):
        await asyncio.gather(*[_register(ports[0], b) for b in batches[i : i + 4]])

    def node_of(i: int) -> int:
        k = i // 2
        return (k + (i % 2 if placement == "cross" else 0)) % n

    conns: list[Live] = []
    for i in range(0, len(users), 50):
        conns += await asyncio.gather(
            *[live(ports[node_of(j)], u) for j, u in enumerate(users[i : i + 50], i)]
        )
    done = 0
    sent_lat: list[float] = []
    cmids = itertools.count()
    warm = time.perf_counter() + min(1.0, args.duration / 4)
    stop = warm + args.duration
    for c in conns:
        c.record_after = warm

    async def lane(c: Live, to: str) -> None:
        nonlocal done
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            body = {"to": to, "cmid": f"{next(cmids):x}", "text": f"t{t0!r}"}
            t, _ = await c.send(T.SEND, body)
            if t == T.SENT and t0 > warm:
                done += 1
                sent_lat.append(time.perf_counter() - t0)

    pg, broker = pids_named("postgres"), pids_named("nats-server")
    cpu0, pg0, broker0 = cpu_seconds(pids), cpu_seconds(pg), cpu_seconds(broker)
    await asyncio.gather(
        *[lane(c, users[i ^ 1]) for i, c in enumerate(conns) for _ in range(args.window)]
    )
    cpu = cpu_seconds(pids) - cpu0
    pg_cpu, broker_cpu = cpu_seconds(pg) - pg0, cpu_seconds(broker) - broker0
    await asyncio.sleep(0.5)  # the last deliveries
    delivered = [x for c in conns for x in c.delivered]
    for c in conns:
        await c.close()
    return {
        "msgs_per_s": round(done / args.duration, 1),
        "delivery_p50_ms": pct(delivered, 0.5),
        "delivery_p99_ms": pct(delivered, 0.99),
        "sent_p99_ms": pct(sent_lat, 0.99),
        "delivered": len(delivered),
        "cpu_us_per_msg": round(cpu / max(1, done) * 1e6, 1),
        "pg_cpu_us_per_msg": round(pg_cpu / max(1, done) * 1e6, 1),
        "nats_cpu_us_per_msg": round(broker_cpu / max(1, done) * 1e6, 1),
    }


async def run_nodes(
    n: int, placement: str, args: argparse.Namespace, tmp: str, nats: bool = True
) -> dict[str, Any]:
    from liaotian.server.store.postgres.scratch import scratch_schema

    async with AsyncExitStack() as stack:
        url = await stack.enter_async_context(scratch_schema(args.url, "bench"))
        prefix = f"bench-{uuid.uuid4().hex[:8]}"
        procs, ports = [], []
        try:
            for i in range(n):
                ports.append(free_port())
                flags = [
                    "--db-url", url,
                    "--media-dir", os.path.join(tmp, f"m{n}{placement}{nats}{i}"),
                    "--stats-interval", "0",
                ]  # fmt: skip
                if nats:
                    flags += ["--cluster-nats", NATS, "--cluster-prefix", prefix]
                    flags += ["--cluster-node", f"n{i}"]
                procs.append(await start_server(ports[-1], flags))
            return await load(ports, [p.pid for p in procs], args, placement, f"{placement[0]}")
        finally:
            for p in procs:
                await stop_server(p)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from liaotian.server.store.postgres.scratch import unreachable

    result: dict[str, Any] = {"pairs": args.pairs, "window": args.window, "runs": {}}
    reason = unreachable(args.url)
    if reason is not None:
        result["problems"] = [reason]
        return result
    tmp = tempfile.mkdtemp(prefix="bench-cluster-")
    try:
        for n in args.nodes:
            for placement in ("same", "cross") if n > 1 else ("same",):
                key = f"{n}_nodes_{placement}"
                result["runs"][key] = r = await run_nodes(n, placement, args, tmp)
                print(key, r, file=sys.stderr)
            if args.baseline and n > 1:  # the same nodes, no routing: the store's share
                key = f"{n}_nodes_same_no_nats"
                result["runs"][key] = r = await run_nodes(n, "same", args, tmp, nats=False)
                print(key, r, file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result["problems"] = []
    return result


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    from liaotian.server.store.postgres.scratch import TEST_URL

    ap = argparse.ArgumentParser(
        prog="python -m bench.cluster", description=(__doc__ or "").splitlines()[0]
    )
    ap.add_argument("--quick", action="store_true", help="20 pairs, 2 s per figure")
    ap.add_argument("--pairs", type=int, default=100)
    ap.add_argument("--window", type=int, default=4, help="unanswered SENDs per sender")
    ap.add_argument("--duration", type=float, default=8.0)
    ap.add_argument("--nodes", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument(
        "--baseline",
        action="store_true",
        help="also the same-node placement without NATS (the shared database's cost alone)",
    )
    ap.add_argument("--url", default=TEST_URL, help="PostgreSQL server (a scratch schema)")
    ap.add_argument("--json", help="also write the result here")
    args = ap.parse_args(argv)
    if args.quick:
        args.pairs, args.duration = 20, 2.0
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    result = asyncio.run(run(args))
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as fh:
            fh.write(text)
    return 0 if not result["problems"] else 1


if __name__ == "__main__":
    sys.exit(main())
