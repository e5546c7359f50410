"""A merchant bot: accepts and fulfils every order placed with it, as it arrives.

    liaotian-server admin account-kind coffee merchant    # once: make the account a merchant
    LIAOTIAN_PASSWORD=... python examples/merchant_bot.py --user coffee \
        --product "Flat white:12:50" --at 31.2330,121.4760 --category coffee
    liaotian nearby merchants 31.2304 121.4737            # from another account
    liaotian shop list coffee; liaotian shop order 1      # ... the order is fulfilled

At start it sets its merchant profile (with `--at`), adds the `--product TITLE:PRICE:STOCK`
products it does not have yet, and handles the orders still open (placed while it was
away). Then every "order" event in its conversations whose state is "placed" is accepted
and fulfilled: the buyer's coins move to the bot's account (the order's pending transfer
is posted) and both see the steps as events in their conversation. Steps carry keys made
from the order id, so a restart in the middle never fulfils twice. `--exit-after N` stops
after N fulfilled orders (for demos and tests). Runs until Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from liaotian.client import Client, MessageReceived, RequestError

log = logging.getLogger("merchant_bot")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default=os.environ.get("LIAOTIAN_HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("LIAOTIAN_PORT", "7420")))
    p.add_argument("--user", required=True, help="the merchant account")
    p.add_argument("--password", default=os.environ.get("LIAOTIAN_PASSWORD"))
    p.add_argument("--product", action="append", default=[], metavar="TITLE:PRICE:STOCK")
    p.add_argument("--at", metavar="LAT,LON", help="set the merchant profile's location")
    p.add_argument("--name", help="the profile's name (default: the username)")
    p.add_argument("--category", default="shop")
    p.add_argument("--hours", default="")
    p.add_argument("--exit-after", type=int, default=0, metavar="N")
    p.add_argument("-v", "--verbose", action="store_true")
    return p.parse_args(argv)


async def fulfil(client: Client, order: int) -> bool:
    """Accept (if still placed) and fulfil one order; False if it is no longer open."""
    shop = client.shop
    try:
        got = await shop.accept(order, key=f"accept-{order}")
    except RequestError as exc:
        if exc.code.name not in ("CONFLICT", "UNKNOWN_ORDER"):
            raise
        if exc.code.name == "UNKNOWN_ORDER":
            return False
    try:
        got = await shop.fulfil(order, key=f"fulfil-{order}")
    except RequestError as exc:
        if exc.code.name == "UNKNOWN_ORDER":
            return False
        raise
    log.info("fulfilled order #%d: %d coins from %s", order, got.order.amount, got.order.buyer)
    return True


async def setup(client: Client, args: argparse.Namespace) -> None:
    if args.at:
        lat, lon = (float(x) for x in args.at.split(","))
        await client.nearby.set_merchant(
            args.name or args.user, args.category, lat, lon, args.hours
        )
    have = {p.title for p in await client.shop.products(args.user)}
    for spec in args.product:
        title, price, stock = spec.rsplit(":", 2)
        if title not in have:
            p = await client.shop.add(title, price=int(price), stock=int(stock))
            print(f"added #{p.id} {p.title}", flush=True)


async def serve(args: argparse.Namespace) -> int:
    done = 0
    async with Client(
        args.host, args.port, username=args.user, password=args.password, device="merchant-bot"
    ) as client:
        await setup(client, args)
        for o in await client.shop.orders(merchant=True, limit=200):
            if o.state in ("placed", "accepted") and await fulfil(client, o.id):
                done += 1
        print("ready", flush=True)
        if args.exit_after and done >= args.exit_after:
            return 0
        async for event in client:
            if not isinstance(event, MessageReceived):
                continue
            ev = event.message.event or {}
            if ev.get("type") != "order" or ev.get("state") != "placed":
                continue
            if event.message.to != client.user:
                continue  # an order this account placed elsewhere
            if await fulfil(client, int(ev["order"])):
                done += 1
                print(f"fulfilled order #{ev['order']}", flush=True)
                if args.exit_after and done >= args.exit_after:
                    return 0
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    try:
        return asyncio.run(serve(args))
    except KeyboardInterrupt:
        return 0
    except RequestError as exc:
        print(f"merchant bot: {exc.code.name}: {exc.message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
