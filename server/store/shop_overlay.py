"""The shop's part of a batch (chat/plan.py's shop reads and named writes), a base of
overlay.Overlay like ledger.py: `ShopState` is the committed state (in overlay.Committed),
`ShopOverlay` the batch's.

Both stores hold the whole catalogue and every open order in memory (SQLite loads them at
open, shop.py), so the rules read them without a load step; a closed order leaves the
SQLite store's memory once committed (it stays in its tables, and the memory store keeps
it for its reads). Records are immutable: a change is a new record put in the batch, kept
by the store (`_keep_*`) and undone with the op if it is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..chat.shop import Order, Product


@dataclass(slots=True, eq=False)
class ShopState:
    products: dict[int, Product] = field(default_factory=dict)
    orders: dict[int, Order] = field(default_factory=dict)  # open ones (memory: all)
    keep_closed: bool = True  # memory keeps closed orders too; SQLite drops them here
    next_product_id: int = 1
    next_order_id: int = 1

    def publish(self, b: ShopOverlay) -> None:
        self.products.update(b.products)
        for oid, o in b.orders.items():
            if o.open or self.keep_closed:
                self.orders[oid] = o
            else:
                self.orders.pop(oid, None)
        self.next_product_id = b.next_product_id
        self.next_order_id = b.next_order_id


class ShopOverlay:
    """The shop state of one batch; implements the shop part of chat.plan.Plan."""

    ts: int
    _undo: list[Any] | None  # overlay.Overlay's undo log
    next_product_id: int
    next_order_id: int

    def _put(self, d: dict[Any, Any], key: Any, value: Any) -> None:
        raise NotImplementedError

    def _take(self, name: str, bump: int = 1) -> int:
        raise NotImplementedError

    def _init_shop(self, state: ShopState, parent: ShopOverlay | None) -> None:
        self.shop = state
        self.products: dict[int, Product] = {}
        self.orders: dict[int, Order] = {}
        src: ShopOverlay | ShopState = parent if parent is not None else state
        self.next_product_id = src.next_product_id
        self.next_order_id = src.next_order_id
        self.base_products = parent.products if parent is not None else {}
        self.base_orders = parent.orders if parent is not None else {}

    def product(self, pid: int) -> Product | None:
        for d in (self.products, self.base_products, self.shop.products):
            if pid in d:
                return d[pid]
        return None

    def order(self, oid: int) -> Order | None:
        for d in (self.orders, self.base_orders, self.shop.orders):
            if oid in d:
                o: Order = d[oid]
                return o if o.open else None
        return None

    def new_product_id(self) -> int:
        return self._take("next_product_id")

    def new_order_id(self) -> int:
        return self._take("next_order_id")

    def put_product(self, p: Product, *, new: bool = False) -> None:
        self._put(self.products, p.id, p)
        self._keep_product(p, new=new)

    def put_order(self, o: Order, *, new: bool = False) -> None:
        self._put(self.orders, o.id, o)
        self._keep_order(o, new=new)

    def _keep_product(self, p: Product, *, new: bool) -> None:
        raise NotImplementedError

    def _keep_order(self, o: Order, *, new: bool) -> None:
        raise NotImplementedError
