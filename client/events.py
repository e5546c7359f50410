"""Typed events a `Client` yields, and the bounded queue that carries them.

    async for event in client:
        match event:
            case MessageReceived(seq=seq, message=msg): ...   # direct or group message
            case GroupChanged(change=change): ...      # joined, left, removed, role, renamed
            case ReadReceipt(conv=conv, user=user, pos=pos): ...
            case ContactEvent(event=what, user=user): ...
            case TypingEvent(user=user, typing=on, group=group): ...
            case PresenceChanged(user=user, online=online): ...
            case ChannelNewsEvent(channel=ch, pos=pos): ...   # fetch the channel's new posts
            case ChannelChanged(event=what, channel=ch): ...  # joined, left, banned
            case Resync(head=head): ...        # refetch what you show through client.history()
            case CaughtUp(head=head): ...      # everything up to the log's head is queued
            case Disconnected() | Reconnected(): ...   # connection state, for a status line

Two families:

* **Log events** (`MessageReceived`, `GroupChanged`, `ReadReceipt`, `ContactEvent`,
  `WalletChanged`, `ChannelChanged`) are entries of the user's update log. They carry its
  `seq`, arrive exactly once and in log order, and the cursor covers them only once the
  application has taken them from `async for`.
* **Ephemeral events** (`TypingEvent`, `PresenceChanged`, `ChannelNewsEvent`) are pushes
  that the server never stores: no seq, not replayed after a reconnect, delivered as
  received and dropped (not queued, never blocking the reader) when the event queue is
  full.

The state events (`Resync`, `CaughtUp`, `Disconnected`, `Reconnected`) are informational;
the client reconnects on its own. `CaughtUp` is the one to wait for when an application
needs to know it has seen everything: it follows the last entry of each (re)connect's SYNC.

Group messages are `MessageReceived` events whose `message.group` is set (it equals
`message.conv`). Membership and metadata changes of a group (SPEC.md 17.4: created, added,
removed, left, role, owner, renamed, topic) are entries of the same timeline, but the client
delivers them as `GroupChanged` events, never as `MessageReceived`: `change` is the typed
`GroupEvent`, `message` the raw timeline entry (its `event` map; text and cmid are empty,
`sender` is the member who acted). `GroupEvent.from_message` reads the same entries out of a
`history()` page.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from liaotian.protocol import ChatMessage, Update, UpdateKind

from .bot_events import CallbackAnswered, CallbackQuery, MessageEdited, bot_event_from_update

__all__ = [
    "CONTACT_EVENTS",
    "MEMBERSHIP_CHANGES",
    "CallbackAnswered",
    "CallbackQuery",
    "CaughtUp",
    "ChannelChanged",
    "ChannelNewsEvent",
    "ClientEvent",
    "ContactEvent",
    "Disconnected",
    "EphemeralEvent",
    "EventQueue",
    "GroupChanged",
    "GroupEvent",
    "LogEvent",
    "MessageEdited",
    "MessageReceived",
    "PresenceChanged",
    "ReadReceipt",
    "Reconnected",
    "Resync",
    "StateEvent",
    "TypingEvent",
    "WalletChanged",
    "event_from_update",
]

# CONTACT update events. "changed" is the actor's own copy (their other devices learn that
# the contact list changed); the others are what the other party experiences.
CONTACT_EVENTS = ("request", "accepted", "declined", "cancelled", "removed", "changed")

# Group timeline event types that change who is in the group or what they may do.
MEMBERSHIP_CHANGES = frozenset({"created", "added", "removed", "left", "role", "owner"})
# Timeline events of the wallet (SPEC.md 25.2): delivered as MessageReceived (m.event)
WALLET_EVENTS = frozenset(
    {"coins", "red_packet", "red_packet_claim", "red_packet_expired", "item", "order", "product"}
)


@dataclass(frozen=True, slots=True)
class GroupEvent:
    """A typed view of a group timeline event (a message map with an "event" map).

    `type` is one of created, added, removed, left, renamed, topic, role, owner. `actor` is
    who did it (the message's sender); `users` lists the members added, removed, left or
    present at creation; `name`/`topic` are the new values (created, renamed, topic);
    `user`/`role` name the member whose role changed or the new owner (role, owner).
    """

    type: str
    group: int
    pos: int
    ts: int
    actor: str
    users: tuple[str, ...] = ()
    name: str | None = None
    topic: str | None = None
    user: str | None = None
    role: str | None = None
    raw: Any = None  # the event map as received (unknown keys of newer servers included)

    @classmethod
    def from_message(cls, m: ChatMessage) -> GroupEvent | None:
        ev = m.event
        if ev is None:
            return None
        users = ev.get("users")
        users_t = tuple(u for u in users if isinstance(u, str)) if isinstance(users, list) else ()

        def text(key: str) -> str | None:
            v = ev.get(key)
            return v if isinstance(v, str) else None

        return cls(
            type=text("type") or "",
            group=m.group if m.group is not None else m.conv,
            pos=m.pos,
            ts=m.ts,
            actor=m.sender,
            users=users_t,
            name=text("name"),
            topic=text("topic"),
            user=text("user"),
            role=text("role"),
            raw=ev,
        )


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A message entry of this user's log: sent to this user, or sent by this user from
    another device (or by an earlier run of this one). Never the echo of a send this
    client object made itself: that is answered by the `Sent` that `send()` returned."""

    seq: int  # position in this user's update log
    message: ChatMessage

    @property
    def sender(self) -> str:
        return self.message.sender

    @property
    def text(self) -> str:
        return self.message.text

    @property
    def group(self) -> int | None:
        """The group the message belongs to; None for a direct message."""
        return self.message.group

    @property
    def is_event(self) -> bool:
        """True if `message` is a group timeline event. Never for an event the client
        yields (those are `GroupChanged`); kept for code that builds its own events."""
        return self.message.event is not None

    @property
    def group_event(self) -> GroupEvent | None:
        """The typed group timeline event if `message` is one (see `is_event`), else None."""
        return GroupEvent.from_message(self.message)


@dataclass(frozen=True, slots=True)
class GroupChanged:
    """A group timeline event of this user's log: a membership change (created, added,
    removed, left), a role change (role, owner) or a metadata change (renamed, topic).

    `change` is the typed event (who acted, whom it concerns, the new name, role, ...);
    `message` is the timeline entry itself (its `pos` in the group, `ts`, the raw `event`
    map). Events this user caused from this very device arrive too: they are not sends.
    """

    seq: int
    change: GroupEvent
    message: ChatMessage

    @property
    def group(self) -> int:
        return self.change.group

    @property
    def type(self) -> str:
        return self.change.type

    @property
    def actor(self) -> str:
        return self.change.actor

    @property
    def users(self) -> tuple[str, ...]:
        """The members added, removed, left or present at creation."""
        return self.change.users

    @property
    def is_membership(self) -> bool:
        """True when who is in the group, or their role, changed (not a rename or topic)."""
        return self.change.type in MEMBERSHIP_CHANGES


@dataclass(frozen=True, slots=True)
class ReadReceipt:
    """Update kind 2 READ: `user` has read conversation `conv` up to position `pos`.

    In a direct conversation it reaches both participants: the other one (your message was
    read) and the reader's own devices (`user == client.user`: read elsewhere, or by this
    device's own `mark_read`). Group read positions are not pushed: ask `receipts()`."""

    seq: int
    conv: int
    user: str
    pos: int


@dataclass(frozen=True, slots=True)
class ContactEvent:
    """Update kind 3 CONTACT. `event` is what happened between this user and `user`:

    * request: `user` asks to become your contact (answer with contact_accept/decline);
    * accepted / declined: `user` answered your request;
    * cancelled: `user` withdrew the request they had sent you;
    * removed: `user` ended the contact relation;
    * changed: your own contact list changed because of something you (maybe on another
      device) did with `user`; call `contacts()` for the new state.
    """

    seq: int
    event: str
    user: str
    note: str = ""  # a request's note (a hello from People Nearby, SPEC.md 29.3)


@dataclass(frozen=True, slots=True)
class TypingEvent:
    """Push: `user` started (`typing=True`) or stopped typing, in the direct chat with you
    or in `group`. Forget a typing=True notice after `ttl` seconds unless it is renewed."""

    user: str
    typing: bool
    ttl: float
    group: int | None = None


@dataclass(frozen=True, slots=True)
class PresenceChanged:
    """Push to contacts: `user` came online or went offline (`last_seen`: ms since the
    epoch when their last connection closed, 0 if never). Changes are coalesced by the
    server, so a quick reconnect may produce no event at all."""

    user: str
    online: bool
    last_seen: int


@dataclass(frozen=True, slots=True)
class Resync:
    """The update log could not be replayed from the cursor; the cursor is now `head`.

    Either the server no longer had the entries after the cursor (they were pruned): the
    cursor jumped forward to the log's head and the messages in between were NOT delivered
    as events. Or the cursor was ahead of the server's log (the server's data was reset):
    the cursor went back to 0 (`head == 0`) and the whole new log follows as events. In both
    cases, refetch what you display with `history()`."""

    head: int


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The connection ended and the client is reconnecting with backoff.

    `code` is the CLOSE code the server sent (1001 when it restarts), or None when the
    connection simply dropped. Sends made meanwhile wait and go out after the reconnect.
    """

    code: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class CaughtUp:
    """The SYNC of a (re)connect has reached the head of the log: every entry up to `head`
    is in the event queue ahead of this event (or needed no event: this device's own sends,
    kinds it does not know). After each (re)connect it comes once, before `Reconnected`
    (or later, if the queue overflowed during the SYNC: once the dropped entries have been
    fetched again). An application that must know it has seen everything waits for it
    instead of waiting for silence. Not sent by a client created with `sync=False`."""

    head: int


@dataclass(frozen=True, slots=True)
class Reconnected:
    """A new connection is authenticated and caught up (its SYNC is complete): every
    message in between has been queued before this event."""

    head: int
    attempts: int  # connection attempts it took


@dataclass(frozen=True, slots=True)
class WalletChanged:
    """Update kind 4 WALLET (SPEC.md 25.2): this user's coins or items changed, on this
    device or another. `event` is "transfer" (then `transfer` is the transfer map and
    `balance`, `pending_out`, `pending_in` the account after it) or "item" (then `change`
    is granted, given, received or redeemed, and `item` the item map). `data` is the entry
    as received."""

    seq: int
    event: str
    data: dict[str, Any]

    @property
    def balance(self) -> int | None:
        v = self.data.get("balance")
        return v if type(v) is int else None

    @property
    def transfer(self) -> dict[str, Any] | None:
        v = self.data.get("transfer")
        return v if isinstance(v, dict) else None

    @property
    def item(self) -> dict[str, Any] | None:
        v = self.data.get("item")
        return v if isinstance(v, dict) else None


@dataclass(frozen=True, slots=True)
class ChannelChanged:
    """Update kind 10 CHANNEL (SPEC.md 24.1): this user created, joined or left `channel`,
    or was banned from it, on this device or another (`event`: "created", "joined",
    "left", "banned", ...). `name` is the channel's name then."""

    seq: int
    event: str
    channel: int
    name: str


@dataclass(frozen=True, slots=True)
class ChannelNewsEvent:
    """Push (SPEC.md 24.4): `channel` has posts up to `pos`. Coalesced by the server (not
    one per post) and ephemeral: fetch what you have not seen with
    `client.channels.fetch(channel, after=...)`; nothing is lost while offline."""

    channel: int
    pos: int


LogEvent = (
    MessageReceived
    | GroupChanged
    | ReadReceipt
    | ContactEvent
    | WalletChanged
    | ChannelChanged
    | CallbackQuery
    | CallbackAnswered
    | MessageEdited
)
EphemeralEvent = TypingEvent | PresenceChanged | ChannelNewsEvent
StateEvent = Resync | CaughtUp | Disconnected | Reconnected
ClientEvent = (
    MessageReceived
    | GroupChanged
    | ReadReceipt
    | ContactEvent
    | WalletChanged
    | ChannelChanged
    | CallbackQuery
    | CallbackAnswered
    | MessageEdited
    | TypingEvent
    | PresenceChanged
    | ChannelNewsEvent
    | Resync
    | CaughtUp
    | Disconnected
    | Reconnected
)
LOG_EVENT_TYPES = (
    MessageReceived,
    GroupChanged,
    ReadReceipt,
    ContactEvent,
    WalletChanged,
    ChannelChanged,
    CallbackQuery,
    CallbackAnswered,
    MessageEdited,
)


def event_from_update(update: Update) -> LogEvent | None:
    """The event for one update-log entry, or None for a kind this client does not know or
    whose data it cannot read (the client then skips the entry)."""
    m = update.message
    if m is not None:
        change = GroupEvent.from_message(m)
        if change is not None and change.type not in WALLET_EVENTS:
            return GroupChanged(update.seq, change, m)
        return MessageReceived(update.seq, m)
    d = update.data
    if update.kind == UpdateKind.READ:
        conv, user, pos = d.get("conv"), d.get("user"), d.get("pos")
        if type(conv) is int and type(user) is str and type(pos) is int:
            return ReadReceipt(update.seq, conv, user, pos)
        return None
    if update.kind == UpdateKind.CONTACT:
        event, user = d.get("event"), d.get("user")
        if type(event) is str and type(user) is str:
            note = d.get("note")
            return ContactEvent(update.seq, event, user, note if type(note) is str else "")
        return None
    if update.kind == UpdateKind.WALLET:
        event = d.get("event")
        return WalletChanged(update.seq, event, dict(d)) if type(event) is str else None
    if update.kind == UpdateKind.CHANNEL:
        event, channel, name = d.get("event"), d.get("channel"), d.get("name", "")
        if type(event) is str and type(channel) is int and type(name) is str:
            return ChannelChanged(update.seq, event, channel, name)
        return None
    return bot_event_from_update(update)


T = TypeVar("T")


class EventQueue(Generic[T]):
    """A single-consumer queue with a bound that never blocks the producer.

    The producer is the connection's reader: if it awaited free space, a consumer that
    itself awaits a reply (an echo bot awaiting SENT inside its `async for`) would wait on
    a reader that waits on it. So `put_nowait` refuses instead (returns False) and the client
    drops the entry, remembering to fetch it again from the server's log once the consumer
    catches up. `force=True` items (rare state events) bypass the bound.
    """

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1")
        self.maxsize = maxsize
        self._items: deque[tuple[T, bool]] = deque()
        self._bounded = 0  # items counted against maxsize
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._exc: BaseException | None = None

    def qsize(self) -> int:
        """Items counted against the bound."""
        return self._bounded

    def __len__(self) -> int:
        return len(self._items)

    def full(self) -> bool:
        return self._bounded >= self.maxsize

    @property
    def free(self) -> int:
        return max(0, self.maxsize - self._bounded)

    @property
    def closed(self) -> bool:
        return self._closed

    def put_nowait(self, item: T, *, force: bool = False) -> bool:
        """Append an item; False if the queue is full (or closed) and `force` is not set."""
        if self._closed:
            return False
        if not force:
            if self._bounded >= self.maxsize:
                return False
            self._bounded += 1
        self._items.append((item, not force))
        self._wake()
        return True

    async def get(self) -> T:
        """The next item. After `close()` raises the close exception, or StopAsyncIteration
        for a normal close, even if items remain (they were never handed out, so the
        cursor does not cover them and the server delivers them again next time)."""
        while True:
            if self._closed:
                if self._exc is not None:
                    raise self._exc
                raise StopAsyncIteration
            if self._items:
                item, counted = self._items.popleft()
                if counted:
                    self._bounded -= 1
                return item
            loop = asyncio.get_running_loop()
            self._waiter = waiter = loop.create_future()
            try:
                await waiter
            finally:
                if self._waiter is waiter:
                    self._waiter = None

    def close(self, exc: BaseException | None = None) -> None:
        """End the stream: pending and future `get()` calls raise `exc` (or stop)."""
        if self._closed:
            return
        self._closed = True
        self._exc = exc
        self._items.clear()
        self._bounded = 0
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
