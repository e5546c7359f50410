"""The shop's state as plain data: products of a merchant's catalogue and orders.

An order is paid by the wallet's two-phase transfer (chat/ledger.py): placing it holds the
price from the buyer for the merchant (a PENDING transfer of code CODE_ORDER whose `ref` is
the order) and takes the units from the product's stock in the same commit; accepting it
only stops the buyer from cancelling; fulfilling it posts the transfer; declining or
cancelling voids it and returns the units; an order not fulfilled by the transfer's expiry
is voided by the wallet's ExpirePending (so it survives restarts) and returns the units.

Nothing here decides anything (rules/shop.py does) or knows where the data lives.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

PLACED, ACCEPTED, FULFILLED, DECLINED, CANCELLED, EXPIRED = 0, 1, 2, 3, 4, 5
ORDER_STATES = ("placed", "accepted", "fulfilled", "declined", "cancelled", "expired")
OPEN_STATES = frozenset((PLACED, ACCEPTED))


@dataclass(frozen=True, slots=True)
class Product:
    id: int
    merchant: int
    title: str
    description: str
    price: int  # coins per unit
    stock: int  # units available (orders placed take theirs at once)
    image: bytes = b""  # a media blob (SHA-256), or none
    requires: str = ""  # the kind of item (an F code) a buyer gives up to order it; "" none
    created: int = 0

    def with_stock(self, stock: int) -> Product:
        return replace(self, stock=stock)


@dataclass(frozen=True, slots=True)
class Order:
    id: int
    product: int
    buyer: int
    merchant: int
    qty: int
    amount: int  # coins held: qty x price at ordering
    pending: int  # the pending transfer holding them
    state: int
    created: int
    updated: int
    conv: int  # the buyer-merchant direct conversation
    item: str = ""  # the code of the item it consumed, if the product required one

    def moved(self, state: int, ts: int) -> Order:
        return replace(self, state=state, updated=ts)

    @property
    def open(self) -> bool:
        return self.state in OPEN_STATES
