"""People nearby and the shop, on the SQLite store: the index, durable updates, racing orders.

    python -m bench.nearby --quick                  # 100,000 positions, seconds
    python -m bench.nearby --json /tmp/nearby.json  # 1,000,000 positions

Measured on a SQLiteStore in this process (synchronous=FULL, a temporary database), through
the same store methods and rules the handlers use; no network:

* `nearby_query_ms_p50/p99`: `positions` shares generated uniformly over a country-sized
  area (1,000 km x 1,000 km around 35N 105E, with their users' rows, written in bulk),
  then `queries` queries from random points with a 5 km radius: search_cells, the store's
  nearby_people (the covering index by index cell, the privacy and block filter) and the
  rules' find (distance buckets, order, page); each query's time from the first to the last;
* `nearby_updates_per_s`: `updates` position updates as the handler makes them (read the
  user's share, rules.share, put it if it changed, awaited until its group commit is
  durable), `concurrency` at once, from `walkers` random sharers walking (1.4 m/s, one
  update per 30 s: the default move limit's rate) with a one-hour share each refreshed
  last at a random moment of the rules' expiry slack: the steady state of people sharing;
  `written_share` is the part of them that wrote anything;
* `nearby_jumps_per_s`: the worst case, every update a new cell (random points of the
  area, so the share's row and both ends of its move in the index are random pages),
  `updates` of them from random sharers, `concurrency` at once, put straight (nearby_put)
  and awaited until durable;
* in `details`, CPU time (the process's, all threads) per query (p50/p99) and per update:
  the machine is often shared, and CPU time is what its load inflates least;
* `orders_per_s`: `buyers` buyers each submit one PlaceOrder for a product with `units`
  units at once; the rate is orders answered per second from the first submit to the last
  answer; `orders_succeeded` must be exactly `units` (checked, and the stock 0), every run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import sqlite3
import sys
import tempfile
import time
from array import array
from typing import Any

from liaotian.server.chat import ops
from liaotian.server.chat.model import Social
from liaotian.server.chat.rules import nearby as rules
from liaotian.server.store import SQLiteStore

from .report import percentile

CENTRE = (35.0, 105.0)
HALF_KM = 500.0  # the area is 2 x HALF_KM across
NOW = int(time.time() * 1000)
TTL_S = 3_600
REFRESH_PHASE_MS = TTL_S * 1000 // 20  # shares were refreshed last within this (rules' slack)
WALK_M = 42.0  # metres between a walker's updates: 30 s at 1.4 m/s
WALK_EVERY_MS = 30_000


def _point(rng: random.Random) -> tuple[int, int]:
    lat = CENTRE[0] + rng.uniform(-HALF_KM, HALF_KM) / 111.32
    lon = CENTRE[1] + rng.uniform(-HALF_KM, HALF_KM) / (111.32 * math.cos(math.radians(lat)))
    return round(lat * 1e6), round(lon * 1e6)


def _fill(path: str, positions: int, seed: int) -> tuple[array[int], array[int]]:
    """Users and their shares, in bulk on a connection of our own (before the store opens);
    the points they were shared from (index: user id - 1)."""
    rng = random.Random(seed)
    lats, lons = array("i"), array("i")
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    with db:
        db.executemany(
            "INSERT INTO users (id, username, password_hash, created) VALUES (?, ?, 'x', 0)",
            ((i, f"n{i}") for i in range(1, positions + 1)),
        )
        rows = []
        for uid in range(1, positions + 1):
            lat, lon = _point(rng)
            lats.append(lat)
            lons.append(lon)
            spot = rules.snap(lat, lon)
            refreshed = NOW - rng.randrange(REFRESH_PHASE_MS)
            rows.append((uid, spot.cell, spot.index, refreshed + TTL_S * 1000, NOW - 3_600_000))
        db.executemany("INSERT INTO nearby_shares VALUES (?, ?, ?, ?, ?)", rows)
    db.close()
    return lats, lons


async def _queries(store: SQLiteStore, n: int, seed: int) -> tuple[list[float], list[float], float]:
    """Each query's wall time and CPU time (ms; the process's, all threads: the reader's
    SQLite work included), and the people found per query."""
    rng = random.Random(seed + 1)
    me = Social()
    times, cpu, found = [], [], 0
    for _ in range(n):
        lat, lon = _point(rng)
        t0, c0 = time.perf_counter(), time.process_time()
        cells = rules.search_cells(lat, lon, 5000)
        cands = await store.nearby_people(0, cells, NOW)
        page, _next = rules.find(cands, me, 0, lat, lon, 5000, limit=50)
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
        found += len(page)
    return times, cpu, found / max(n, 1)


async def _jumps(store: SQLiteStore, n: int, concurrency: int, users: int, seed: int) -> float:
    rng = random.Random(seed + 2)
    shares = []
    for _ in range(n):
        spot = rules.snap(*_point(rng))
        uid = rng.randrange(1, users + 1)
        shares.append(rules.Share(uid, spot.cell, spot.index, NOW + 3_600_000, NOW))
    t0 = time.perf_counter()
    for i in range(0, n, concurrency):
        await asyncio.gather(*(store.nearby_put(s) for s in shares[i : i + concurrency]))
    return n / (time.perf_counter() - t0)


async def _walks(
    store: SQLiteStore,
    points: tuple[array[int], array[int]],
    n: int,
    concurrency: int,
    walkers: int,
    seed: int,
) -> tuple[float, float]:
    """Walkers' updates through the handler's steps; (updates per second, part written)."""
    rng = random.Random(seed + 3)
    lats, lons = points
    users = rng.sample(range(1, len(lats) + 1), min(walkers, len(lats)))
    headings = [rng.uniform(0, 2 * math.pi) for _ in users]
    written = 0

    async def update(i: int, now: int) -> None:
        nonlocal written
        uid, h = users[i], headings[i]
        lat = lats[uid - 1] + round(WALK_M * math.cos(h) / 111_320.0 * 1e6)
        cos = math.cos(math.radians(lat / 1e6))
        lon = lons[uid - 1] + round(WALK_M * math.sin(h) / (111_320.0 * cos) * 1e6)
        lats[uid - 1], lons[uid - 1] = lat, lon
        prev = await store.nearby_share_of(uid)
        s = rules.share(prev, uid, lat, lon, TTL_S, now)
        if s is not prev:
            await store.nearby_put(s)
            written += 1

    done, walk = 0, 0
    t0 = time.perf_counter()
    while done < n:
        walk += 1
        now = NOW + walk * WALK_EVERY_MS
        for i in range(0, len(users), concurrency):
            part = range(i, min(i + concurrency, len(users), i + n - done))
            await asyncio.gather(*(update(j, now) for j in part))
            done += len(part)
            if done >= n:
                break
    return n / (time.perf_counter() - t0), written / max(n, 1)


class _Answers:
    def __init__(self) -> None:
        self.done: list[Any] = []
        self.event = asyncio.Event()

    def __call__(self, committed: list[Any]) -> None:
        self.done.extend(committed)
        self.event.set()

    async def wait(self, n: int) -> None:
        while len(self.done) < n:
            self.event.clear()
            await self.event.wait()


async def _orders(store: SQLiteStore, buyers: int, units: int, base: int) -> dict[str, Any]:
    """`buyers` users racing for `units` units; users base+1.. exist already."""
    answers = _Answers()
    store.on_committed = answers
    merchant = base + 1
    ids = list(range(base + 2, base + 2 + buyers))
    setup: list[Any] = [ops.Mint(actor=0, to=f"n{uid}", amount=1000) for uid in ids]
    setup.append(ops.AddProduct(actor=merchant, title="Mi 5", price=10, stock=units, merchant=True))
    for op in setup:
        store.submit(op)
    await answers.wait(len(setup))
    pid = int(answers.done[-1].result["product"]["id"])
    answers.done.clear()
    t0 = time.perf_counter()
    for i, uid in enumerate(ids):
        store.submit(ops.PlaceOrder(actor=uid, product=pid, key=f"race-{i}"))
    await answers.wait(buyers)
    elapsed = time.perf_counter() - t0
    won = sum(1 for op in answers.done if op.error is None)
    stock = (await store.product_by_id(pid)).stock  # type: ignore[union-attr]
    return {"orders_per_s": round(buyers / elapsed, 1), "orders_succeeded": won, "stock": stock}


async def measure(
    *,
    positions: int,
    queries: int,
    updates: int,
    concurrency: int,
    buyers: int,
    units: int,
    walkers: int = 20_000,
    seed: int = 14,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="liaotian-nearby-") as tmp:
        path = os.path.join(tmp, "nearby.db")
        store = SQLiteStore(path)
        await store.open()  # creates the schema
        await store.close()
        t0 = time.perf_counter()
        points = _fill(path, positions + buyers + 1, seed)
        fill_s = time.perf_counter() - t0
        store = SQLiteStore(path)
        await store.open()
        try:
            await _queries(store, 50, seed + 9)  # warm the page cache a little
            times, cpu, per_query = await _queries(store, queries, seed)
            c0 = time.process_time()
            rate, written = await _walks(store, points, updates, concurrency, walkers, seed)
            c1 = time.process_time()
            jumps = await _jumps(store, updates, concurrency, positions, seed)
            c2 = time.process_time()
            race = await _orders(store, buyers, units, positions)
        finally:
            await store.close()
    if race["orders_succeeded"] != units or race["stock"] != 0:
        raise RuntimeError(f"the race for {units} units went wrong: {race}")
    return {
        "nearby_query_ms_p50": round(percentile(times, 50), 3),
        "nearby_query_ms_p99": round(percentile(times, 99), 3),
        "nearby_updates_per_s": round(rate, 1),
        "nearby_jumps_per_s": round(jumps, 1),
        "orders_per_s": race["orders_per_s"],
        "orders_succeeded": race["orders_succeeded"],
        "details": {
            "positions": positions,
            "area_km": 2 * HALF_KM,
            "queries": queries,
            "found_per_query": round(per_query, 1),
            # CPU time (all threads): what the shared machine's load does not inflate
            "query_cpu_ms_p50": round(percentile(cpu, 50), 3),
            "query_cpu_ms_p99": round(percentile(cpu, 99), 3),
            "update_cpu_us": round((c1 - c0) / max(updates, 1) * 1e6, 1),
            "jump_cpu_us": round((c2 - c1) / max(updates, 1) * 1e6, 1),
            "fill_s": round(fill_s, 1),
            "updates": updates,
            "concurrency": concurrency,
            "walkers": walkers,
            "written_share": round(written, 3),
            "buyers": buyers,
            "units": units,
        },
    }


def figures(quick: bool) -> dict[str, Any]:
    """For bench/runner.py: the figures at the quick or the full scale."""
    return asyncio.run(
        measure(
            positions=100_000 if quick else 1_000_000,
            queries=300 if quick else 2_000,
            updates=5_000 if quick else 40_000,
            concurrency=500 if quick else 2_000,
            walkers=5_000 if quick else 20_000,
            buyers=200,
            units=100,
        )
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100,000 positions, 300 queries")
    ap.add_argument("--json", help="also write the result here")
    args = ap.parse_args(argv)
    result = figures(args.quick)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
