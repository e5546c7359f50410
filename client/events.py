"""Typed events a `Client` yields, and the bounded queue that carries them.

    async for event in client:
        match event:
            case MessageReceived(seq=seq, message=msg): ...
            case Resync(head=head): ...        # refetch what you show through client.history()
            case Disconnected() | Reconnected(): ...   # connection state, for a status line

`MessageReceived` events are exactly-once and in log order. The state events are
informational only; the client reconnects on its own.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Generic, TypeVar

from liaotian.protocol import ChatMessage

__all__ = [
    "ClientEvent",
    "Disconnected",
    "EventQueue",
    "MessageReceived",
    "Reconnected",
    "Resync",
]


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
class Reconnected:
    """A new connection is authenticated and caught up (its SYNC is complete): every
    message in between has been queued before this event."""

    head: int
    attempts: int  # connection attempts it took


ClientEvent = MessageReceived | Resync | Disconnected | Reconnected

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
