"""The wallet's messages: balance, transfers between users, red packets, tasks and items
(SPEC.md section 25).

Declared like the social layer's (codec.py). Amounts are integers (Mi Coins, no
fractions). Every request that moves coins carries an idempotency `key` chosen by the
client: its retry gets the first answer again with `duplicate` true, the same key with
other parameters is refused (3202 IDEMPOTENCY_MISMATCH). Changes reach every device of the
user as update-log entries of kind 4 WALLET.
"""

from __future__ import annotations

from .base import Message, MessageType
from .codec import OneOf, Record, message, record, wire

__all__ = [
    "MAX_AMOUNT",
    "MAX_KEY",
    "MAX_MEMO",
    "PACKET_STATES",
    "SPLITS",
    "TASK_TRIGGERS",
    "TRANSFER_CODES",
    "TRANSFER_PHASES",
    "WALLET_CLASSES",
    "WALLET_CLIENT_TYPES",
    "WALLET_SERVER_TYPES",
    "CheckIn",
    "CheckedIn",
    "ClaimEntry",
    "GetRedPacket",
    "GetWallet",
    "ItemDone",
    "ItemEntry",
    "ItemGift",
    "ItemList",
    "ItemRedeem",
    "ListItems",
    "ListTasks",
    "ListTransfers",
    "Paid",
    "Pay",
    "RedPacket",
    "RedPacketClaim",
    "RedPacketClaimed",
    "RedPacketSend",
    "RedPacketSent",
    "TaskDone",
    "TaskEntry",
    "TaskList",
    "TransferEntry",
    "TransferList",
    "Wallet",
]

M = MessageType
USER_MAX = 256  # the decoder cap of a username field
MAX_AMOUNT = 10**15  # coins in one transfer at most
MAX_MEMO = 256  # characters
MAX_KEY = 64  # characters of an idempotency key
MAX_SHARES = 1000  # shares of one red packet at most
# what a transfer is for, and which step of it this is
TRANSFER_CODES = (
    "mint",
    "pay",
    "reward",
    "red_packet",
    "claim",
    "hold",
    "reversal",
    "expired",
    "order",  # a shop order's payment (SPEC.md 30)
)
TRANSFER_PHASES = ("posted", "pending", "post", "void")
SPLITS = ("random", "equal")
PACKET_STATES = ("open", "emptied", "expired")
TASK_TRIGGERS = ("checkin", "message", "invite", "forum")


# --------------------------------------------------------------------------- nested maps


@record()
class TransferEntry(Record):
    """One transfer, as history and WALLET entries show it."""

    id: int
    sender: str = wire("from", max=USER_MAX)  # a username, or "*issuance", "*rewards", ...
    to: str = wire(max=USER_MAX)
    amount: int
    code: str = wire(choices=TRANSFER_CODES)
    phase: str = wire(choices=TRANSFER_PHASES)
    ts: int
    pending_id: int | None = None  # post and void: the pending transfer they close
    expires: int | None = None  # pending: when it times out (ms)
    ref: int | None = None  # the red packet (or item, or corrected transfer) it belongs to
    memo: str | None = wire(default=None, max=MAX_MEMO)


@record()
class ClaimEntry(Record):
    user: str = wire(max=USER_MAX)
    amount: int


@record()
class TaskDone(Record):
    task: str = wire(max=64)
    reward: int
    transfer: int | None = None
    item: str | None = wire(default=None, max=32)  # the code of an item it granted


@record()
class TaskEntry(Record):
    name: str = wire(max=64)
    trigger: str = wire(choices=TASK_TRIGGERS)
    reward: int
    period: int  # ms; 0: one period for ever
    cap: int  # completions paid per period
    done: int  # completions paid in the current period
    item: str | None = wire(default=None, max=32)  # the kind of item each completion grants


@record()
class ItemEntry(Record):
    code: str = wire(max=32)
    kind: str = wire(max=32)
    source: str = wire(max=96)  # "admin" or "task:<name>"
    created: int
    redeemed: int | None = None  # ms; absent while it can be redeemed


# --------------------------------------------------------------------------- balance, history


@message(M.GET_WALLET)
class GetWallet(Message):
    pass


@message(M.WALLET)
class Wallet(Message):
    """The balance: `balance - pending_out` is what the user can spend."""

    balance: int
    pending_out: int  # reserved by this user's pending transfers (red packets)
    pending_in: int  # on its way to this user


@message(M.LIST_TRANSFERS)
class ListTransfers(Message):
    """Newest first; continue with `before` = the last transfer id of a page."""

    limit: int | None = wire(default=None, lo=1, hi=200)
    before: int | None = None


@message(M.TRANSFER_LIST)
class TransferList(Message):
    transfers: tuple[TransferEntry, ...]
    more: bool = False


# --------------------------------------------------------------------------- payments


@message(M.PAY)
class Pay(Message):
    to: str = wire(max=USER_MAX)
    amount: int = wire(lo=1, hi=MAX_AMOUNT)
    key: str = wire(min=1, max=MAX_KEY)
    memo: str = wire(default="", max=MAX_MEMO)


@message(M.PAID)
class Paid(Message):
    transfer: TransferEntry
    conv: int  # the direct conversation, and the position of its "coins" event
    pos: int
    balance: int
    pending_out: int
    pending_in: int
    duplicate: bool = False


# --------------------------------------------------------------------------- red packets


@message(
    M.RED_PACKET_SEND,
    wire_order=("to", "group", "amount", "count", "split", "key", "memo"),
    rules=(OneOf("to", "group"),),
)
class RedPacketSend(Message):
    to: str = wire(absent="", unless="group", max=USER_MAX)  # a direct packet's receiver
    amount: int = wire(lo=1, hi=MAX_AMOUNT)
    count: int = wire(lo=1, hi=MAX_SHARES)
    key: str = wire(min=1, max=MAX_KEY)
    split: str = wire(default="random", choices=SPLITS)
    memo: str = wire(default="", max=MAX_MEMO)
    group: int | None = None  # the group to send it to, instead of `to`


@message(M.RED_PACKET_SENT)
class RedPacketSent(Message):
    packet: int
    conv: int
    pos: int  # the position of its "red_packet" event
    expires: int
    transfer: TransferEntry  # the reservation (pending)
    balance: int
    pending_out: int
    pending_in: int
    duplicate: bool = False


@message(M.RED_PACKET_CLAIM)
class RedPacketClaim(Message):
    packet: int


@message(M.RED_PACKET_CLAIMED)
class RedPacketClaimed(Message):
    packet: int
    amount: int
    transfer: int
    left: int  # shares not yet claimed
    duplicate: bool = False  # this user had claimed it before: the same share


@message(M.GET_RED_PACKET)
class GetRedPacket(Message):
    packet: int


@message(M.RED_PACKET)
class RedPacket(Message):
    packet: int
    sender: str = wire("from", max=USER_MAX)
    conv: int
    amount: int
    count: int
    split: str = wire(choices=SPLITS)
    expires: int
    state: str = wire(choices=PACKET_STATES)
    claims: tuple[ClaimEntry, ...] = wire(max_items=MAX_SHARES)
    memo: str | None = wire(default=None, max=MAX_MEMO)


# --------------------------------------------------------------------------- tasks, items


@message(M.CHECK_IN)
class CheckIn(Message):
    key: str | None = wire(default=None, min=1, max=MAX_KEY)


@message(M.CHECKED_IN)
class CheckedIn(Message):
    tasks: tuple[TaskDone, ...]
    balance: int
    pending_out: int
    pending_in: int
    duplicate: bool = False


@message(M.LIST_TASKS)
class ListTasks(Message):
    pass


@message(M.TASK_LIST)
class TaskList(Message):
    tasks: tuple[TaskEntry, ...]


@message(M.LIST_ITEMS)
class ListItems(Message):
    pass


@message(M.ITEM_LIST)
class ItemList(Message):
    items: tuple[ItemEntry, ...]


@message(M.ITEM_GIFT)
class ItemGift(Message):
    code: str = wire(max=32)
    to: str = wire(max=USER_MAX)
    key: str | None = wire(default=None, min=1, max=MAX_KEY)


@message(M.ITEM_REDEEM)
class ItemRedeem(Message):
    code: str = wire(max=32)
    key: str | None = wire(default=None, min=1, max=MAX_KEY)


@message(M.ITEM_DONE)
class ItemDone(Message):
    item: ItemEntry
    duplicate: bool = False


WALLET_CLASSES: tuple[type[Message], ...] = (
    GetWallet,
    Wallet,
    ListTransfers,
    TransferList,
    Pay,
    Paid,
    RedPacketSend,
    RedPacketSent,
    RedPacketClaim,
    RedPacketClaimed,
    GetRedPacket,
    RedPacket,
    CheckIn,
    CheckedIn,
    ListTasks,
    TaskList,
    ListItems,
    ItemList,
    ItemGift,
    ItemRedeem,
    ItemDone,
)
WALLET_CLIENT_TYPES = frozenset(int(c.TYPE) for c in WALLET_CLASSES if c.FROM_CLIENT)
WALLET_SERVER_TYPES = frozenset(int(c.TYPE) for c in WALLET_CLASSES if not c.FROM_CLIENT)
