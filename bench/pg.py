"""PostgreSQL against SQLite, same workload, same run (issue 17).

    python -m bench.pg --quick                  # smoke run, seconds
    python -m bench.pg --json /tmp/pg.json      # 200 pairs, window 8, 10 s per figure

For each engine a real `liaotian-server` process (127.0.0.1, a free port, cheap password
hashing, write budgets lifted; SQLite in a temporary directory, PostgreSQL in a scratch
schema of the server named by --url, dropped afterwards), then raw connections from this
process (bench/wallet.py's): `pairs` users each SEND one-to-one to the next user, `window`
SENDs unanswered per sender; a SEND counts when its SENT arrives, which the server sends
only after the COMMIT that holds it. Keys:

* `sqlite_throughput_msgs_per_s`, `pg_throughput_msgs_per_s`: one server each;
* `pg_2_nodes_throughput_msgs_per_s`: two server processes on one PostgreSQL schema
  (`--nodes N`, default 2; 1 skips it), sender i on node i % N: every recipient is on
  the other node, so both nodes write rows for every user, the worst case for the
  store's cross-node check (store/postgres/writer.py).

The load generator is this one process: on a small shared machine it limits the figures
before either server does; compare the figures of one run with each other.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from typing import Any

from liaotian.protocol import MessageType

from .wallet import Conn, _register, free_port, login
from .wallet import start_server as _start

T = MessageType


async def start_server(port: int, flags: list[str]) -> asyncio.subprocess.Process:
    return await _start(port, flags, {"LIAOTIAN_ADMIN_SOCKET": "off"})


async def stop_server(proc: asyncio.subprocess.Process) -> int:
    if proc.returncode is None:
        proc.terminate()
    return await proc.wait()


async def chat(ports: list[int], pairs: int, window: int, duration: float, tag: str) -> float:
    """Register `pairs` users, log sender i in on node i % len(ports), let them SEND to
    user i+1 for `duration` seconds; SENTs per second."""
    users = [f"{tag}{i:05d}" for i in range(pairs)]
    batches = [users[i : i + 25] for i in range(0, len(users), 25)]
    for i in range(0, len(batches), 4):
        await asyncio.gather(*[_register(ports[0], b) for b in batches[i : i + 4]])
    conns: list[Conn] = []
    for i in range(0, len(users), 50):
        conns += await asyncio.gather(
            *[login(ports[j % len(ports)], u) for j, u in enumerate(users[i : i + 50], i)]
        )
    done = 0
    cmids = itertools.count()
    warm = time.perf_counter() + min(1.0, duration / 4)
    stop = warm + duration

    async def lane(c: Conn, to: str) -> None:
        nonlocal done
        while time.perf_counter() < stop:
            t, _ = await c.send(T.SEND, {"to": to, "cmid": f"{next(cmids):x}", "text": "x" * 40})
            if t == T.SENT and time.perf_counter() > warm:
                done += 1

    await asyncio.gather(
        *[lane(c, users[(i + 1) % pairs]) for i, c in enumerate(conns) for _ in range(window)]
    )
    for c in conns:
        await c.close()
    return done / duration


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from liaotian.server.store.postgres.scratch import scratch_schema, unreachable

    result: dict[str, Any] = {"pairs": args.pairs, "window": args.window}
    problems: list[str] = []
    tmp = tempfile.mkdtemp(prefix="bench-pg-")
    try:
        port = free_port()
        proc = await start_server(port, ["--db-path", os.path.join(tmp, "bench.db")])
        try:
            rate = await chat([port], args.pairs, args.window, args.duration, "s")
        finally:
            await stop_server(proc)
        result["sqlite_throughput_msgs_per_s"] = round(rate, 1)
        reason = unreachable(args.url)
        if reason is not None:
            problems.append(reason)
        else:
            async with AsyncExitStack() as stack:
                url = await stack.enter_async_context(scratch_schema(args.url, "bench"))
                media = ["--media-dir", os.path.join(tmp, "media")]
                port = free_port()
                proc = await start_server(port, ["--db-url", url, *media])
                try:
                    rate = await chat([port], args.pairs, args.window, args.duration, "p")
                finally:
                    await stop_server(proc)
                result["pg_throughput_msgs_per_s"] = round(rate, 1)
            if args.nodes > 1:
                async with AsyncExitStack() as stack:
                    url = await stack.enter_async_context(scratch_schema(args.url, "bench"))
                    procs, ports = [], []
                    try:
                        for n in range(args.nodes):
                            ports.append(free_port())
                            media = ["--media-dir", os.path.join(tmp, f"media{n}")]
                            procs.append(await start_server(ports[-1], ["--db-url", url, *media]))
                        rate = await chat(ports, args.pairs, args.window, args.duration, "n")
                    finally:
                        for p in procs:
                            await stop_server(p)
                    result[f"pg_{args.nodes}_nodes_throughput_msgs_per_s"] = round(rate, 1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result["problems"] = problems
    return result


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    from liaotian.server.store.postgres.scratch import TEST_URL

    ap = argparse.ArgumentParser(prog="python -m bench.pg", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="50 pairs, 2 s per figure")
    ap.add_argument("--pairs", type=int, default=200)
    ap.add_argument("--window", type=int, default=8, help="unanswered SENDs per sender")
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--nodes", type=int, default=2, help="nodes of the shared-database run")
    ap.add_argument("--url", default=TEST_URL, help="PostgreSQL server (a scratch schema)")
    ap.add_argument("--json", help="also write the result here")
    args = ap.parse_args(argv)
    if args.quick:
        args.pairs, args.duration = 50, 2.0
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
