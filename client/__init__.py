"""liaotian.client: the reference asyncio client for the liaotian messaging protocol.

    import liaotian.client as lt

    await lt.register("127.0.0.1", 7420, "alice", "correct horse")
    async with lt.connect("127.0.0.1", 7420, username="alice", password="correct horse",
                          store=lt.FileStore("~/.config/liaotian/session-alice.json")) as c:
        sent = await c.send("bob", "hello")          # returns once the server stored it
        page = await c.history("bob", limit=20)
        team = await c.groups.create("team", ["bob"])  # c.groups, c.contacts, c.account,
        await c.groups.send(team.group, "hello team")  # c.presence
        async for event in c:                        # exactly once, in order
            if isinstance(event, lt.MessageReceived):
                print(event.message.sender, event.message.group, event.message.text)
            elif isinstance(event, lt.GroupChanged):
                print(event.actor, event.type, event.users, "in", event.group)
            elif isinstance(event, lt.CaughtUp):
                print("seen everything up to", event.head)

See `Client` for the delivery guarantees, `liaotian.client.events` for the events and `Bot`
for a small bot framework. The modules:

* `client`: `connect()`, `register()` and `Client`, the public API;
* `groups`, `contacts`, `account`, `presence`, `media`: the feature facades (`facade` is
  their base, `compat` the method names from before them);
* `session`: the engine (connection, authentication, reconnects, requests), with `inbox`
  (SYNC, cursor, ACKs, events) and `outbox` (sends retried with their cmid), `deadline`
  (timeouts that count connected time) and `backoff`;
* `connection`: the asyncio adapter over the sans-I/O `liaotian.protocol.Connection`, with
  the limits of the server's WELCOME (`limits`);
* `cursor`: the exactly-once cursor and the session stores; `events`: the event types;
* `bot`: a small bot framework; `cli`, `terminal`: the `liaotian` command.
"""

from liaotian.protocol import (
    ChatMessage,
    CloseCode,
    ConnectionClosed,
    DeviceInfo,
    ErrorCode,
    HistoryPage,
    LiaotianError,
    Limits,
    ProtocolError,
    RequestError,
    Sent,
)
from liaotian.protocol.social import (
    ContactList,
    ConversationList,
    ConversationSummary,
    GroupInfo,
    GroupMember,
    GroupSummary,
    Marker,
    PresenceEntry,
    Privacy,
    Profile,
    Receipts,
)

from .account import Account
from .backoff import Backoff
from .bot import Bot, Context
from .bots import Bots
from .channels import Channels, ChannelSummary
from .client import DEFAULT_PORT, Client, InitialSync, connect, new_cmid, register
from .connection import ClientConnection
from .contacts import Contacts
from .cursor import CursorTracker, FileStore, MemoryStore, SessionState, SessionStore
from .events import (
    CallbackAnswered,
    CallbackQuery,
    CaughtUp,
    ChannelChanged,
    ChannelNewsEvent,
    ClientEvent,
    ContactEvent,
    Disconnected,
    EventQueue,
    GroupChanged,
    GroupEvent,
    MessageEdited,
    MessageReceived,
    PresenceChanged,
    ReadReceipt,
    Reconnected,
    Resync,
    TypingEvent,
    WalletChanged,
)
from .groups import Groups
from .media import Media, MediaRef
from .nearby import Nearby
from .outbox import SendTimeout
from .presence import Presence
from .shop import Shop
from .wallet import Wallet

__all__ = [
    "DEFAULT_PORT",
    "Account",
    "Backoff",
    "Bot",
    "Bots",
    "CallbackAnswered",
    "CallbackQuery",
    "CaughtUp",
    "ChannelChanged",
    "ChannelNewsEvent",
    "ChannelSummary",
    "Channels",
    "ChatMessage",
    "Client",
    "ClientConnection",
    "ClientEvent",
    "CloseCode",
    "ConnectionClosed",
    "ContactEvent",
    "ContactList",
    "Contacts",
    "Context",
    "ConversationList",
    "ConversationSummary",
    "CursorTracker",
    "DeviceInfo",
    "Disconnected",
    "ErrorCode",
    "EventQueue",
    "FileStore",
    "GroupChanged",
    "GroupEvent",
    "GroupInfo",
    "GroupMember",
    "GroupSummary",
    "Groups",
    "HistoryPage",
    "InitialSync",
    "LiaotianError",
    "Limits",
    "Marker",
    "Media",
    "MediaRef",
    "MemoryStore",
    "MessageEdited",
    "MessageReceived",
    "Nearby",
    "Presence",
    "PresenceChanged",
    "PresenceEntry",
    "Privacy",
    "Profile",
    "ProtocolError",
    "ReadReceipt",
    "Receipts",
    "Reconnected",
    "RequestError",
    "Resync",
    "SendTimeout",
    "Sent",
    "SessionState",
    "SessionStore",
    "Shop",
    "TypingEvent",
    "Wallet",
    "WalletChanged",
    "connect",
    "new_cmid",
    "register",
]
