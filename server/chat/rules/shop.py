"""The shop (SPEC.md 30): catalogues, product cards, and orders paid through the wallet.

An order is the wallet's two-phase transfer (rules/wallet.py), never a parallel one:
placing it holds `qty x price` from the buyer for the merchant (hold(), code CODE_ORDER,
`ref` the order) and takes the units from the product's stock in the same plan, so one
commit keeps both or neither. The stock is read from the batch, which already holds every
earlier op's changes: buyers racing for the last units resolve in commit order, and the
stock never goes below zero. Fulfilling posts the transfer (close() for all of it);
declining, cancelling (the buyer's, before acceptance) and expiry void it (close() for 0)
and return the units. Expiry is the wallet's: the server's ExpirePending for the order's
pending transfer lands here (`expire`), so it survives restarts like any reservation.

A product may require an item (an F code, rules/tasks.py): ordering redeems the buyer's
item of that kind, named by its code, in the same plan: once, as every redemption. An
order that does not happen (declined, cancelled, expired) gives the code back in the
commit that voids its payment: the buyer did not get the product, so the code is theirs.

Accepting an order holds its payment until the fulfilment deadline (`fulfil_ms` after the
acceptance, 7 days by default) instead of the 24 hours an unaccepted order waits: the
merchant said yes, so the order must not silently lapse while they prepare it; but it is
not held forever either. The wallet's transfers are immutable, so the hold is moved the
wallet's way: the placed hold is voided and the same amount held again with the new
expiry, in the accept's commit (the order's `pending` names the new hold). At the deadline
the wallet's expiry voids it, the units return and the code is given back, as for an
unaccepted order.

Who may sell and whom a card may reach are decided here too: a catalogue is a merchant
account's (the op carries the account kind the handler read: an admin's setting, not the
chat's state), and a product card is a message, so it obeys the recipient's blocks and
privacy `messages` as SEND does (rules/send.may_message).

Idempotency is the wallet's keys: PLACE_ORDER's retry with its key is answered the first
answer again and holds nothing twice. Every change of an order is an "order" event in the
buyer-merchant direct conversation (and so reaches both users' devices).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import msgpack
from liaotian.protocol import ErrorCode

from ..ledger import CODE_EXPIRED, CODE_ORDER, WALLET_UPDATE, Transfer
from ..ops import AddProduct, OrderStep, PlaceOrder, Refused, SetStock, ShareProduct
from ..plan import Needs, Plan, pair
from ..shop import (
    ACCEPTED,
    CANCELLED,
    DECLINED,
    EXPIRED,
    FULFILLED,
    ORDER_STATES,
    PLACED,
    Order,
    Product,
)
from .send import may_message
from .tasks import item_map
from .wallet import (
    answered,
    balance_map,
    check_amount,
    close,
    direct_event,
    hold,
    keep_answer,
    params_of,
    transfer_map,
)

MAX_TITLE = 64
MAX_DESCRIPTION = 1000
MAX_STOCK = 1_000_000_000
MAX_QTY = 100
STEPS = ("accept", "fulfil", "decline", "cancel")


def product_map(username: Any, p: Product) -> dict[str, Any]:
    m: dict[str, Any] = {
        "id": p.id,
        "merchant": username(p.merchant),
        "title": p.title,
        "description": p.description,
        "price": p.price,
        "stock": p.stock,
    }
    if p.image:
        m["image"] = p.image
    if p.requires:
        m["requires"] = p.requires
    return m


def order_map(username: Any, o: Order, title: str = "") -> dict[str, Any]:
    m: dict[str, Any] = {
        "id": o.id,
        "product": o.product,
        "buyer": username(o.buyer),
        "merchant": username(o.merchant),
        "qty": o.qty,
        "amount": o.amount,
        "state": ORDER_STATES[o.state],
        "pending": o.pending,
        "created": o.created,
        "updated": o.updated,
    }
    if title:
        m["title"] = title
    return m


# ---------------------------------------------------------------------------- needs


def _needs_pair(n: Needs, a: int, b: int) -> None:
    for uid in (a, b):
        n.users.add(uid)
        n.accounts.add(uid)
        n.social.add(uid)
    n.pairs.add(pair(a, b))


def needs_catalogue(op: AddProduct | SetStock, n: Needs, plan: Plan) -> None:
    if op.key:
        n.keys.add((op.actor, op.key))
    n.users.add(op.actor)


def needs_card(op: ShareProduct, n: Needs, plan: Plan) -> None:
    if op.key:
        n.keys.add((op.actor, op.key))
    n.names.add(op.to)
    to = plan.user_id(op.to)
    if to is not None:
        _needs_pair(n, op.actor, to)


def needs_place(op: PlaceOrder, n: Needs, plan: Plan) -> None:
    if op.key:
        n.keys.add((op.actor, op.key))
    if op.code:
        n.items.add(op.code)
    p = plan.product(op.product)
    n.users.add(op.actor)
    n.accounts.add(op.actor)
    if p is not None:
        _needs_pair(n, op.actor, p.merchant)


def needs_order(oid: int, n: Needs, plan: Plan) -> None:
    """An open order, its pending transfer and its two parties."""
    o = plan.order(oid)
    if o is not None:
        n.pendings.add(o.pending)
        if o.item:
            n.items.add(o.item)
        _needs_pair(n, o.buyer, o.merchant)


def needs_step(op: OrderStep, n: Needs, plan: Plan) -> None:
    if op.key:
        n.keys.add((op.actor, op.key))
    n.users.add(op.actor)
    needs_order(op.order, n, plan)


# ---------------------------------------------------------------------------- catalogue


def _check_product(title: str, description: str, price: int, stock: int) -> None:
    if not 1 <= len(title) <= MAX_TITLE:
        raise Refused(ErrorCode.INVALID_FIELD, f"title must be 1..{MAX_TITLE} characters")
    if len(description) > MAX_DESCRIPTION:
        raise Refused(ErrorCode.INVALID_FIELD, f"description is longer than {MAX_DESCRIPTION}")
    check_amount(price)
    _check_stock(stock)


def _check_stock(stock: int) -> None:
    if type(stock) is not int or not 0 <= stock <= MAX_STOCK:
        raise Refused(ErrorCode.INVALID_FIELD, f"stock must be 0..{MAX_STOCK}")


def _merchant(op: AddProduct | SetStock) -> None:
    if not op.merchant:
        raise Refused(ErrorCode.NOT_MERCHANT)


def add_product(plan: Plan, op: AddProduct) -> None:
    params = params_of(op, op.title, op.description, op.price, op.stock, op.image, op.requires)
    if answered(plan, op, params):
        return
    _merchant(op)
    _check_product(op.title, op.description, op.price, op.stock)
    p = Product(
        plan.new_product_id(),
        op.actor,
        op.title,
        op.description,
        op.price,
        op.stock,
        op.image,
        op.requires,
        plan.ts,
    )
    plan.put_product(p, new=True)
    op.result = {"product": product_map(plan.username, p)}
    keep_answer(plan, op, params)


def _own_product(plan: Plan, actor: int, pid: int) -> Product:
    p = plan.product(pid)
    if p is None:
        raise Refused(ErrorCode.UNKNOWN_PRODUCT)
    if p.merchant != actor:
        raise Refused(ErrorCode.FORBIDDEN, "not your product")
    return p


def set_stock(plan: Plan, op: SetStock) -> None:
    params = params_of(op, op.product, op.stock)
    if answered(plan, op, params):
        return
    _merchant(op)
    _check_stock(op.stock)
    p = _own_product(plan, op.actor, op.product).with_stock(op.stock)
    plan.put_product(p)
    op.result = {"product": product_map(plan.username, p)}
    keep_answer(plan, op, params)


def share_card(plan: Plan, op: ShareProduct) -> None:
    """A product card in the direct conversation with `to`: a message, so only to one who
    may be messaged (not blocked by them; their privacy `messages` allows it)."""
    params = params_of(op, op.product, op.to)
    if answered(plan, op, params):
        return
    p = plan.product(op.product)
    if p is None:
        raise Refused(ErrorCode.UNKNOWN_PRODUCT)
    to = plan.user_id(op.to)
    if to is None:
        raise Refused(ErrorCode.UNKNOWN_USER)
    if to == op.actor:
        raise Refused(ErrorCode.CONFLICT, "not to yourself")
    if not may_message(plan.social_ro(to), op.actor):
        raise Refused(ErrorCode.NOT_ALLOWED)
    card = {"type": "product", **product_map(plan.username, p)}
    card["product"] = card.pop("id")
    conv, op.pos = direct_event(plan, op.actor, to, card)
    op.result = {"conv": conv, "pos": op.pos}
    keep_answer(plan, op, params)


# ---------------------------------------------------------------------------- orders


def _event(plan: Plan, o: Order, actor: int, title: str, **extra: Any) -> int:
    """An "order" event in the buyer-merchant conversation, from `actor`."""
    other = o.merchant if actor == o.buyer else o.buyer
    event = {
        "type": "order",
        "order": o.id,
        "product": o.product,
        "title": title,
        "qty": o.qty,
        "amount": o.amount,
        "state": ORDER_STATES[o.state],
        **extra,
    }
    return direct_event(plan, actor, other, event)[1]


def _consume(plan: Plan, actor: int, code: str, kind: str) -> str:
    """Redeem the buyer's item of `kind` named `code` (ITEM_UNAVAILABLE otherwise)."""
    item = plan.item(code) if code else None
    if item is None or item.owner != actor or item.redeemed or item.kind != kind:
        raise Refused(ErrorCode.ITEM_UNAVAILABLE, f"ordering this takes an unused {kind} of yours")
    plan.redeem_item(item)
    plan.log(
        actor,
        WALLET_UPDATE,
        msgpack.packb({"event": "item", "change": "redeemed", "item": item_map(item)}),
    )
    return item.code


def place(plan: Plan, op: PlaceOrder) -> None:
    params = params_of(op, op.product, op.qty, op.code)
    if answered(plan, op, params):
        return
    p = plan.product(op.product)
    if p is None:
        raise Refused(ErrorCode.UNKNOWN_PRODUCT)
    buyer, merchant = op.actor, p.merchant
    if buyer == merchant:
        raise Refused(ErrorCode.CONFLICT, "not from yourself")
    if type(op.qty) is not int or not 1 <= op.qty <= MAX_QTY:
        raise Refused(ErrorCode.INVALID_FIELD, f"qty must be 1..{MAX_QTY}")
    if buyer in plan.social_ro(merchant).blocked:
        raise Refused(ErrorCode.NOT_ALLOWED)
    if p.stock < op.qty:
        raise Refused(ErrorCode.OUT_OF_STOCK, f"{p.stock} left", data={"stock": p.stock})
    if op.timeout_ms <= 0:
        raise Refused(ErrorCode.INVALID_FIELD, "timeout_ms must be above 0")
    item = _consume(plan, buyer, op.code, p.requires) if p.requires else ""
    oid = plan.new_order_id()
    amount = op.qty * p.price
    check_amount(amount)
    t = hold(
        plan,
        buyer,
        merchant,
        amount,
        CODE_ORDER,
        expires=plan.ts + op.timeout_ms,
        ref=oid,
        memo=p.title,
        actor=buyer,
        key=op.key,
    )
    plan.put_product(p.with_stock(p.stock - op.qty))
    conv = plan.direct_conv(buyer, merchant)
    o = Order(
        oid, p.id, buyer, merchant, op.qty, amount, t.id, PLACED, plan.ts, plan.ts, conv, item
    )
    plan.put_order(o, new=True)
    op.pos = _event(plan, o, buyer, p.title, expires=t.expires)
    op.result = {
        "order": order_map(plan.username, o, p.title),
        "transfer": transfer_map(plan.username, t),
        **balance_map(plan.account(buyer)),
    }
    keep_answer(plan, op, params)


def _undo(plan: Plan, o: Order) -> str:
    """An order that did not happen: its units back to the product, its item (F code)
    back to the buyer; the product's title."""
    if o.item:
        item = plan.item(o.item)
        if item is not None and item.redeemed and item.owner == o.buyer:
            plan.restore_item(item)
            plan.log(
                o.buyer,
                WALLET_UPDATE,
                msgpack.packb({"event": "item", "change": "returned", "item": item_map(item)}),
            )
    p = plan.product(o.product)
    if p is None:
        return ""
    plan.put_product(p.with_stock(min(p.stock + o.qty, MAX_STOCK)))
    return p.title


def _title(plan: Plan, o: Order) -> str:
    p = plan.product(o.product)
    return p.title if p is not None else ""


def _reservation(plan: Plan, o: Order) -> Transfer:
    r = plan.pending(o.pending)
    if r is None:
        raise Refused(ErrorCode.INTERNAL_ERROR, "an open order's payment is not held")
    return r


def step(plan: Plan, op: OrderStep) -> None:
    params = params_of(op, op.order, op.step)
    if answered(plan, op, params):
        return
    if op.step not in STEPS:
        raise Refused(ErrorCode.INVALID_FIELD, f"step must be one of {', '.join(STEPS)}")
    o = plan.order(op.order)
    if o is None or op.actor not in (o.buyer, o.merchant):
        raise Refused(ErrorCode.UNKNOWN_ORDER)
    if (op.step == "cancel") != (op.actor == o.buyer):
        raise Refused(ErrorCode.FORBIDDEN, "the buyer cancels; the merchant does the rest")
    title = ""
    t: Transfer | None = None
    extra: dict[str, Any] = {}
    if op.step == "accept":
        if o.state != PLACED:
            raise Refused(ErrorCode.CONFLICT, "accepted already")
        title = _title(plan, o)
        o, t = _hold_until_fulfilled(plan, o, op, title)
        extra["expires"] = t.expires
    elif op.step == "fulfil":
        r = _reservation(plan, o)
        t = close(plan, r, r.amount, actor=op.actor, key=op.key)
        o = o.moved(FULFILLED, plan.ts)
        title = _title(plan, o)
    else:
        if op.step == "cancel" and o.state != PLACED:
            raise Refused(ErrorCode.CONFLICT, "the merchant accepted it: ask them")
        t = close(plan, _reservation(plan, o), 0, actor=op.actor, key=op.key)
        o = o.moved(CANCELLED if op.step == "cancel" else DECLINED, plan.ts)
        title = _undo(plan, o)
    plan.put_order(o)
    op.pos = _event(plan, o, op.actor, title, **extra)
    op.result = {"order": order_map(plan.username, o, title)}
    if t is not None:
        op.result["transfer"] = transfer_map(plan.username, t)
    keep_answer(plan, op, params)


def _hold_until_fulfilled(
    plan: Plan, o: Order, op: OrderStep, title: str
) -> tuple[Order, Transfer]:
    """Accepting: the payment held until the fulfilment deadline (see the module's
    docstring): the placed hold voided, the same amount held again, in this plan."""
    if op.fulfil_ms <= 0:
        raise Refused(ErrorCode.INVALID_FIELD, "fulfil_ms must be above 0")
    r = _reservation(plan, o)
    close(plan, r, 0, actor=op.actor)
    t = hold(
        plan,
        o.buyer,
        o.merchant,
        o.amount,
        CODE_ORDER,
        expires=plan.ts + op.fulfil_ms,
        ref=o.id,
        memo=title,
        actor=op.actor,
        key=op.key,
    )
    return replace(o.moved(ACCEPTED, plan.ts), pending=t.id), t


def expire(plan: Plan, reservation: Transfer) -> None:
    """The order's payment timed out unfulfilled: void it, return the units."""
    o = plan.order(reservation.ref)
    close(plan, reservation, 0, code=CODE_EXPIRED)
    if o is None:
        return
    o = o.moved(EXPIRED, plan.ts)
    title = _undo(plan, o)
    plan.put_order(o)
    _event(plan, o, o.merchant, title)
