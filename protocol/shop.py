"""The shop: merchants' catalogues, product cards and orders paid in coins (SPEC.md 30).

Prices and amounts are integer coins. An order is paid through the wallet's two-phase
transfer (code "order"), so its changes also reach the users' devices as WALLET entries;
every change of an order is an "order" event in the buyer-merchant conversation. Requests
that change something carry an optional idempotency `key` (the wallet's, SPEC.md 25.2).
"""

from __future__ import annotations

from .base import Message, MessageType
from .codec import Record, message, record, wire
from .wallet import MAX_AMOUNT, MAX_KEY, TransferEntry

__all__ = [
    "ORDER_STATES",
    "ORDER_STEPS",
    "SHOP_CLASSES",
    "GetProduct",
    "ListOrders",
    "ListProducts",
    "OrderEntry",
    "OrderInfo",
    "OrderList",
    "OrderPlace",
    "OrderStep",
    "ProductAdd",
    "ProductCard",
    "ProductEntry",
    "ProductInfo",
    "ProductList",
    "ProductStock",
]

M = MessageType
USER_MAX = 256
ORDER_STATES = ("placed", "accepted", "fulfilled", "declined", "cancelled", "expired")
ORDER_STEPS = ("accept", "fulfil", "decline", "cancel")
MAX_STOCK = 1_000_000_000


@record()
class ProductEntry(Record):
    id: int
    merchant: str = wire(max=USER_MAX)
    title: str = wire(max=64)
    description: str = wire(max=1000)
    price: int
    stock: int
    image: bytes | None = wire(default=None, max=32)  # a media blob (SHA-256)
    requires: str | None = wire(default=None, max=32)  # the item kind ordering takes


@record()
class OrderEntry(Record):
    id: int
    product: int
    buyer: str = wire(max=USER_MAX)
    merchant: str = wire(max=USER_MAX)
    qty: int
    amount: int
    state: str = wire(choices=ORDER_STATES)
    pending: int  # the pending transfer paying it
    created: int
    updated: int
    title: str | None = wire(default=None, max=64)


@message(M.PRODUCT_ADD)
class ProductAdd(Message):
    """A product in my catalogue (merchant accounts; NOT_MERCHANT otherwise)."""

    title: str = wire(min=1, max=64)
    price: int = wire(lo=1, hi=MAX_AMOUNT)
    stock: int = wire(lo=0, hi=MAX_STOCK)
    description: str = wire(default="", max=1000)
    image: bytes | None = wire(default=None, max=32)
    requires: str | None = wire(default=None, min=1, max=32)
    key: str | None = wire(default=None, min=1, max=MAX_KEY)


@message(M.PRODUCT_INFO)
class ProductInfo(Message):
    product: ProductEntry
    duplicate: bool = False


@message(M.PRODUCT_STOCK)
class ProductStock(Message):
    """Units of my product available from now on (answered PRODUCT_INFO)."""

    product: int
    stock: int = wire(lo=0, hi=MAX_STOCK)


@message(M.LIST_PRODUCTS)
class ListProducts(Message):
    merchant: str = wire(max=USER_MAX)


@message(M.PRODUCT_LIST)
class ProductList(Message):
    products: tuple[ProductEntry, ...]


@message(M.GET_PRODUCT)
class GetProduct(Message):
    product: int


@message(M.PRODUCT_CARD)
class ProductCard(Message):
    """Send a product card to `to` (a "product" event in our conversation; answered OK)."""

    product: int
    to: str = wire(max=USER_MAX)


@message(M.ORDER_PLACE)
class OrderPlace(Message):
    """Order `qty` units, paid by a pending transfer to the merchant (ORDER_INFO)."""

    product: int
    key: str = wire(min=1, max=MAX_KEY)
    qty: int = wire(default=1, lo=1, hi=100)
    code: str | None = wire(default=None, max=32)  # the item (F code) a gated product takes


@message(M.ORDER_INFO)
class OrderInfo(Message):
    order: OrderEntry
    transfer: TransferEntry | None = None  # the order's transfer step, when this moved one
    duplicate: bool = False


@message(M.ORDER_STEP)
class OrderStep(Message):
    """accept, fulfil, decline (the merchant's) or cancel (the buyer's, before acceptance)."""

    order: int
    step: str = wire(choices=ORDER_STEPS)
    key: str | None = wire(default=None, min=1, max=MAX_KEY)


@message(M.LIST_ORDERS)
class ListOrders(Message):
    """My orders as buyer, or (`merchant`) those placed with me; newest first."""

    merchant: bool = False
    limit: int = wire(default=50, lo=1, hi=200)


@message(M.ORDER_LIST)
class OrderList(Message):
    orders: tuple[OrderEntry, ...]


SHOP_CLASSES: tuple[type[Message], ...] = (
    ProductAdd,
    ProductInfo,
    ProductStock,
    ListProducts,
    ProductList,
    GetProduct,
    ProductCard,
    OrderPlace,
    OrderInfo,
    OrderStep,
    ListOrders,
    OrderList,
)
