"""The issue's "done when", from the `liaotian` CLI against a real server: two users near
each other see each other (bucketed), one says hello, the other accepts and they chat; a
user finds a nearby merchant (made one by an admin), browses its catalogue, orders a
product paid in coins, the merchant accepts and fulfils, and both wallets and the stock
agree."""

from __future__ import annotations

import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cliproc import CLI
from liaotian.client import Client, register
from liaotian.server.ops import admin_cli
from liaotian.server.testing import RunningServer, run_server

PASSWORD = "correct horse battery"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    (tmp_path / "db").mkdir()
    async with run_server(tmp_path / "db") as srv:
        yield srv


async def test_people_and_a_merchant_nearby_from_the_cli(
    server: RunningServer, tmp_path: Path
) -> None:
    names = ("alice", "bob", "beanery")
    for name in names:
        await register(server.host, server.port, name, PASSWORD)
    cli = {
        n: CLI(server.host, server.port, tmp_path / n, LIAOTIAN_PASSWORD=PASSWORD) for n in names
    }

    async def run(name: str, *args: str) -> str:
        code, out, err = await cli[name].run(*args)
        assert code == 0, (name, args, out, err)
        return out

    for n in names:
        await run(n, "login", n, "--device", "cli")
    # two people near People's Square
    out = await run("alice", "nearby", "share", "31.2304", "121.4737")
    assert "sharing cell 89309959d73ffff" in out, out
    await run("bob", "nearby", "share", "31.2330", "121.4760", "--ttl", "600")
    out = await run("alice", "nearby", "people", "31.2304", "121.4737")
    assert re.search(r"^bob\s+< (500|1000) m  \(say hello\)$", out, re.M), out
    assert "31.23" not in out  # no position of a person, ever
    out = await run("alice", "nearby", "hello", "bob", "--note", "hi from the square")
    assert "said hello to bob" in out
    out = await run("bob", "contacts")
    assert "alice" in out, out
    await run("bob", "contact", "accept", "alice")
    await run("alice", "send", "bob", "coffee?")
    out = await run("bob", "history", "alice")
    assert "coffee?" in out, out
    # a merchant nearby, made one by an admin
    made = await admin_cli.run(
        server.config, "account_kind", {"user": "beanery", "kind": "merchant"}
    )
    assert made == {"user": "beanery", "kind": "merchant"}
    for who in ("alice", "bob"):
        await admin_cli.run(server.config, "mint", {"to": who, "amount": 100, "memo": "test"})
    out = await run(
        "beanery",
        "nearby",
        "merchant-set",
        "The Beanery",
        "coffee",
        "31.2330",
        "121.4760",
        "--hours",
        "8-20",
    )
    assert "merchant The Beanery [coffee] set" in out
    out = await run("beanery", "shop", "add", "Flat white", "12", "3", "--description", "oat")
    product = re.search(r"#(\d+)", out).group(1)  # type: ignore[union-attr]
    out = await run("alice", "nearby", "merchants", "31.2304", "121.4737", "--category", "coffee")
    assert re.search(
        r"^beanery\s+\"The Beanery\"  < (500|1000) m  \[coffee\]  8-20  at ", out, re.M
    ), out
    out = await run("alice", "shop", "list", "beanery")
    assert f"#{product}  Flat white  12 coins  3 left" in out, out
    out = await run("alice", "shop", "order", product, "--qty", "2", "--key", "o-1")
    order = re.search(r"order #(\d+)", out).group(1)  # type: ignore[union-attr]
    assert "24 coins" in out and "placed" in out, out
    again = await run("alice", "shop", "order", product, "--qty", "2", "--key", "o-1")
    assert "(already placed)" in again  # a retried order is one order
    out = await run("alice", "wallet")
    assert "balance: 100   spendable: 76   reserved: 24" in out, out
    out = await run("beanery", "shop", "orders", "--merchant")
    assert f"order #{order}" in out and "placed" in out
    out = await run("beanery", "shop", "accept", order, "--fulfil")
    assert "accepted" in out and "fulfilled" in out, out
    out = await run("alice", "wallet")
    assert "balance: 76   spendable: 76   reserved: 0" in out, out
    out = await run("beanery", "wallet")
    assert "balance: 24" in out, out
    out = await run("bob", "shop", "show", product)
    assert "1 left" in out, out
    out = await run("alice", "history", "beanery")
    assert out.count("order") >= 3, out  # placed, accepted, fulfilled
    await run("alice", "nearby", "stop")
    out = await run("bob", "nearby", "people", "31.2330", "121.4760")
    assert "nobody nearby" in out


async def test_the_merchant_bot_fulfils_orders_by_itself(
    server: RunningServer, tmp_path: Path
) -> None:
    """examples/merchant_bot.py: sets its profile and product, then accepts and fulfils an
    order placed while it runs; the buyer's coins reach it."""
    for name in ("coffee", "dora"):
        await register(server.host, server.port, name, PASSWORD)
    await admin_cli.run(server.config, "account_kind", {"user": "coffee", "kind": "merchant"})
    await admin_cli.run(server.config, "mint", {"to": "dora", "amount": 50, "memo": "test"})
    cli = CLI(server.host, server.port, tmp_path / "bot", LIAOTIAN_PASSWORD=PASSWORD)
    argv0 = [sys.executable, str(ROOT / "examples" / "merchant_bot.py")]
    bot = await cli.start(
        "--user",
        "coffee",
        "--product",
        "Latte:15:4",
        "--at",
        "31.2330,121.4760",
        "--category",
        "coffee",
        "--exit-after",
        "1",
        argv0=argv0,
    )
    await bot.wait_for("ready")
    async with Client(server.host, server.port, username="dora", password=PASSWORD) as dora:
        found = await dora.nearby.merchants(31.2304, 121.4737, category="coffee")
        assert [e.user for e in found] == ["coffee"]
        (latte,) = await dora.shop.products("coffee")
        placed = await dora.shop.order(latte.id)
        assert placed.order.state == "placed"
        await bot.wait_for(f"fulfilled order #{placed.order.id}")
        assert await bot.finish() == 0
        (mine,) = await dora.shop.orders()
        assert mine.state == "fulfilled"
        assert (await dora.wallet()).balance == 35
        assert (await dora.shop.product(latte.id)).stock == 3
