"""liaotian.client: the reference asyncio client for the liaotian messaging protocol.

    import liaotian.client as lt

    await lt.register("127.0.0.1", 7420, "alice", "correct horse")
    async with lt.connect("127.0.0.1", 7420, username="alice", password="correct horse",
                          store=lt.FileStore("~/.config/liaotian/session-alice.json")) as c:
        sent = await c.send("bob", "hello")          # returns once the server stored it
        page = await c.history("bob", limit=20)
        async for event in c:                        # exactly once, in order
            if isinstance(event, lt.MessageReceived):
                print(event.message.sender, event.message.text)

See `Client` for the delivery guarantees and `Bot` for a small bot framework.
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

from .backoff import Backoff
from .bot import Bot, Context
from .client import DEFAULT_PORT, Client, InitialSync, connect, register
from .connection import ClientConnection
from .cursor import CursorTracker, FileStore, MemoryStore, SessionState, SessionStore
from .events import ClientEvent, Disconnected, EventQueue, MessageReceived, Reconnected, Resync

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
    "Context",
    "CursorTracker",
    "DeviceInfo",
    "Disconnected",
    "ErrorCode",
    "EventQueue",
    "FileStore",
    "HistoryPage",
    "InitialSync",
    "LiaotianError",
    "MemoryStore",
    "MessageReceived",
    "ProtocolError",
    "Reconnected",
    "RequestError",
    "Resync",
    "Sent",
    "SessionState",
    "SessionStore",
    "connect",
    "register",
]
