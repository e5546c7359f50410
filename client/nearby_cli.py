"""The nearby commands of the `liaotian` CLI (cli.py registers them and opens the session):

    liaotian nearby share LAT LON [--ttl S]              share my position (default 1 h)
    liaotian nearby stop                                 stop sharing
    liaotian nearby people LAT LON [--radius M]          who is near, nearest bucket first
    liaotian nearby merchants LAT LON [--category C]     merchants near the point
    liaotian nearby hello USER [--note TEXT]             a contact request with a note
    liaotian nearby merchant-set NAME CATEGORY LAT LON [--hours H]   (merchant accounts)
    liaotian nearby merchant USER                        a merchant's public profile

Positions are decimal degrees (a negative one is fine: `nearby people -33.86 151.21`).
"""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from liaotian.protocol.nearby import NearbyEntry

from .client import Client
from .terminal import safe

COMMANDS = ("nearby",)


def add_parsers(sub: Any, common: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("nearby", parents=common, help="people and merchants nearby")
    nsub = p.add_subparsers(dest="nearby_command", metavar="ACTION", required=True)
    q = nsub.add_parser("share", parents=common, help="share your position for a while")
    _point(q)
    q.add_argument("--ttl", type=int, default=3600, help="seconds (60..86400, default 3600)")
    nsub.add_parser("stop", parents=common, help="stop sharing your position")
    q = nsub.add_parser("people", parents=common, help="people near a point")
    _point(q)
    q.add_argument("--radius", type=int, default=5000, help="metres (default 5000)")
    q = nsub.add_parser("merchants", parents=common, help="merchants near a point")
    _point(q)
    q.add_argument("--radius", type=int, default=5000, help="metres (default 5000)")
    q.add_argument("--category", help="only this category")
    q = nsub.add_parser("hello", parents=common, help="say hello to someone nearby")
    q.add_argument("who", metavar="USER")
    q.add_argument("--note", default="", help="a short note shown with the request")
    q = nsub.add_parser("merchant-set", parents=common, help="your merchant profile")
    q.add_argument("name", metavar="NAME")
    q.add_argument("category", metavar="CATEGORY")
    _point(q)
    q.add_argument("--hours", default="", help="opening hours, free text")
    q = nsub.add_parser("merchant", parents=common, help="a merchant's public profile")
    q.add_argument("who", metavar="USER")


def _point(p: argparse.ArgumentParser) -> None:
    p.add_argument("lat", type=float, metavar="LAT")
    p.add_argument("lon", type=float, metavar="LON")


def fmt_entry(e: NearbyEntry) -> str:
    """`bob  "Bob B."  < 500 m  (hello)`; a merchant with its category and hours."""
    dist = f"< {e.within} m" if e.within < 1000 else f"< {e.within // 1000} km"
    name = f'  "{safe(e.name)}"' if e.name else ""
    extra = ""
    if e.category is not None:
        extra += f"  [{safe(e.category)}]"
    if e.hours:
        extra += f"  {safe(e.hours)}"
    if e.lat is not None and e.lon is not None:
        extra += f"  at {e.lat / 1e6:.6f},{e.lon / 1e6:.6f}"
    hello = "  (say hello)" if e.hello else ""
    return f"{safe(e.user):<20}{name}  {dist}{extra}{hello}"


async def run(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    n = client.nearby
    action = args.nearby_command
    if action == "share":
        shared = await n.share(args.lat, args.lon, ttl=args.ttl)
        print(f"sharing cell {shared.cell} until {_time(shared.expires)}", file=out)
    elif action == "stop":
        await n.stop()
        print("stopped sharing", file=out)
    elif action == "people":
        count = 0
        async for e in n.people(args.lat, args.lon, radius=args.radius):
            print(fmt_entry(e), file=out)
            count += 1
        if not count:
            print("nobody nearby", file=out)
    elif action == "merchants":
        found = await n.merchants(args.lat, args.lon, radius=args.radius, category=args.category)
        for e in found:
            print(fmt_entry(e), file=out)
        if not found:
            print("no merchants nearby", file=out)
    elif action == "hello":
        await n.hello(args.who, args.note)
        print(f"said hello to {safe(args.who)} (a contact request)", file=out)
    elif action == "merchant-set":
        m = await n.set_merchant(args.name, args.category, args.lat, args.lon, args.hours)
        print(f"merchant {safe(m.name)} [{safe(m.category)}] set", file=out)
    else:
        m = await n.merchant(args.who)
        hours = f"  {safe(m.hours)}" if m.hours else ""
        print(
            f"{safe(m.user)}: {safe(m.name)} [{safe(m.category)}]{hours}  "
            f"at {m.lat / 1e6:.6f},{m.lon / 1e6:.6f}",
            file=out,
        )
    return 0


def _time(ts_ms: int) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(ts_ms / 1000).strftime("%Y-%m-%d %H:%M:%S")
