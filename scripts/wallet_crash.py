#!/usr/bin/env python3
"""Wallet crash test: SIGKILL the server again and again while users pay each other, send
red packets into a group and claim them; then prove the ledger is exact.

    python scripts/wallet_crash.py --duration 60 --kills 10 --users 8

A real `python -m liaotian.server` (127.0.0.1, a free port, its own database; the process
code is scripts/crash_soak.py's) serves N users of the client library (`client.wallet`,
which repeats a request with its idempotency key until it is answered, over reconnects).
Every user pays random others random amounts, sends red packets into one group of all of
them and claims the packets it knows of, each request with a key of its own, while the
server is SIGKILLed `--kills` times and started again on the same port and database. When
the load stops, with the server up:

* every request whose answer arrived is made again with its key: it must be answered
  again, marked as a duplicate, with the same transfer (and a claim with the same share);
* the server stops with SIGTERM (exit 0) and the ledger is read from the database alone:
  the invariant report (server/chat/audit.py) must be empty (double entry, no balance
  ever negative, one transfer per key, packets paying exactly their shares, escrow
  settled), and every answered payment must be there, with its amount.

A JSON summary goes to stdout (and --json FILE): `wallet_ops`, `wallet_answered`,
`wallet_retried`, `wallet_lost`, `wallet_mismatched`, `wallet_invariant_violations`, and
the problems found. Exit code 1 if anything is lost, mismatched or violated, 2 for a setup
error. `tests/faults/test_fault_wallet_crash.py` runs it with small parameters.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import liaotian.client as lt
from liaotian.protocol import ConnectionClosed, ErrorCode, RequestError
from liaotian.server.chat.audit import audit
from liaotian.server.config import parse_tasks
from liaotian.server.store import SQLiteStore

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from crash_soak import HOST, SERVER_ENV, ServerProcess, free_port

PASSWORD = "wallet crash 1"
TASKS = '[{"name": "checkin", "trigger": "checkin", "reward": 100000}]'
ENV = {
    **SERVER_ENV,
    "LIAOTIAN_WALLET_TASKS": TASKS,
    "LIAOTIAN_REGISTER_RATE": "1000",
    "LIAOTIAN_REGISTER_BURST": "1000",
    "LIAOTIAN_WRITE_RATE": "100000",
    "LIAOTIAN_WRITE_BURST": "100000",
}


@dataclass
class Attempt:
    user: str
    kind: str  # pay, packet, claim
    key: str
    args: dict[str, Any]
    answer: Any = None  # the answer, once it arrived


@dataclass
class Run:
    users: list[str]
    rnd: random.Random
    attempts: list[Attempt] = field(default_factory=list)
    packets: list[int] = field(default_factory=list)
    group: int = 0
    problems: list[str] = field(default_factory=list)


async def one(c: lt.Client, a: Attempt) -> Any:
    w = c.wallet
    if a.kind == "pay":
        return await w.pay(a.args["to"], a.args["amount"], key=a.key)
    if a.kind == "packet":
        return await w.red_packet(
            a.args["amount"], a.args["count"], group=a.args["group"], key=a.key
        )
    return await w.claim(a.args["packet"])


async def worker(c: lt.Client, user: str, run: Run, deadline: float) -> None:
    rnd = random.Random(run.rnd.random())
    i = 0
    while time.monotonic() < deadline:
        i += 1
        r = rnd.random()
        if r < 0.5:
            a = Attempt(
                user,
                "pay",
                f"{user}-p{i}",
                {
                    "to": rnd.choice([u for u in run.users if u != user]),
                    "amount": rnd.randint(1, 500),
                },
            )
        elif r < 0.65 or not run.packets:
            a = Attempt(
                user,
                "packet",
                f"{user}-r{i}",
                {
                    "group": run.group,
                    "amount": rnd.randint(10, 300),
                    "count": rnd.randint(1, len(run.users)),
                },
            )
        else:
            a = Attempt(user, "claim", f"{user}-c{i}", {"packet": rnd.choice(run.packets)})
        run.attempts.append(a)
        try:
            a.answer = await one(c, a)
        except RequestError as exc:
            if exc.code not in (
                ErrorCode.INSUFFICIENT_FUNDS,
                ErrorCode.PACKET_EMPTY,
                ErrorCode.PACKET_EXPIRED,
            ):
                run.problems.append(f"{a.kind} {a.key}: {exc.code.name} {exc.message}")
        except (ConnectionClosed, TimeoutError):
            pass  # the answer was lost; checked after the load
        if a.kind == "packet" and a.answer is not None:
            run.packets.append(a.answer.packet)


async def killer(
    server: ServerProcess, kills: int, duration: float, rnd: random.Random
) -> list[int | None]:
    codes = []
    for k in range(kills):
        await asyncio.sleep(duration / (kills + 1) * (0.5 + rnd.random()))
        codes.append(await server.kill())
        if k < kills:
            await server.start()
    return codes


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    workdir = args.workdir or tempfile.mkdtemp(prefix="wallet-crash-")
    os.makedirs(workdir, exist_ok=True)
    db = os.path.join(workdir, "wallet.db")
    port = free_port()
    server = ServerProcess(db, port, env=ENV)
    rnd = random.Random(args.seed)
    run = Run([f"user{i}" for i in range(args.users)], rnd)
    await server.start()
    clients: dict[str, lt.Client] = {}
    try:
        for u in run.users:
            await lt.register(HOST, port, u, PASSWORD)
        for u in run.users:
            c = lt.Client(
                HOST,
                port,
                username=u,
                password=PASSWORD,
                device="d",
                request_timeout=60.0,
                sync=False,
            )
            await c.start()
            clients[u] = c
            await c.account.set_privacy(groups="everyone", coins="everyone")
            await c.wallet.check_in(key="seed")
        first = clients[run.users[0]]
        run.group = (await first.groups.create("all", run.users[1:])).group
        deadline = time.monotonic() + args.duration
        kill_codes, *_ = await asyncio.gather(
            killer(server, args.kills, args.duration, rnd),
            *[worker(clients[u], u, run, deadline) for u in run.users],
        )
        if not server.running:
            await server.start()
        # every answered request, again with its key: the same answer, as a duplicate
        retried = mismatched = 0
        for a in run.attempts:
            if a.answer is None:
                continue
            again = await one(clients[a.user], a)
            retried += 1
            same = again.duplicate and (
                again.transfer == a.answer.transfer
                if a.kind != "claim"
                else (again.amount, again.transfer) == (a.answer.amount, a.answer.transfer)
            )
            if not same:
                mismatched += 1
                run.problems.append(f"{a.kind} {a.key}: answered {a.answer}, then {again}")
    finally:
        for c in clients.values():
            await c.close()
        if server.running:
            rc = await server.terminate()
            if rc != 0:
                run.problems.append(f"the server exited {rc} on SIGTERM")
    # the ledger, from the database alone
    store = SQLiteStore(db, read_connections=1)
    await store.open()
    try:
        dump = await store.ledger_dump()
    finally:
        await store.close()
    violations = audit(dump, parse_tasks(TASKS))
    by_id = {t.id: t for t in dump.transfers}
    lost = 0
    for a in run.attempts:
        if a.kind == "pay" and a.answer is not None:
            t = by_id.get(a.answer.transfer.id)
            if t is None or t.amount != a.args["amount"] or t.key != a.key:
                lost += 1
                run.problems.append(f"pay {a.key}: transfer {a.answer.transfer.id} is {t}")
    answered = sum(1 for a in run.attempts if a.answer is not None)
    return {
        "wallet_ops": len(run.attempts),
        "wallet_answered": answered,
        "wallet_retried": retried,
        "wallet_lost": lost,
        "wallet_mismatched": mismatched,
        "wallet_invariant_violations": len(violations),
        "transfers": len(dump.transfers),
        "packets": len(dump.packets),
        "kills": len(kill_codes),
        "exit_codes": kill_codes,
        "violations": violations[:50],
        "problems": run.problems[:50],
        "server_log": server.log_tail() if violations or run.problems else "",
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--users", type=int, default=6)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--workdir", help="where the database goes (default: a temporary one)")
    ap.add_argument("--json", help="also write the summary here")
    args = ap.parse_args(argv)
    if args.seed is None:
        args.seed = random.randrange(1 << 30)
    try:
        summary = asyncio.run(main_async(args))
    except Exception as exc:  # a setup failure: the server did not start, ...
        print(f"wallet_crash: {exc!r}", file=sys.stderr)
        return 2
    summary["seed"] = args.seed
    text = json.dumps(summary, indent=2, default=str)
    print(text)
    if args.json:
        with open(args.json, "w") as fh:
            fh.write(text)
    bad = (
        summary["wallet_lost"]
        or summary["wallet_mismatched"]
        or summary["wallet_invariant_violations"]
        or summary["problems"]
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
