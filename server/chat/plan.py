"""The planning interface: what the rules read and the writes they stage.

A store plans a group commit by running the rules of its write operations, one after
another, against one `Plan` (a batch). Each rule reads the state it needs through the
plan and stages its change as *named* writes (`add_member`, `relate`, `add_update`, ...);
the store decides how a named write is kept (SQL statements for SQLite, dictionaries in
memory). No rule sees SQL, a connection or a clock: the batch's time is `ts`.

Reads see the effects of the operations planned before in the same batch. A group handed
out by `group()` is the batch's private copy, to be changed only through the named writes
(relations and privacy too), which keep the batch and the stored state in step and are
undone if the operation is refused (`Refused`) later in its rule.

Before planning, the store makes sure the state an operation consults is loaded: the
rule's `needs` function fills a `Needs` with the names, users, groups and conversations
it will read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from .ledger import Account, Item, KeyRecord, Packet, Transfer
from .model import (
    ChannelMember,
    ChannelState,
    CommentState,
    GroupState,
    Member,
    PendingCallback,
    PostState,
    Social,
)
from .shop import Order, Product


@dataclass(slots=True)
class Needs:
    """What a batch must have loaded before an operation can be planned."""

    names: set[str] = field(default_factory=set)  # usernames to resolve
    users: set[int] = field(default_factory=set)  # update-log heads
    groups: set[int] = field(default_factory=set)  # group state (members, roles)
    social: set[int] = field(default_factory=set)  # contacts, blocks, privacy
    convs: set[int] = field(default_factory=set)  # last position of a conversation
    pairs: set[tuple[int, int]] = field(default_factory=set)  # direct conversations
    # channels (rules/channels.py): states, (channel, user) member and ban rows,
    # (channel, pos) posts, (channel, pos, user) likes, (channel, pos, n) comments and
    # (channel, author, cmid) posts by client message id
    channels: set[int] = field(default_factory=set)
    members: set[tuple[int, int]] = field(default_factory=set)
    posts: set[tuple[int, int]] = field(default_factory=set)
    likes: set[tuple[int, int, int]] = field(default_factory=set)
    comments: set[tuple[int, int, int]] = field(default_factory=set)
    post_cmids: set[tuple[int, int, str]] = field(default_factory=set)
    # the wallet (chat/ledger.py)
    accounts: set[int] = field(default_factory=set)  # balances
    keys: set[tuple[int, str]] = field(default_factory=set)  # idempotency keys (user, key)
    pendings: set[int] = field(default_factory=set)  # pending transfers, open or not
    packets: set[int] = field(default_factory=set)  # red packets
    tasks: set[int] = field(default_factory=set)  # users' task progress
    items: set[str] = field(default_factory=set)  # items by code


def pair(a: int, b: int) -> tuple[int, int]:
    """The key of the direct conversation of two users (the smaller id first)."""
    return (a, b) if a <= b else (b, a)


class Plan(Protocol):
    """One batch being planned. Implemented by each store (see the module docstring)."""

    ts: int  # the batch's time, ms since the epoch: every row it stages carries it
    # sends planned in this batch (and the batch it is planned on), by (sender, cmid)
    cmids: dict[tuple[int, str], Any]

    # ------------------------------------------------------------------ reads

    def user_id(self, name: str) -> int | None: ...
    def username(self, uid: int) -> str: ...
    def group_ro(self, conv: int) -> GroupState | None:
        """The group as it stands in this batch, for reading only."""

    def group(self, conv: int) -> GroupState | None:
        """The group for changing through the named writes (the batch's copy)."""

    def social_ro(self, uid: int) -> Social:
        """The user's relations and privacy as they stand in this batch (read only)."""

    def last_pos(self, conv: int) -> int: ...
    def planned_send(self, key: tuple[int, str]) -> Any:
        """The send with this (sender, cmid) planned earlier in this batch, if any."""

    # ------------------------------------------------------------------ allocation

    def direct_conv(self, a: int, b: int) -> int:
        """The direct conversation of two users, created if they have none."""

    def new_conv_id(self) -> int: ...
    def new_message_id(self) -> int: ...
    def next_seq(self, uid: int) -> int:
        """The next seq of the user's update log (allocated: use it)."""

    def next_pos(self, conv: int) -> int:
        """The next position of the conversation's timeline (allocated: use it)."""

    # ------------------------------------------------------------------ named writes

    def add_message(
        self, mid: int, conv: int, pos: int, sender: int, sender_seq: int, cmid: str, body: bytes
    ) -> None: ...
    def add_update(
        self,
        uid: int,
        seq: int,
        kind: int,
        *,
        message_id: int | None = None,
        data: bytes | None = None,
        push: bytes | None = None,
    ) -> None:
        """An entry of the user's update log; `push` (its encoded data) is also pushed to
        the user's live sessions once committed."""

    def log(self, uid: int, kind: int, data: bytes) -> int:
        """Append a non-message entry to a user's log and push it; returns its seq."""

    def create_group(
        self, conv: int, name: str, topic: str, owner: int, members: dict[int, Member]
    ) -> GroupState: ...
    def add_member(self, g: GroupState, uid: int, role: int, joined_pos: int) -> None: ...
    def remove_member(self, g: GroupState, uid: int) -> None: ...
    def set_role(self, g: GroupState, uid: int, role: int) -> None: ...
    def set_owner(self, g: GroupState, uid: int) -> None: ...
    def set_group_info(self, g: GroupState, name: str, topic: str) -> None: ...
    def count_groups(self, uid: int, *, owned: int = 0, joined: int = 0) -> None:
        """Keep the user's counts of groups owned and joined in step with membership."""

    def relate(self, a: int, b: int, kind: int) -> None:
        """Record relation `kind` of user a to user b (a contact, a request, a block)."""

    def add_user(self, username: str, password_hash: str) -> None:
        """A new account (REGISTER with an invitation code): its id is the store's, known
        once committed; the name is taken for the rest of the batch."""

    def name_taken(self, username: str) -> bool:
        """Whether an account of this name was added in this batch (or the one it is
        planned on); `user_id` answers for the committed ones."""

    def unrelate(self, a: int, b: int, kind: int) -> None: ...
    def set_privacy(
        self,
        uid: int,
        *,
        presence: int | None = None,
        profile: int | None = None,
        messages: int | None = None,
        groups: int | None = None,
        receipts: int | None = None,
        coins: int | None = None,
        nearby: int | None = None,
    ) -> None: ...
    def set_read_marker(self, uid: int, conv: int, pos: int) -> None:
        """Move the user's read marker of the conversation forward to `pos`."""

    def add_blob_refs(self, conv: int, pos: int, blobs: tuple[bytes, ...]) -> None:
        """The message at `pos` of `conv` references these blobs (SPEC.md 27.4): they are
        readable by its readers and never collected."""

    # ------------------------------------------------------------------ bots (rules/bots.py)

    def replace_message(self, mid: int, conv: int, pos: int, body: bytes) -> None:
        """A stored message's map is `body` from now on (a bot's edit): history and every
        later sync of the log entries that name it carry the new map."""

    def add_callback(self, cb: PendingCallback) -> None:
        """Keep a press pending until the bot answers it or it expires."""

    def drop_callback(self, callback: int) -> None:
        """The callback is answered: it is no longer pending."""

    # ------------------------------------------------------------------ the wallet
    # (chat/ledger.py). The rules compute every new balance; the store keeps them.

    def account(self, acct: int) -> Account:
        """The account as it stands in this batch (read only: set_account changes it)."""

    def pending(self, tid: int) -> Transfer | None:
        """The pending transfer `tid` if it is open (not posted, voided or expired)."""

    def packet_ro(self, pid: int) -> Packet | None:
        """The red packet as it stands in this batch, for reading only."""

    def packet(self, pid: int) -> Packet | None:
        """The red packet for changing through the named writes (the batch's copy)."""

    def key_record(self, uid: int, key: str) -> KeyRecord | None: ...
    def task_progress(self, uid: int, task: str) -> tuple[int, int]:
        """(period, completions in it) of the user's newest period of the task."""

    def item_ro(self, code: str) -> Item | None: ...
    def item(self, code: str) -> Item | None:
        """The item for changing through the named writes (the batch's copy)."""

    def new_transfer_id(self) -> int: ...
    def new_packet_id(self) -> int: ...
    def new_wallet_item_id(self) -> int: ...

    def add_transfer(self, t: Transfer) -> None:
        """Keep a transfer (immutable); a PENDING one is open until closed, a POST or VOID
        closes its pending transfer. Balances change only by set_account."""

    def set_account(self, acct: int, a: Account) -> None: ...
    def add_packet(self, p: Packet) -> None: ...
    def add_claim(self, p: Packet, uid: int, amount: int, transfer: int) -> None: ...
    def close_packet(self, p: Packet, state: int) -> None: ...
    def record_key(self, uid: int, key: str, rec: KeyRecord) -> None: ...
    def count_task(self, uid: int, task: str, period: int, count: int) -> None:
        """The user's completions of the task in `period` are `count` now."""

    def add_item(self, item: Item) -> None: ...
    def give_item(self, item: Item, owner: int) -> None: ...
    def redeem_item(self, item: Item) -> None: ...
    def restore_item(self, item: Item) -> None:
        """Undo a redemption: the item can be redeemed again (an order that did not happen
        gives back the F code it took)."""

    # ------------------------------------------------------------------ the shop
    # (chat/shop.py). Products and open orders are immutable records: put replaces.

    def product(self, pid: int) -> Product | None: ...
    def order(self, oid: int) -> Order | None:
        """The order if it is open (placed or accepted); closed ones read as absent."""

    def new_product_id(self) -> int: ...
    def new_order_id(self) -> int: ...
    def put_product(self, p: Product, *, new: bool = False) -> None: ...
    def put_order(self, o: Order, *, new: bool = False) -> None: ...


class ChannelPlan(Plan, Protocol):
    """The Plan with channels (rules/channels.py). A channel is read and written by key,
    one row at a time: nothing loads or iterates its members."""

    # ------------------------------------------------------------------ reads

    def channel(self, conv: int) -> ChannelState | None: ...
    def channel_member(self, conv: int, uid: int) -> ChannelMember | None: ...
    def channel_banned(self, conv: int, uid: int) -> bool: ...
    def channel_post(self, conv: int, pos: int) -> PostState | None: ...
    def channel_liked(self, conv: int, pos: int, uid: int) -> bool: ...
    def channel_comment(self, conv: int, pos: int, n: int) -> CommentState | None: ...
    def channel_post_by_cmid(self, conv: int, author: int, cmid: str) -> int | None:
        """The position of the author's post with this client message id, if any."""

    def new_item_id(self) -> int:
        """An id for a post or a comment (one id space: the search index keys both)."""

    # ------------------------------------------------------------------ named writes

    def put_channel(self, ch: ChannelState, *, new: bool = False) -> None:
        """Keep the channel's row (`new`: its conversation too)."""

    def put_channel_member(self, conv: int, uid: int, m: ChannelMember | None) -> None:
        """Keep a member's row; None: the member is gone."""

    def set_channel_ban(self, conv: int, uid: int, banned: bool, by: int) -> None: ...
    def add_post(self, conv: int, pos: int, post: PostState, cmid: str, text: str) -> None: ...
    def put_post(self, conv: int, pos: int, post: PostState) -> None:
        """Keep a changed post (deleted, counts); a deleted post's text is dropped."""

    def set_like(self, conv: int, pos: int, uid: int, liked: bool) -> None: ...
    def add_comment(self, conv: int, pos: int, n: int, c: CommentState, text: str) -> None: ...
    def put_comment(self, conv: int, pos: int, n: int, c: CommentState) -> None:
        """Keep a changed (deleted) comment; its text is dropped."""
