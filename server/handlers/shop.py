"""The shop (SPEC.md 30): PRODUCT_ADD, PRODUCT_STOCK, PRODUCT_CARD, ORDER_PLACE and
ORDER_STEP become operations (chat/ops.py) planned by chat/rules/shop.py inside the group
commit and answered after it (`answers`); LIST_PRODUCTS, GET_PRODUCT and LIST_ORDERS are
reads. A catalogue is a merchant account's: the handler reads the account kind (an
admin's setting, SPEC.md 29.4) into the op, and the rules refuse a non-merchant and a
product not the actor's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from liaotian.protocol import ErrorCode, MessageType, RequestError
from liaotian.protocol.shop import (
    GetProduct,
    ListOrders,
    ListProducts,
    OrderEntry,
    OrderInfo,
    OrderList,
    OrderPlace,
    OrderStep,
    ProductAdd,
    ProductCard,
    ProductEntry,
    ProductInfo,
    ProductList,
    ProductStock,
)
from liaotian.protocol.text import check_field
from liaotian.protocol.wallet import TransferEntry

from ..chat import ops
from ..chat.policy import Policy
from ..chat.rules.shop import order_map, product_map
from ..chat.shop import Product
from ..net.peer import Peer
from ..net.router import Router
from ..store import NearbyStore, ShopStore, Store
from ..store.contract import KIND_MERCHANT
from .throttle import WriteBudget
from .wallet import Expiry

ORDER_TTL_MS = 86_400_000  # an order not accepted within a day is voided and refunded
ORDER_FULFIL_MS = 7 * 86_400_000  # an accepted order not fulfilled within a week: the same


class ShopStoreAll(Store, NearbyStore, ShopStore, Protocol):
    """The store the shop's handlers need."""


def answer_product(op: ops.AddProduct | ops.SetStock) -> tuple[bytes, int]:
    r = op.result
    assert r is not None
    return ProductInfo(
        rid=op.rid, product=ProductEntry.from_wire(r["product"], op.rid), duplicate=op.duplicate
    ).encode(), int(MessageType.PRODUCT_INFO)


def answer_order(op: ops.PlaceOrder | ops.OrderStep) -> tuple[bytes, int]:
    r = op.result
    assert r is not None
    t = r.get("transfer")
    return OrderInfo(
        rid=op.rid,
        order=OrderEntry.from_wire(r["order"], op.rid),
        transfer=TransferEntry.from_wire(t, op.rid) if t is not None else None,
        duplicate=op.duplicate,
    ).encode(), int(MessageType.ORDER_INFO)


def answers(expiry: Expiry) -> dict[type, Callable[[Any], tuple[bytes, int]]]:
    """Operation type -> its answer; a placed order also tells `expiry` when it is due."""

    def placed(op: ops.PlaceOrder) -> tuple[bytes, int]:
        t = op.result.get("transfer") if op.result is not None else None
        if t is not None and t.get("expires"):
            expiry.soon(t["expires"])
        return answer_order(op)

    return {
        ops.AddProduct: answer_product,
        ops.SetStock: answer_product,
        ops.PlaceOrder: placed,
        ops.OrderStep: answer_order,
    }


class ShopHandlers:
    def __init__(
        self,
        store: ShopStoreAll,
        writes: WriteBudget,
        policy: Policy,
        clock: Callable[[], float],
        *,
        order_ttl_ms: int = ORDER_TTL_MS,
        order_fulfil_ms: int = ORDER_FULFIL_MS,
    ) -> None:
        self.store = store
        self.writes = writes
        self.policy = policy
        self.clock = clock
        self.order_ttl_ms = order_ttl_ms
        self.order_fulfil_ms = order_fulfil_ms

    def route(self, r: Router) -> None:
        r.route(ProductAdd, self.add)
        r.route(ProductStock, self.stock)
        r.route(ListProducts, self.list_products)
        r.route(GetProduct, self.get_product)
        r.route(ProductCard, self.card)
        r.route(OrderPlace, self.place)
        r.route(OrderStep, self.step)
        r.route(ListOrders, self.list_orders)

    def _submit(self, conn: Peer, op: ops.WalletOp) -> None:
        self.writes.charge(conn.user_id, self.clock())
        self.store.submit(op)

    def _base(self, conn: Peer, msg: Any) -> dict[str, Any]:
        return {"actor": conn.user_id, "session": conn.id, "rid": msg.rid, "policy": self.policy}

    async def _merchant(self, conn: Peer) -> bool:
        """Whether the requester's account is a merchant's (for the rules to decide)."""
        return await self.store.account_kind(conn.user_id) == KIND_MERCHANT

    # ------------------------------------------------------------------ writes

    async def add(self, conn: Peer, msg: ProductAdd) -> None:
        check_field("title", msg.title)
        check_field("description", msg.description)
        merchant = await self._merchant(conn)
        if msg.image is not None and len(msg.image) != 32:
            raise RequestError(ErrorCode.INVALID_FIELD, "image must be a blob's SHA-256")
        self._submit(
            conn,
            ops.AddProduct(
                **self._base(conn, msg),
                title=msg.title,
                description=msg.description,
                price=msg.price,
                stock=msg.stock,
                image=msg.image or b"",
                requires=msg.requires or "",
                key=msg.key or "",
                merchant=merchant,
            ),
        )

    async def stock(self, conn: Peer, msg: ProductStock) -> None:
        merchant = await self._merchant(conn)
        self._submit(
            conn,
            ops.SetStock(
                **self._base(conn, msg), product=msg.product, stock=msg.stock, merchant=merchant
            ),
        )

    def card(self, conn: Peer, msg: ProductCard) -> None:
        self._submit(
            conn, ops.ShareProduct(**self._base(conn, msg), product=msg.product, to=msg.to)
        )

    def place(self, conn: Peer, msg: OrderPlace) -> None:
        self._submit(
            conn,
            ops.PlaceOrder(
                **self._base(conn, msg),
                product=msg.product,
                qty=msg.qty,
                code=msg.code or "",
                key=msg.key,
                timeout_ms=self.order_ttl_ms,
            ),
        )

    def step(self, conn: Peer, msg: OrderStep) -> None:
        self._submit(
            conn,
            ops.OrderStep(
                **self._base(conn, msg),
                order=msg.order,
                step=msg.step,
                key=msg.key or "",
                fulfil_ms=self.order_fulfil_ms,
            ),
        )

    # ------------------------------------------------------------------ reads

    async def _entry(self, p: Product) -> ProductEntry:
        names = await self.store.usernames([p.merchant])
        return ProductEntry.from_wire(product_map(lambda u: names.get(u, ""), p), 0)

    async def list_products(self, conn: Peer, msg: ListProducts) -> None:
        uid = await self.store.user_id(msg.merchant)
        if uid is None:
            raise RequestError(ErrorCode.UNKNOWN_USER)
        products = await self.store.products_of(uid)
        names = {uid: msg.merchant}
        entries = tuple(
            ProductEntry.from_wire(product_map(lambda u: names.get(u, ""), p), msg.rid)
            for p in products
        )
        conn.send(ProductList(rid=msg.rid, products=entries))

    async def get_product(self, conn: Peer, msg: GetProduct) -> None:
        p = await self.store.product_by_id(msg.product)
        if p is None:
            raise RequestError(ErrorCode.UNKNOWN_PRODUCT)
        conn.send(ProductInfo(rid=msg.rid, product=await self._entry(p)))

    async def list_orders(self, conn: Peer, msg: ListOrders) -> None:
        orders = await self.store.orders_of(conn.user_id, as_merchant=msg.merchant, limit=msg.limit)
        users = {u for o in orders for u in (o.buyer, o.merchant)}
        names = await self.store.usernames(users)
        titles: dict[int, str] = {}
        for pid in {o.product for o in orders}:
            p = await self.store.product_by_id(pid)
            titles[pid] = p.title if p is not None else ""
        entries = tuple(
            OrderEntry.from_wire(
                order_map(lambda u: names.get(u, ""), o, titles.get(o.product, "")), msg.rid
            )
            for o in orders
        )
        conn.send(OrderList(rid=msg.rid, orders=entries))
