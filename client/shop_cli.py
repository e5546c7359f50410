"""The shop's commands of the `liaotian` CLI (cli.py registers them and opens the session):

    liaotian shop list MERCHANT                     a merchant's catalogue
    liaotian shop show PRODUCT                      one product
    liaotian shop order PRODUCT [--qty N] [--code F] [--key K]   order, paid in coins
    liaotian shop orders [--merchant]               my orders (or those placed with me)
    liaotian shop cancel ORDER                      cancel my order before it is accepted
    liaotian shop card PRODUCT USER                 send a product card
    merchants:
    liaotian shop add TITLE PRICE STOCK [--description D] [--requires KIND] [--image SHA]
    liaotian shop stock PRODUCT N                   units available from now on
    liaotian shop accept|decline|fulfil ORDER       (accept --fulfil does both)

An order whose answer was lost is safe to repeat with the key printed (SPEC.md 25.2).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from liaotian.protocol import ConnectionClosed
from liaotian.protocol.shop import OrderEntry, ProductEntry

from .client import Client
from .terminal import safe
from .wallet import new_key

COMMANDS = ("shop",)


class UsageError(Exception):
    """A wrong combination of arguments (cli.py reports it with exit status 2)."""


def add_parsers(sub: Any, common: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("shop", parents=common, help="merchants' catalogues and orders")
    s = p.add_subparsers(dest="shop_command", metavar="ACTION", required=True)
    q = s.add_parser("list", parents=common, help="a merchant's catalogue")
    q.add_argument("merchant", metavar="MERCHANT")
    q = s.add_parser("show", parents=common, help="one product")
    q.add_argument("product", type=int, metavar="PRODUCT")
    q = s.add_parser("order", parents=common, help="order a product, paid in coins")
    q.add_argument("product", type=int, metavar="PRODUCT")
    q.add_argument("--qty", type=int, default=1)
    q.add_argument("--code", help="the F code the product requires")
    q.add_argument("--key", help="idempotency key (to repeat an order whose answer was lost)")
    q = s.add_parser("orders", parents=common, help="my orders")
    q.add_argument("--merchant", action="store_true", help="the orders placed with me")
    q = s.add_parser("card", parents=common, help="send a product card to a user")
    q.add_argument("product", type=int, metavar="PRODUCT")
    q.add_argument("to", metavar="USER")
    q = s.add_parser("add", parents=common, help="add a product to my catalogue")
    q.add_argument("title", metavar="TITLE")
    q.add_argument("price", type=int, metavar="PRICE")
    q.add_argument("stock", type=int, metavar="STOCK")
    q.add_argument("--description", default="")
    q.add_argument("--requires", help="an item kind a buyer gives up (fcode)")
    q.add_argument("--image", help="a blob's SHA-256 (hex) from an upload")
    q = s.add_parser("stock", parents=common, help="set a product's units available")
    q.add_argument("product", type=int, metavar="PRODUCT")
    q.add_argument("units", type=int, metavar="N")
    for step in ("accept", "decline", "fulfil", "cancel"):
        q = s.add_parser(step, parents=common, help=f"{step} an order")
        q.add_argument("order", type=int, metavar="ORDER")
        if step == "accept":
            q.add_argument("--fulfil", action="store_true", help="and fulfil it at once")


def fmt_product(p: ProductEntry) -> str:
    gate = f"  (needs a {safe(p.requires)})" if p.requires else ""
    return f"#{p.id}  {safe(p.title)}  {p.price} coins  {p.stock} left{gate}"


def fmt_order(o: OrderEntry) -> str:
    title = f" {safe(o.title)}" if o.title else ""
    return (
        f"order #{o.id}: {o.qty} x #{o.product}{title}, {o.amount} coins, "
        f"{safe(o.buyer)} -> {safe(o.merchant)}, {o.state}"
    )


async def run(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    shop = client.shop
    action = args.shop_command
    if action == "list":
        products = await shop.products(args.merchant)
        for p in products:
            print(fmt_product(p), file=out)
        if not products:
            print("no products", file=out)
    elif action == "show":
        p = await shop.product(args.product)
        print(f"{fmt_product(p)}  by {safe(p.merchant)}", file=out)
        if p.description:
            print(f"  {safe(p.description)}", file=out)
    elif action == "order":
        key = args.key or new_key()
        try:
            got = await shop.order(args.product, args.qty, code=args.code, key=key)
        except (ConnectionClosed, TimeoutError):
            print(f"liaotian: the answer was lost; repeat with --key {key}", file=sys.stderr)
            raise
        again = " (already placed)" if got.duplicate else ""
        print(f"{fmt_order(got.order)}{again}", file=out)
    elif action == "orders":
        for o in await shop.orders(merchant=args.merchant):
            print(fmt_order(o), file=out)
    elif action == "card":
        await shop.card(args.product, args.to)
        print(f"sent product #{args.product} to {safe(args.to)}", file=out)
    elif action == "add":
        image = None
        if args.image:
            try:
                image = bytes.fromhex(args.image)
            except ValueError:
                raise UsageError("--image takes a SHA-256 in hex") from None
        p = await shop.add(
            args.title,
            price=args.price,
            stock=args.stock,
            description=args.description,
            image=image,
            requires=args.requires,
        )
        print(f"added {fmt_product(p)}", file=out)
    elif action == "stock":
        p = await shop.set_stock(args.product, args.units)
        print(fmt_product(p), file=out)
    else:
        step = getattr(shop, action)
        got = await step(args.order)
        print(fmt_order(got.order), file=out)
        if action == "accept" and args.fulfil:
            print(fmt_order((await shop.fulfil(args.order)).order), file=out)
    return 0
