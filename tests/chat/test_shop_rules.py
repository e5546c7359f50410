"""The shop's rules (chat/rules/shop.py) on a bare plan: no store, no socket, no clock.

The plan below keeps just what the rules read and write, in dictionaries; the store
contract suite (tests/store/test_shop_contract.py) runs the same rules on both stores."""

from __future__ import annotations

from typing import Any

import pytest
from liaotian.protocol import ErrorCode
from liaotian.server.chat.ledger import CODE_ORDER, PENDING, Account, Item, KeyRecord, Transfer
from liaotian.server.chat.model import Social
from liaotian.server.chat.ops import AddProduct, OrderStep, PlaceOrder, Refused
from liaotian.server.chat.rules import shop
from liaotian.server.chat.shop import Order, Product


class BarePlan:
    def __init__(self) -> None:
        self.ts = 1_000
        self.names = {1: "shop", 2: "bob", 3: "eve"}
        self.accounts: dict[int, Account] = {2: Account(500), 3: Account(5)}
        self.transfers: list[Transfer] = []
        self.pendings: dict[int, Transfer] = {}
        self.products: dict[int, Product] = {}
        self.orders: dict[int, Order] = {}
        self.keys: dict[tuple[int, str], KeyRecord] = {}
        self.items: dict[str, Item] = {"F1": Item(1, "F1", "fcode", 2, 0, "admin")}
        self.events: list[dict[str, Any]] = []
        self.n = 0

    def _next(self) -> int:
        self.n += 1
        return self.n

    new_transfer_id = new_product_id = new_order_id = new_message_id = _next

    def username(self, uid: int) -> str:
        return self.names[uid]

    def user_id(self, name: str) -> int | None:
        return {v: k for k, v in self.names.items()}.get(name)

    def social_ro(self, uid: int) -> Social:
        return Social()

    def account(self, acct: int) -> Account:
        return self.accounts.get(acct, Account())

    def set_account(self, acct: int, a: Account) -> None:
        self.accounts[acct] = a

    def add_transfer(self, t: Transfer) -> None:
        self.transfers.append(t)
        if t.flags & PENDING:
            self.pendings[t.id] = t
        elif t.pending_id:
            self.pendings.pop(t.pending_id, None)

    def pending(self, tid: int) -> Transfer | None:
        return self.pendings.get(tid)

    def key_record(self, uid: int, key: str) -> KeyRecord | None:
        return self.keys.get((uid, key))

    def record_key(self, uid: int, key: str, rec: KeyRecord) -> None:
        self.keys[(uid, key)] = rec

    def log(self, uid: int, kind: int, data: bytes) -> int:
        return 0

    def direct_conv(self, a: int, b: int) -> int:
        return 77

    def next_pos(self, conv: int) -> int:
        return len(self.events) + 1

    def next_seq(self, uid: int) -> int:
        return 1

    def add_update(self, *a: Any, **k: Any) -> None:
        pass

    def add_message(self, mid: int, conv: int, pos: int, *rest: Any) -> None:
        pass

    def product(self, pid: int) -> Product | None:
        return self.products.get(pid)

    def put_product(self, p: Product, *, new: bool = False) -> None:
        self.products[p.id] = p

    def order(self, oid: int) -> Order | None:
        o = self.orders.get(oid)
        return o if o is not None and o.open else None

    def put_order(self, o: Order, *, new: bool = False) -> None:
        self.orders[o.id] = o
        self.events.append({"order": o.id, "state": o.state})

    def item(self, code: str) -> Item | None:
        return self.items.get(code)

    def redeem_item(self, item: Item) -> None:
        item.redeemed = self.ts

    def restore_item(self, item: Item) -> None:
        item.redeemed = 0


def _product(plan: BarePlan, **kw: Any) -> int:
    op = AddProduct(actor=1, title="Mi 5", price=100, stock=2, merchant=True, **kw)
    shop.add_product(plan, op)  # type: ignore[arg-type]
    assert op.result is not None
    return int(op.result["product"]["id"])


def _place(plan: BarePlan, buyer: int, pid: int, **kw: Any) -> PlaceOrder:
    op = PlaceOrder(actor=buyer, product=pid, **kw)
    shop.place(plan, op)  # type: ignore[arg-type]
    return op


def test_placing_holds_the_price_and_takes_the_stock_in_one_plan() -> None:
    plan = BarePlan()
    pid = _product(plan)
    op = _place(plan, 2, pid, qty=2, key="k")
    (hold,) = plan.transfers
    assert (hold.debit, hold.credit, hold.amount, hold.code) == (2, 1, 200, CODE_ORDER)
    assert hold.flags & PENDING and hold.ref == op.result["order"]["id"]  # type: ignore[index]
    assert plan.products[pid].stock == 0
    assert plan.accounts[2] == Account(500, 200, 0) and plan.accounts[1] == Account(0, 0, 200)
    again = _place(plan, 2, pid, qty=2, key="k")
    assert again.duplicate and len(plan.transfers) == 1  # answered, not placed twice
    with pytest.raises(Refused) as err:
        _place(plan, 3, pid, key="e")
    assert err.value.code == ErrorCode.OUT_OF_STOCK


def test_funds_are_checked_before_anything_is_taken() -> None:
    plan = BarePlan()
    pid = _product(plan)
    with pytest.raises(Refused) as err:
        _place(plan, 3, pid, key="e")  # eve has 5 coins
    assert err.value.code == ErrorCode.INSUFFICIENT_FUNDS


def test_steps_post_or_void_and_restock() -> None:
    plan = BarePlan()
    pid = _product(
        plan,
    )
    a = _place(plan, 2, pid, key="a").result["order"]["id"]  # type: ignore[index]
    b = _place(plan, 2, pid, key="b").result["order"]["id"]  # type: ignore[index]
    for actor, oid, step in ((1, a, "accept"), (1, a, "fulfil"), (1, b, "decline")):
        shop.step(plan, OrderStep(actor=actor, order=oid, step=step))  # type: ignore[arg-type]
    assert plan.accounts[1].balance == 100 and plan.accounts[2] == Account(400, 0, 0)
    assert plan.products[pid].stock == 1
    assert [e["state"] for e in plan.events] == [0, 0, 1, 2, 3]
    with pytest.raises(Refused) as err:
        shop.step(plan, OrderStep(actor=1, order=a, step="fulfil"))  # type: ignore[arg-type]
    assert err.value.code == ErrorCode.UNKNOWN_ORDER


def test_an_f_code_product_takes_the_buyers_code() -> None:
    plan = BarePlan()
    pid = _product(plan, requires="fcode")
    with pytest.raises(Refused):
        _place(plan, 2, pid, key="x", code="NOPE")
    _place(plan, 2, pid, key="y", code="F1")
    assert plan.items["F1"].redeemed == plan.ts
    with pytest.raises(Refused) as err:
        _place(plan, 2, pid, key="z", code="F1")
    assert err.value.code == ErrorCode.ITEM_UNAVAILABLE
