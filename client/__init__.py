"""liaotian.client: the reference asyncio client for the liaotian messaging protocol.

    import liaotian.client as lt

    await lt.register("127.0.0.1", 7420, "alice", "correct horse")
    async with lt.connect("127.0.0.1", 7420, username="alice", password="correct horse",
                          store=lt.FileStore("~/.config/liaotian/session-alice.json")) as c:
        sent = await c.send("bob", "hello")          # returns once the server stored it
        page = await c.history("bob", limit=20)
        team = await c.create_group("team", ["bob"])  # groups, contacts, receipts, ...
        await c.send_group(team.group, "hello team")
        async for event in c:                        # exactly once, in order
            if isinstance(event, lt.MessageReceived):
                print(event.message.sender, event.message.group, event.message.text)
            elif isinstance(event, lt.ReadReceipt):
                print(event.user, "read", event.conv, "up to", event.pos)

See `Client` for the delivery guarantees, `liaotian.client.events` for the events and `Bot`
for a small bot framework.
"""

from liaotian.protocol import (
    ChatMessage,
    CloseCode,
    ConnectionClosed,
    DeviceInfo,
    ErrorCode,
    HistoryPage,
    LiaotianError,
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

from .backoff import Backoff
from .bot import Bot, Context
from .client import DEFAULT_PORT, Client, InitialSync, connect, new_cmid, register
from .connection import ClientConnection
from .cursor import CursorTracker, FileStore, MemoryStore, SessionState, SessionStore
from .events import (
    ClientEvent,
    ContactEvent,
    Disconnected,
    EventQueue,
    GroupEvent,
    MessageReceived,
    PresenceChanged,
    ReadReceipt,
    Reconnected,
    Resync,
    TypingEvent,
)

__all__ = [
    "DEFAULT_PORT",
    "Backoff",
    "Bot",
    "ChatMessage",
    "Client",
    "ClientConnection",
    "ClientEvent",
    "CloseCode",
    "ConnectionClosed",
    "ContactEvent",
    "ContactList",
    "Context",
    "ConversationList",
    "ConversationSummary",
    "CursorTracker",
    "DeviceInfo",
    "Disconnected",
    "ErrorCode",
    "EventQueue",
    "FileStore",
    "GroupEvent",
    "GroupInfo",
    "GroupMember",
    "GroupSummary",
    "HistoryPage",
    "InitialSync",
    "LiaotianError",
    "Marker",
    "MemoryStore",
    "MessageReceived",
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
    "Sent",
    "SessionState",
    "SessionStore",
    "TypingEvent",
    "connect",
    "new_cmid",
    "register",
]
