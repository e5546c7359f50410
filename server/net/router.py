"""Message type -> handler. Turns every exception into an ERROR frame for the request.

A handler is a plain function for work that finishes at once (SEND only queues its write)
or a coroutine function for work that waits (login, sync, history); the latter runs as a
task, and an "exclusive" one (it changes who the connection is) holds the connection's
later frames until it is done. Internal exception text never reaches the peer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from liaotian.protocol import (
    ConnectionTerminated,
    Error,
    ErrorCode,
    Event,
    Message,
    MessageType,
    ProtocolViolation,
    RequestError,
)

from ..ops.counters import Counters
from ..store.contract import read_owner
from .peer import Peer

log = logging.getLogger("liaotian.router")
Handler = Callable[[Any, Any], Awaitable[None] | None]  # (a Peer, a message)


_ERROR = int(MessageType.ERROR)


class Router:
    def __init__(self, counters: Counters | None = None) -> None:
        self._handlers: dict[type[Message], tuple[Handler, bool]] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.counters = counters or Counters()  # ops: frames in, errors by code
        self._frames_in = self.counters.frames_in

    def route(self, msg_cls: type[Message], handler: Handler, *, exclusive: bool = False) -> None:
        self._handlers[msg_cls] = (handler, exclusive)

    def dispatch(self, conn: Peer, event: Event) -> None:
        if isinstance(event, ProtocolViolation):
            conn.log.info("protocol violation %d: %s", event.code, event.message)
            self.counters.errors[event.code] += 1  # ops: the core answered it with ERROR
            self.counters.frames_out[_ERROR] += 1
            return
        if isinstance(event, ConnectionTerminated):
            conn.log.debug("terminated (%s)", event.code)  # ops: no peer text in logs
            return
        self._frames_in[event.TYPE] += 1  # ops
        entry = self._handlers.get(type(event))
        if entry is None:  # a valid client message nobody serves is a server bug
            conn.log.error("no handler for %s", type(event).__name__)
            conn.send(
                Error(
                    rid=event.rid,
                    code=ErrorCode.INTERNAL_ERROR,
                    message=ErrorCode.INTERNAL_ERROR.explanation,
                )
            )
            return
        handler, exclusive = entry
        try:
            pending = handler(conn, event)
        except Exception as exc:
            self._answer_failure(conn, event, exc)
            return
        if pending is not None:
            if exclusive:
                conn.hold()
            # The store serves reads per owner in turn (store/readers.py): the user, or this
            # connection until it has one. Only a handler that waits can read; its task
            # copies the context as it is created. (A plain handler, SEND's, pays nothing.)
            owner = read_owner.set(conn.user_id or ("conn", id(conn)))
            try:
                task = asyncio.ensure_future(self._run(conn, event, pending, exclusive))
            finally:
                read_owner.reset(owner)
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _run(
        self, conn: Peer, event: Message, pending: Awaitable[None], exclusive: bool
    ) -> None:
        try:
            await pending
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._answer_failure(conn, event, exc)
        finally:
            if exclusive:
                conn.release()

    def _answer_failure(self, conn: Peer, event: Message, exc: Exception) -> None:
        self.counters.errors[
            exc.code
            if isinstance(exc, RequestError)  # ops
            else ErrorCode.INTERNAL_ERROR
        ] += 1
        if isinstance(exc, RequestError):
            conn.send(
                Error(
                    rid=event.rid,
                    code=int(exc.code),
                    message=exc.message,
                    retry_after=exc.retry_after,
                    data=exc.data,
                )
            )
            return
        conn.log.exception("handler for %s failed", type(event).__name__)
        conn.send(
            Error(
                rid=event.rid,
                code=ErrorCode.INTERNAL_ERROR,
                message=ErrorCode.INTERNAL_ERROR.explanation,
            )
        )
