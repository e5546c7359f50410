"""What the rest of the server uses of a live connection (net/transport.py's
ServerConnection): its session and its one write path.

Handlers, the router, the hub and the fan-out are written against this protocol, not the
transport, so none of them imports the transport (nor the transport them but the router).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from liaotian.protocol import Connection, Message


class Peer(Protocol):
    @property
    def id(self) -> int:
        """Unique in the process: the session id operations carry (chat/ops.py)."""

    @property
    def conn(self) -> Connection:
        """The sans-I/O protocol state."""

    @property
    def log(self) -> logging.LoggerAdapter[Any]: ...
    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...
    @property
    def transport(self) -> asyncio.Transport | None: ...
    @property
    def peer_host(self) -> str: ...

    # the session, set once authenticated (authenticated())
    @property
    def user_id(self) -> int: ...
    @property
    def username(self) -> str: ...
    @property
    def device(self) -> str: ...
    @property
    def head_at_auth(self) -> int:
        """The user's head when this connection authenticated."""

    # the update stream: live after the first complete SYNC; sent_upto is the highest seq
    # this connection has been sent (the fan-out and SYNC move both)
    live: bool
    sent_upto: int
    syncing: bool
    unread: int  # bytes of output the socket has not taken (hub.py keeps the total)

    def authenticated(self, user_id: int, username: str, device: str, head: int) -> None:
        """The connection now speaks for this user's device."""

    def send(self, msg: Message) -> None: ...
    def send_frame(self, frame: bytes, msg_type: int, rid: int = 0) -> None: ...
    def write_shared(self, frame: bytes, msg_type: int) -> None:
        """send_frame for one pre-encoded frame written to many connections (no rid):
        straight to the socket when nothing is queued before it."""

    def flush(self) -> None: ...
    def close(self, code: int = ..., reason: str = "") -> None: ...
    def evict(self, reason: str) -> None: ...
    def hold(self) -> None:
        """An exclusive request started (or the media bound was reached): read nothing
        more until release(); holds nest."""

    def release(self) -> None: ...
