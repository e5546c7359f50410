"""The wallet's commands of the `liaotian` CLI (cli.py registers them and opens the session):

    liaotian wallet [--limit N]                       balance and recent transfers
    liaotian pay USER AMOUNT [--memo M] [--key K]     pay a user
    liaotian red-packet send (--group G | --to USER) AMOUNT COUNT [--equal] [--memo M]
    liaotian red-packet claim PACKET | show PACKET
    liaotian tasks [check-in]                         the tasks; check in
    liaotian items [gift CODE USER | redeem CODE]     your items; give or use one

A command that moves coins uses the key given with --key, or a fresh one; if the answer is
lost (the connection dropped), it prints the key, and the same command with `--key` that
key is safe to run again: the server answers it once (SPEC.md 25.2).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TextIO, TypeVar

from liaotian.protocol import ConnectionClosed
from liaotian.protocol.wallet import TransferEntry

from .client import Client
from .terminal import safe
from .wallet import new_key

COMMANDS = ("wallet", "pay", "red-packet", "tasks", "items")
T = TypeVar("T")


class UsageError(Exception):
    """A wrong combination of arguments (cli.py reports it with exit status 2)."""


def add_parsers(sub: Any, common: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("wallet", parents=common, help="your coins and recent transfers")
    p.add_argument("--limit", type=int, default=10, help="transfers to show (default 10)")
    p = sub.add_parser("pay", parents=common, help="pay coins to a user")
    p.add_argument("to", metavar="USER")
    p.add_argument("amount", type=int, metavar="AMOUNT")
    p.add_argument("--memo", default="", help="a note both of you see")
    p.add_argument("--key", help="idempotency key (to repeat a payment whose answer was lost)")
    p = sub.add_parser("red-packet", parents=common, help="red packets: send, claim, show")
    rsub = p.add_subparsers(dest="packet_command", metavar="ACTION", required=True)
    q = rsub.add_parser("send", parents=common, help="send a red packet")
    q.add_argument("amount", type=int, metavar="AMOUNT")
    q.add_argument("count", type=int, metavar="COUNT", help="shares (1 to a user)")
    where = q.add_mutually_exclusive_group(required=True)
    where.add_argument("--group", type=int, metavar="G", help="into this group")
    where.add_argument("--to", metavar="USER", help="to this user")
    q.add_argument("--equal", action="store_true", help="equal shares (default: random)")
    q.add_argument("--memo", default="", help="the packet's greeting")
    q.add_argument("--key", help="idempotency key (to repeat a send whose answer was lost)")
    q = rsub.add_parser("claim", parents=common, help="claim your share of a red packet")
    q.add_argument("packet", type=int, metavar="PACKET")
    q = rsub.add_parser("show", parents=common, help="a red packet and who claimed what")
    q.add_argument("packet", type=int, metavar="PACKET")
    p = sub.add_parser("tasks", parents=common, help="tasks and their rewards; check in")
    p.add_argument("action", nargs="?", choices=("check-in",), help="check in now")
    p = sub.add_parser("items", parents=common, help="your items: list, gift, redeem")
    p.add_argument("action", nargs="?", choices=("gift", "redeem"))
    p.add_argument("code", nargs="?", metavar="CODE")
    p.add_argument("user", nargs="?", metavar="USER", help="with gift: the contact")


def fmt_time(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def fmt_transfer(t: TransferEntry, me: str | None) -> str:
    """`2024-01-01 12:00:00  -30  to bob (pay) "lunch"`, signed from `me`'s side."""
    sign = "±" if t.phase in ("pending", "void") else "-" if t.sender == me else "+"
    other = t.to if t.sender == me else t.sender
    way = "to" if t.sender == me else "from"
    memo = f' "{safe(t.memo)}"' if t.memo else ""
    return f"{fmt_time(t.ts)}  {sign}{t.amount:<8} {way} {safe(other)} ({t.code}, {t.phase}){memo}"


async def _with_key(key: str, call: Callable[[str], Awaitable[T]]) -> T:
    """Run a keyed request; if its answer is lost, say how to repeat it safely."""
    try:
        return await call(key)
    except (ConnectionClosed, TimeoutError):
        print(
            f"liaotian: the answer was lost; repeat with --key {key} (it will not be "
            "applied twice)",
            file=sys.stderr,
        )
        raise


async def run(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    w = client.wallet
    me = client.user
    if args.command == "wallet":
        b = await w.balance()
        print(
            f"balance: {b.balance}   spendable: {b.balance - b.pending_out}   "
            f"reserved: {b.pending_out}   incoming: {b.pending_in}",
            file=out,
        )
        page, more = await w.page(limit=max(1, args.limit))
        for entry in page:
            print("  " + fmt_transfer(entry, me), file=out)
        if more:
            print("  ...", file=out)
    elif args.command == "pay":
        paid = await _with_key(
            args.key or new_key(), lambda k: w.pay(args.to, args.amount, args.memo, key=k)
        )
        again = " (already done)" if paid.duplicate else ""
        print(
            f"paid {paid.transfer.amount} to {safe(args.to)}{again}; balance {paid.balance}",
            file=out,
        )
    elif args.command == "red-packet":
        await _packet(client, args, out)
    elif args.command == "tasks":
        if args.action == "check-in":
            checked = await _with_key(new_key(), lambda k: w.check_in(key=k))
            for paid_task in checked.tasks:
                got = f" and an item {paid_task.item}" if paid_task.item else ""
                print(f"{safe(paid_task.task)}: +{paid_task.reward}{got}", file=out)
            print(f"balance {checked.balance}", file=out)
        for task in await w.tasks():
            period = (
                "ever"
                if not task.period
                else ("day" if task.period == 86_400_000 else f"{task.period // 1000} s")
            )
            item = f" + {safe(task.item)}" if task.item else ""
            print(
                f"{safe(task.name):<20} {task.trigger:<8} +{task.reward}{item}  "
                f"{task.done}/{task.cap} per {period}",
                file=out,
            )
    elif args.command == "items":
        if args.action is not None and not args.code:
            raise UsageError(f"items {args.action}: give CODE")
        if args.action == "gift":
            if not args.user:
                raise UsageError("items gift: give CODE and USER")
            gave = await _with_key(new_key(), lambda k: w.gift(args.code, args.user, key=k))
            print(f"gave {safe(gave.item.kind)} {gave.item.code} to {safe(args.user)}", file=out)
        elif args.action == "redeem":
            used = await _with_key(new_key(), lambda k: w.redeem(args.code, key=k))
            print(f"redeemed {safe(used.item.kind)} {used.item.code}", file=out)
        else:
            for mine in await w.items():
                when = f"  redeemed {fmt_time(mine.redeemed)}" if mine.redeemed else ""
                print(
                    f"{mine.code}  {safe(mine.kind):<10} from {safe(mine.source)}{when}", file=out
                )
    return 0


async def _packet(client: Client, args: argparse.Namespace, out: TextIO) -> None:
    w = client.wallet
    action = args.packet_command
    if action == "send":
        sent = await _with_key(
            args.key or new_key(),
            lambda k: w.red_packet(
                args.amount,
                args.count,
                group=args.group,
                to=args.to,
                split="equal" if args.equal else "random",
                memo=args.memo,
                key=k,
            ),
        )
        where = f"group #{args.group}" if args.group is not None else safe(args.to)
        print(
            f"red packet #{sent.packet}: {args.amount} in {args.count} shares to {where}, "
            f"until {fmt_time(sent.expires)}",
            file=out,
        )
    elif action == "claim":
        got = await w.claim(args.packet)
        again = " (claimed before)" if got.duplicate else ""
        print(
            f"claimed {got.amount} from red packet #{args.packet}{again}; {got.left} shares left",
            file=out,
        )
    else:
        p = await w.packet(args.packet)
        memo = f' "{safe(p.memo)}"' if p.memo else ""
        print(
            f"red packet #{p.packet} from {safe(p.sender)}: {p.amount} in {p.count} "
            f"{p.split} shares, {p.state}{memo}",
            file=out,
        )
        for c in p.claims:
            print(f"  {safe(c.user):<32} {c.amount}", file=out)
