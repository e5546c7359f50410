"""The shop in SQLite (schema migration 13): products and orders.

The writer holds every product and every open order in memory (loaded at open by `load`,
into the overlay's ShopState): the rules read them without a load step, and a closed order
leaves memory once committed. The batch stages a changed record as one upsert
(`PRODUCT_UPSERT`, `ORDER_UPSERT`); the reads go to the reader connections.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from ...chat.shop import OPEN_STATES, Order, Product
from ..shop_overlay import ShopState

PRODUCT_COLUMNS = "id, merchant, title, description, price, stock, image, requires, created"
ORDER_COLUMNS = (
    "id, product, buyer, merchant, qty, amount, pending, state, created, updated, conv, item"
)
PRODUCT_UPSERT = (
    f"INSERT OR REPLACE INTO shop_products ({PRODUCT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
ORDER_UPSERT = (
    f"INSERT OR REPLACE INTO shop_orders ({ORDER_COLUMNS}) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_OPEN = ", ".join(str(s) for s in sorted(OPEN_STATES))


def product_row(p: Product) -> tuple[Any, ...]:
    return (
        p.id,
        p.merchant,
        p.title,
        p.description,
        p.price,
        p.stock,
        p.image,
        p.requires,
        p.created,
    )


def order_row(o: Order) -> tuple[Any, ...]:
    return (
        o.id,
        o.product,
        o.buyer,
        o.merchant,
        o.qty,
        o.amount,
        o.pending,
        o.state,
        o.created,
        o.updated,
        o.conv,
        o.item,
    )


def product_of(r: Any) -> Product:
    return Product(r[0], r[1], r[2], r[3], r[4], r[5], bytes(r[6]), r[7], r[8])


def order_of(r: Any) -> Order:
    return Order(*r)


def load(db: sqlite3.Connection, state: ShopState) -> None:
    """In the writer thread, at open: the catalogue, the open orders, the next ids."""
    state.keep_closed = False
    for r in db.execute(f"SELECT {PRODUCT_COLUMNS} FROM shop_products"):
        p = product_of(r)
        state.products[p.id] = p
    for r in db.execute(f"SELECT {ORDER_COLUMNS} FROM shop_orders WHERE state IN ({_OPEN})"):
        o = order_of(r)
        state.orders[o.id] = o
    row = db.execute(
        "SELECT (SELECT coalesce(max(id), 0) FROM shop_products), "
        "(SELECT coalesce(max(id), 0) FROM shop_orders)"
    ).fetchone()
    state.next_product_id, state.next_order_id = row[0] + 1, row[1] + 1


class ShopReads:
    """Mixed into SQLiteStore: the shop's reads (contract.ShopStore)."""

    async def _rows(self, sql: str, args: Any = ()) -> list[Any]:
        raise NotImplementedError

    async def products_of(self, merchant: int) -> list[Product]:
        rows = await self._rows(
            f"SELECT {PRODUCT_COLUMNS} FROM shop_products WHERE merchant = ? ORDER BY id",
            (merchant,),
        )
        return [product_of(r) for r in rows]

    async def product_by_id(self, pid: int) -> Product | None:
        rows = await self._rows(f"SELECT {PRODUCT_COLUMNS} FROM shop_products WHERE id = ?", (pid,))
        return product_of(rows[0]) if rows else None

    async def order_by_id(self, oid: int) -> Order | None:
        rows = await self._rows(f"SELECT {ORDER_COLUMNS} FROM shop_orders WHERE id = ?", (oid,))
        return order_of(rows[0]) if rows else None

    async def orders_of(self, uid: int, *, as_merchant: bool, limit: int) -> list[Order]:
        column = "merchant" if as_merchant else "buyer"
        rows = await self._rows(
            f"SELECT {ORDER_COLUMNS} FROM shop_orders WHERE {column} = ? ORDER BY id DESC LIMIT ?",
            (uid, limit),
        )
        return [order_of(r) for r in rows]
