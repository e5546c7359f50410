"""`client.shop`: merchants' catalogues and orders paid in coins (SPEC.md 30).

    products = await client.shop.products("beanery")          # a merchant's catalogue
    order = await client.shop.order(products[0].id, qty=2)    # the coins are held
    await client.shop.card(products[0].id, "bob")             # a product card to a friend
    # the merchant:
    p = await client.shop.add("Flat white", price=12, stock=50)
    await client.shop.accept(order.order.id); await client.shop.fulfil(order.order.id)

Placing an order holds its price from your balance (a pending transfer to the merchant);
fulfilling moves it, declining, cancelling (yours, before acceptance) or expiry returns
it. Ordering carries an idempotency key (made here, or yours) and is repeated with it
until answered, like the wallet's payments: a retried order is one order. Every change of
an order is an "order" event in the buyer-merchant conversation. Refusals raise
RequestError: OUT_OF_STOCK, INSUFFICIENT_FUNDS, ITEM_UNAVAILABLE (an F code is needed),
UNKNOWN_PRODUCT, UNKNOWN_ORDER, NOT_MERCHANT, FORBIDDEN, CONFLICT.
"""

from __future__ import annotations

import builtins

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
from liaotian.protocol.social import Ok

from .facade import Facade
from .wallet import keyed, new_key

__all__ = ["Shop"]


class Shop(Facade):
    """Shop requests of one client (keyed ones retried like the wallet's)."""

    __slots__ = ()

    async def products(self, merchant: str) -> builtins.list[ProductEntry]:
        got = await self._ask(ListProducts(rid=0, merchant=merchant), ProductList, retry=True)
        return builtins.list(got.products)

    async def product(self, product: int) -> ProductEntry:
        return (
            await self._ask(GetProduct(rid=0, product=product), ProductInfo, retry=True)
        ).product

    async def orders(self, *, merchant: bool = False, limit: int = 50) -> builtins.list[OrderEntry]:
        """My orders as buyer (or, `merchant`, those placed with me), newest first."""
        got = await self._ask(
            ListOrders(rid=0, merchant=merchant, limit=limit), OrderList, retry=True
        )
        return builtins.list(got.orders)

    async def order(
        self, product: int, qty: int = 1, *, code: str | None = None, key: str | None = None
    ) -> OrderInfo:
        """Order `qty` units (`code`: the F code a gated product takes)."""
        return await keyed(
            self._session,
            OrderPlace(rid=0, product=product, qty=qty, code=code, key=key or new_key()),
            OrderInfo,
        )

    async def _step(self, order: int, step: str, key: str | None) -> OrderInfo:
        return await keyed(
            self._session, OrderStep(rid=0, order=order, step=step, key=key or new_key()), OrderInfo
        )

    async def accept(self, order: int, *, key: str | None = None) -> OrderInfo:
        return await self._step(order, "accept", key)

    async def fulfil(self, order: int, *, key: str | None = None) -> OrderInfo:
        """Post the order's payment to me (the merchant)."""
        return await self._step(order, "fulfil", key)

    async def decline(self, order: int, *, key: str | None = None) -> OrderInfo:
        return await self._step(order, "decline", key)

    async def cancel(self, order: int, *, key: str | None = None) -> OrderInfo:
        """Cancel my order before the merchant accepts it."""
        return await self._step(order, "cancel", key)

    async def card(self, product: int, to: str) -> None:
        """Send a product card to `to`."""
        await self._ask(ProductCard(rid=0, product=product, to=to), Ok, retry=False)

    # ------------------------------------------------------------------ the merchant's

    async def add(
        self,
        title: str,
        *,
        price: int,
        stock: int,
        description: str = "",
        image: bytes | None = None,
        requires: str | None = None,
        key: str | None = None,
    ) -> ProductEntry:
        """A product in my catalogue (a merchant account's)."""
        got = await keyed(
            self._session,
            ProductAdd(
                rid=0,
                title=title,
                price=price,
                stock=stock,
                description=description,
                image=image,
                requires=requires,
                key=key or new_key(),
            ),
            ProductInfo,
        )
        return got.product

    async def set_stock(self, product: int, stock: int) -> ProductEntry:
        got = await self._ask(
            ProductStock(rid=0, product=product, stock=stock), ProductInfo, retry=True
        )
        return got.product
