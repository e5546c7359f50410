"""The shop's part of the store contract, one suite for SQLite and memory: products,
orders paid by the wallet's pending transfers with the stock taken in the same commit,
the steps (accept, fulfil, decline, cancel), expiry (also after a restart), idempotent
ordering, no overselling under racing buyers, and F-code gated products. After every
test the wallet's invariant report is empty."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from liaotian.protocol import ErrorCode
from liaotian.server.chat.audit import audit
from liaotian.server.chat.ledger import WalletPolicy
from liaotian.server.chat.ops import (
    AddProduct,
    ExpirePending,
    GrantItem,
    Mint,
    OrderStep,
    PlaceOrder,
    SetStock,
    ShareProduct,
)
from liaotian.server.chat.policy import Policy
from liaotian.server.store.memory import MemoryStore
from liaotian.server.store.sqlite import SQLiteStore
from test_contract import Driver, make_store

POLICY = Policy(wallet=WalletPolicy(item_secret=b"s3cret"))


@pytest.fixture(params=["sqlite", "memory", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    # the memory store's clock moves a second per commit: timeouts of 1 ms are due at once
    ticks = itertools.count(1_700_000_000_000, 1000)
    async with AsyncExitStack() as stack:
        s: Any = (
            MemoryStore(clock=lambda: next(ticks))
            if request.param == "memory"
            else await make_store(request.param, tmp_path / "shop.db", stack)
        )
        await s.open()
        try:
            yield s
            assert audit(await s.ledger_dump(), ()) == []
        finally:
            await s.close()


async def setup(d: Driver, *buyers: str, stock: int = 5, requires: str = "") -> int:
    await d.users("shop", *buyers)
    for b in buyers:
        op = await d.one(Mint(actor=0, to=b, amount=1000))
        assert op.error is None, op.error_message
    op = await d.one(
        AddProduct(
            actor=d.ids["shop"],
            title="Mi Band",
            description="a band",
            price=100,
            stock=stock,
            requires=requires,
            policy=POLICY,
            merchant=True,
        )
    )
    assert op.error is None, op.error_message
    return int(op.result["product"]["id"])


async def test_an_order_holds_the_coins_and_the_stock_fulfil_posts(store: Any) -> None:
    d = Driver(store)
    pid = await setup(d, "bob")
    bob, shop = d.ids["bob"], d.ids["shop"]
    placed = await d.one(PlaceOrder(actor=bob, product=pid, qty=2, key="o1", policy=POLICY))
    assert placed.error is None, placed.error_message
    order = placed.result["order"]
    assert order["state"] == "placed" and order["amount"] == 200
    assert (await store.product_by_id(pid)).stock == 3
    a = await store.account_of(bob)
    assert (a.balance, a.pending_out) == (1000, 200)
    again = await d.one(PlaceOrder(actor=bob, product=pid, qty=2, key="o1", policy=POLICY))
    assert again.duplicate and again.result["order"]["id"] == order["id"]
    assert (await store.product_by_id(pid)).stock == 3  # a retry is one order
    bad = await d.one(PlaceOrder(actor=bob, product=pid, qty=1, key="o1", policy=POLICY))
    assert bad.error == ErrorCode.IDEMPOTENCY_MISMATCH
    cancel = await d.one(OrderStep(actor=shop, order=order["id"], step="cancel", policy=POLICY))
    assert cancel.error == ErrorCode.FORBIDDEN  # the buyer cancels
    ok = await d.one(OrderStep(actor=shop, order=order["id"], step="accept", policy=POLICY))
    assert ok.error is None and ok.result["order"]["state"] == "accepted"
    late = await d.one(OrderStep(actor=bob, order=order["id"], step="cancel", policy=POLICY))
    assert late.error == ErrorCode.CONFLICT
    done = await d.one(OrderStep(actor=shop, order=order["id"], step="fulfil", policy=POLICY))
    assert done.error is None and done.result["order"]["state"] == "fulfilled"
    assert (await store.account_of(bob)).balance == 800
    assert (await store.account_of(shop)).balance == 200
    got = await store.order_by_id(order["id"])
    assert got is not None and got.state == 2
    again = await d.one(OrderStep(actor=shop, order=order["id"], step="fulfil", policy=POLICY))
    assert again.error == ErrorCode.UNKNOWN_ORDER  # closed
    assert [o.id for o in await store.orders_of(bob, as_merchant=False, limit=10)] == [got.id]
    assert [o.id for o in await store.orders_of(shop, as_merchant=True, limit=10)] == [got.id]


async def test_decline_cancel_and_expiry_refund_and_restock(store: Any) -> None:
    d = Driver(store)
    pid = await setup(d, "bob")
    bob, shop = d.ids["bob"], d.ids["shop"]
    oids = []
    for k in ("a", "b", "c"):
        op = await d.one(PlaceOrder(actor=bob, product=pid, key=k, timeout_ms=1, policy=POLICY))
        assert op.error is None, op.error_message
        oids.append((op.result["order"]["id"], op.result["transfer"]["id"]))
    assert (await store.product_by_id(pid)).stock == 2
    assert (await d.one(OrderStep(actor=shop, order=oids[0][0], step="decline"))).error is None
    assert (await d.one(OrderStep(actor=bob, order=oids[1][0], step="cancel"))).error is None
    due = await store.pendings_due(1 << 60, 10)
    assert due == [oids[2][1]]
    expired = await d.one(ExpirePending(actor=0, pending=oids[2][1]))
    assert expired.result == {"expired": True}
    assert (await store.product_by_id(pid)).stock == 5
    a = await store.account_of(bob)
    assert (a.balance, a.pending_out) == (1000, 0)
    states = [o.state for o in await store.orders_of(bob, as_merchant=False, limit=10)]
    assert states == [5, 4, 3]  # expired, cancelled, declined (newest first)


async def test_racing_buyers_never_oversell(store: Any) -> None:
    d = Driver(store)
    buyers = [f"b{i:03d}" for i in range(40)]
    pid = await setup(d, *buyers, stock=17)
    answered = await d.run(
        *[PlaceOrder(actor=d.ids[b], product=pid, key="k", policy=POLICY) for b in buyers]
    )
    won = [op for op in answered if op.error is None]
    assert len(won) == 17
    assert {op.error for op in answered if op.error is not None} == {ErrorCode.OUT_OF_STOCK}
    assert (await store.product_by_id(pid)).stock == 0
    set_op = await d.one(SetStock(actor=d.ids["shop"], product=pid, stock=3, merchant=True))
    assert set_op.result["product"]["stock"] == 3
    theirs = await d.one(SetStock(actor=d.ids[buyers[0]], product=pid, stock=9, merchant=True))
    assert theirs.error == ErrorCode.FORBIDDEN
    # the rules, not the handler, refuse an account that is not a merchant's
    not_one = await d.one(SetStock(actor=d.ids[buyers[0]], product=pid, stock=9))
    assert not_one.error == ErrorCode.NOT_MERCHANT
    added = await d.one(AddProduct(actor=d.ids[buyers[0]], title="x", price=1, stock=1))
    assert added.error == ErrorCode.NOT_MERCHANT


async def test_an_f_code_gated_product_takes_the_code_once(store: Any) -> None:
    d = Driver(store)
    pid = await setup(d, "bob", requires="fcode")
    bob = d.ids["bob"]
    none = await d.one(PlaceOrder(actor=bob, product=pid, key="x", policy=POLICY))
    assert none.error == ErrorCode.ITEM_UNAVAILABLE
    grant = await d.one(GrantItem(actor=0, to="bob", kind="fcode", policy=POLICY))
    code = grant.result["item"]["code"]
    first = await d.one(PlaceOrder(actor=bob, product=pid, code=code, key="y", policy=POLICY))
    assert first.error is None, first.error_message
    retry = await d.one(PlaceOrder(actor=bob, product=pid, code=code, key="y", policy=POLICY))
    assert retry.duplicate
    second = await d.one(PlaceOrder(actor=bob, product=pid, code=code, key="z", policy=POLICY))
    assert second.error == ErrorCode.ITEM_UNAVAILABLE
    assert [i.redeemed > 0 for i in await store.items_of(bob)] == [True]
    card = await d.one(ShareProduct(actor=d.ids["shop"], product=pid, to="bob"))
    assert card.error is None and card.result["pos"] > 0


@pytest.mark.parametrize("how", ["decline", "cancel", "expire"])
async def test_an_order_that_does_not_happen_gives_the_f_code_back(store: Any, how: str) -> None:
    """In the commit that voids the payment the code is the buyer's again, unredeemed:
    another order can take it (once)."""
    d = Driver(store)
    pid = await setup(d, "bob", requires="fcode")
    bob, shop = d.ids["bob"], d.ids["shop"]
    grant = await d.one(GrantItem(actor=0, to="bob", kind="fcode", policy=POLICY))
    code = grant.result["item"]["code"]
    placed = await d.one(
        PlaceOrder(actor=bob, product=pid, code=code, key="a", policy=POLICY, timeout_ms=1)
    )
    assert placed.error is None, placed.error_message
    oid, tid = placed.result["order"]["id"], placed.result["transfer"]["id"]
    if how == "expire":
        done = await d.one(ExpirePending(actor=0, pending=tid))
        assert done.result == {"expired": True}
    else:
        actor = shop if how == "decline" else bob
        done = await d.one(OrderStep(actor=actor, order=oid, step=how))
        assert done.error is None, done.error_message
    assert [i.redeemed for i in await store.items_of(bob)] == [0]
    again = await d.one(PlaceOrder(actor=bob, product=pid, code=code, key="b", policy=POLICY))
    assert again.error is None, again.error_message
    twice = await d.one(PlaceOrder(actor=bob, product=pid, code=code, key="c", policy=POLICY))
    assert twice.error == ErrorCode.ITEM_UNAVAILABLE
    assert audit(await store.ledger_dump(), ()) == []


async def test_an_accepted_order_is_held_until_its_fulfilment_deadline(store: Any) -> None:
    """Accepting moves the hold to `fulfil_ms` after the acceptance (voided and held again
    in one commit); the 24 h of an unaccepted order no longer apply; at the deadline the
    order expires, restocked and refunded."""
    d = Driver(store)
    pid = await setup(d, "bob")
    bob, shop = d.ids["bob"], d.ids["shop"]
    placed = await d.one(PlaceOrder(actor=bob, product=pid, key="a", policy=POLICY, timeout_ms=1))
    oid, first = placed.result["order"]["id"], placed.result["transfer"]["id"]
    accepted = await d.one(OrderStep(actor=shop, order=oid, step="accept", fulfil_ms=3_600_000))
    assert accepted.error is None, accepted.error_message
    held = accepted.result["transfer"]
    assert held["phase"] == "pending" and held["id"] != first and held["amount"] == 100
    assert held["expires"] >= placed.result["transfer"]["expires"] + 3_600_000 - 1
    assert accepted.result["order"]["pending"] == held["id"]
    # the placed hold is closed: its expiry does nothing now
    assert (await d.one(ExpirePending(actor=0, pending=first))).result == {"expired": False}
    assert (await store.account_of(bob)).pending_out == 100
    assert await store.pendings_due(held["expires"] - 1, 10) == []
    assert await store.pendings_due(held["expires"] + 1, 10) == [held["id"]]
    # fulfilling posts the new hold
    fulfilled = await d.one(OrderStep(actor=shop, order=oid, step="fulfil"))
    assert fulfilled.error is None, fulfilled.error_message
    assert fulfilled.result["transfer"]["amount"] == 100
    assert (await store.account_of(bob)).pending_out == 0
    assert (await store.account_of(shop)).balance == 100
    # another, accepted and left: its deadline expires it, restocked and refunded
    other = await d.one(PlaceOrder(actor=bob, product=pid, key="b", policy=POLICY))
    oid2 = other.result["order"]["id"]
    acc2 = await d.one(OrderStep(actor=shop, order=oid2, step="accept", fulfil_ms=1))
    assert (await d.one(ExpirePending(actor=0, pending=acc2.result["transfer"]["id"]))).result == {
        "expired": True
    }
    assert (await store.product_by_id(pid)).stock == 4
    assert (await store.account_of(bob)).pending_out == 0
    assert (await store.account_of(bob)).balance == 900
    assert audit(await store.ledger_dump(), ()) == []


async def test_open_orders_survive_a_restart_and_expire(tmp_path: Path) -> None:
    path = str(tmp_path / "r.db")
    s = SQLiteStore(path)
    await s.open()
    d = Driver(s)
    pid = await setup(d, "bob")
    op = await d.one(PlaceOrder(actor=d.ids["bob"], product=pid, key="k", timeout_ms=1))
    tid = op.result["transfer"]["id"]
    await s.close()
    s = SQLiteStore(path)
    await s.open()
    try:
        d2 = Driver(s)
        assert await s.pendings_due(1 << 60, 10) == [tid]
        assert (await d2.one(ExpirePending(actor=0, pending=tid))).result == {"expired": True}
        assert (await s.product_by_id(pid)).stock == 5
        assert (await s.account_of(d.ids["bob"])).pending_out == 0
        more = await d2.one(PlaceOrder(actor=d.ids["bob"], product=pid, key="k2"))
        assert more.error is None and more.result["order"]["id"] > op.result["order"]["id"]
    finally:
        await s.close()


async def test_a_product_card_obeys_the_recipients_messages_privacy(store: Any) -> None:
    """A card is a message: privacy `messages` "contacts" refuses it as SEND would."""
    from liaotian.server.chat.ops import SetPrivacy

    d = Driver(store)
    pid = await setup(d, "bob", "carol")
    await d.one(SetPrivacy(actor=d.ids["bob"], messages="contacts"))
    card = await d.one(ShareProduct(actor=d.ids["carol"], product=pid, to="bob"))
    assert card.error == ErrorCode.NOT_ALLOWED
    ok = await d.one(ShareProduct(actor=d.ids["bob"], product=pid, to="carol"))
    assert ok.error is None, ok.error_message
