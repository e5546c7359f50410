"""The asyncio adapter around the sans-I/O `liaotian.protocol.Connection` (client role).

One `ClientConnection` is one TCP (optionally TLS) connection. It owns:

* one reader task, which feeds bytes to the protocol core with the loop's clock
  (`receive_data(data, loop.time())`) and dispatches every decoded frame, first to the
  owner's `on_message` callback (pushes, sync pages) and then to the request table;
* one write path: `send()` checks the state, queues the frame in the core, writes what the
  core produced, then awaits `drain()`; any failure becomes `ConnectionClosed`. Writes that
  happen inside callbacks (PINGs from the timer, ACKs, the next SYNC page) use the same
  `_transmit()` without the drain, which the next awaited send performs;
* one timer, scheduled at `get_timer()`: the core decides when to PING (heartbeat) and when
  the silence has lasted too long (idle timeout);
* the table of requests in flight, rid -> Future, each entry removed in a `finally` by the
  coroutine that awaits it, so timeouts and cancellations never leak entries. A request
  waits for a free slot rather than exceed the server's `max_inflight_requests`;
* the limits: until WELCOME the defaults (SPEC.md 14.1), then those the server advertised
  in WELCOME (`limits_from_welcome`): a server with a larger `max_frame_size` may send
  larger frames, a smaller `max_text_len` is checked before sending, and so on.

It knows nothing about accounts, cursors or reconnecting: that is `Client`'s job.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import ssl as ssl_module
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

from liaotian.protocol import (
    DEFAULT_LIMITS,
    SUPPORTED_VERSIONS,
    CloseCode,
    Connection,
    ConnectionClosed,
    ConnectionTerminated,
    Error,
    ErrorCode,
    Hello,
    Limits,
    Message,
    ProtocolError,
    ProtocolViolation,
    RequestError,
    Role,
    State,
    Welcome,
)

from .limits import limits_from_welcome
from .stream import Stream, open_stream

__all__ = ["CLIENT_NAME", "ClientConnection", "MessageHandler", "request_error"]

log = logging.getLogger("liaotian.client")

CLIENT_NAME = "liaotian-py/0.1.0"
READ_SIZE = 256 * 1024  # received bytes beyond 2x this pause reading (stream.py)
# Request slots kept free for the frames the client sends on its own (a PING of the
# heartbeat, the next page of a SYNC), so those never push the count above the server's limit.
RESERVED_SLOTS = 2

M = TypeVar("M", bound=Message)

MessageHandler = Callable[["ClientConnection", Message], bool]
"""Called for every incoming frame; returning True means "consumed, do not route by rid"."""


def request_error(err: Error) -> RequestError:
    """The typed exception for an ERROR frame. Codes this client does not know (a newer
    server) keep their number in `data['code']` and map to INTERNAL_ERROR."""
    try:
        code = ErrorCode(err.code)
    except ValueError:
        return RequestError(
            ErrorCode.INTERNAL_ERROR,
            f"error {err.code}: {err.message}",
            retry_after=err.retry_after,
            data={**err.data, "code": err.code},
        )
    return RequestError(code, err.message, retry_after=err.retry_after, data=err.data)


def _close_code(code: int | None) -> CloseCode | None:
    if code is None:
        return None
    try:
        return CloseCode(code)
    except ValueError:
        return None


class ClientConnection:
    """One connection; create it with `await ClientConnection.open(...)`."""

    def __init__(
        self,
        stream: Stream,
        *,
        limits: Limits = DEFAULT_LIMITS,
        on_message: MessageHandler | None = None,
        on_close: Callable[[ClientConnection], None] | None = None,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._on_close = on_close
        self._stream = stream  # reads and writes the socket (stream.py)
        self._proto = Connection(Role.CLIENT, limits=limits, now=self._loop.time())
        self._on_message = on_message
        self._requests: dict[int, asyncio.Future[Message]] = {}
        self._slot_waiters: deque[asyncio.Future[None]] = deque()
        self._closed: asyncio.Future[ConnectionClosed] = self._loop.create_future()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when = 0.0
        self.welcome: Welcome | None = None
        # Why the connection ended, once it has: the raw CLOSE code (None = dropped),
        # its reason, and whether the server sent it.
        self.close_code: int | None = None
        self.close_reason = ""
        self.closed_by_peer = False
        self.violation: ProtocolViolation | None = None
        self._reader_task = self._loop.create_task(self._read_loop(), name="liaotian-reader")

    # ------------------------------------------------------------------ opening

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        *,
        ssl: ssl_module.SSLContext | bool | None = None,
        on_message: MessageHandler | None = None,
        on_close: Callable[[ClientConnection], None] | None = None,
        limits: Limits = DEFAULT_LIMITS,
        client_name: str = CLIENT_NAME,
        timeout: float | None = 10.0,
    ) -> ClientConnection:
        """Connect and complete the HELLO/WELCOME handshake.

        Raises OSError (and TimeoutError) if the server cannot be reached, RequestError if
        it refuses the handshake (UNSUPPORTED_VERSION) and ConnectionClosed if it hangs up.
        """
        async with asyncio.timeout(timeout):
            stream = await open_stream(host, port, ssl=ssl or None, high=2 * READ_SIZE)
        self = cls(stream, limits=limits, on_message=on_message, on_close=on_close)
        try:
            async with asyncio.timeout(timeout):
                welcome = await self.request(
                    Hello(rid=0, versions=SUPPORTED_VERSIONS, client=client_name)
                )
        except BaseException:
            self.abort()
            raise
        assert isinstance(welcome, Welcome)
        self.welcome = welcome
        self.adopt_limits(limits_from_welcome(welcome.limits, limits))
        self._schedule_timer()  # the heartbeat interval may have changed
        return self

    def adopt_limits(self, limits: Limits) -> None:
        """Enforce and respect `limits` from now on (those of WELCOME, after the handshake).

        The frame size limit lives in the protocol core's frame reader, which
        `protocol.Connection` sizes once, at construction, and offers no public way to
        change; it is raised here, in this one place, until it does.
        """
        self._proto.limits = limits
        self._proto._reader.limit = limits.max_frame_size
        self._wake_slot_waiters()

    @property
    def limits(self) -> Limits:
        """The limits in force: the defaults until WELCOME, then the server's."""
        return self._proto.limits

    # ------------------------------------------------------------------ state

    @property
    def state(self) -> State:
        """The protocol state (AWAIT_HELLO, CONNECTED, AUTHENTICATED, CLOSED)."""
        return self._proto.state

    @property
    def closed(self) -> bool:
        return self._closed.done()

    @property
    def server_limits(self) -> dict[str, Any]:
        return dict(self.welcome.limits) if self.welcome is not None else {}

    def next_rid(self) -> int:
        """A request id not in use on this connection."""
        rid = self._proto.next_rid()
        while rid in self._requests:
            rid = self._proto.next_rid()
        return rid

    @property
    def closed_future(self) -> asyncio.Future[ConnectionClosed]:
        """Resolves (never fails) when the connection ends; for `asyncio.wait`. Do not
        resolve or cancel it."""
        return self._closed

    async def wait_closed(self) -> ConnectionClosed:
        """Wait for the end of the connection; returns (does not raise) the reason."""
        return await asyncio.shield(self._closed)

    def closed_error(self) -> ConnectionClosed:
        """The exception describing why the connection is closed (or closing)."""
        if self._closed.done():
            return self._closed.result()
        return ConnectionClosed(_close_code(self._proto.close_code), self._proto.close_reason)

    # ------------------------------------------------------------------ requests

    async def request(self, msg: Message) -> Message:
        """Send a request under a fresh rid and wait for its answer.

        The answer message is returned; an ERROR answer raises RequestError; the end of
        the connection raises ConnectionClosed. Cancel (or wrap in `asyncio.timeout`) to
        give up: the table entry is removed either way.
        """
        if len(self._requests) >= self._request_slots():
            await self._wait_for_slot()
        rid = self.next_rid()
        msg = dataclasses.replace(msg, rid=rid)
        fut: asyncio.Future[Message] = self._loop.create_future()
        self._requests[rid] = fut
        try:
            await self.send(msg)
            return await fut
        finally:
            self._requests.pop(rid, None)
            if not fut.done():
                fut.cancel()
            elif not fut.cancelled():
                fut.exception()  # mark retrieved even if our caller was cancelled meanwhile
            self._wake_slot_waiters()

    @property
    def in_flight(self) -> int:
        """Requests sent (or about to be) whose answer has not been taken yet."""
        return len(self._requests)

    def _request_slots(self) -> int:
        return max(1, self._proto.limits.max_inflight_requests - RESERVED_SLOTS)

    async def _wait_for_slot(self) -> None:
        """Wait, in arrival order, until a request may go out without exceeding the
        server's `max_inflight_requests` (or the connection ends: send() then raises)."""
        while len(self._requests) >= self._request_slots() and not self._closed.done():
            waiter: asyncio.Future[None] = self._loop.create_future()
            self._slot_waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._wake_slot_waiters()  # pass the unused wake-up on
                else:
                    waiter.cancel()
                    with contextlib.suppress(ValueError):
                        self._slot_waiters.remove(waiter)
                raise

    def _wake_slot_waiters(self) -> None:
        """Wake as many waiting requests as there are free slots (all once closed)."""
        waiters = self._slot_waiters
        free = len(waiters) if self._closed.done() else self._request_slots() - len(self._requests)
        while free > 0 and waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                free -= 1

    async def send(self, msg: Message) -> None:
        """The write path: check the state, queue, write, drain. Failure -> ConnectionClosed.

        Raises LocalProtocolError when the state forbids the message (a caller bug).
        """
        if self._stream.is_closing() and not self._closed.done():
            # The socket is going away but connection_lost has not run yet: end the
            # connection now, or a caller that retries on ConnectionClosed would be handed
            # this same connection again and spin without ever yielding to the reader.
            self._lost("transport closing")
        if self._closed.done():
            raise self.closed_error()
        if not self._proto.send(msg):
            raise self.closed_error()
        self._transmit()
        try:
            await self._stream.drain()
        except (OSError, RuntimeError) as exc:  # RuntimeError: transport closed under us
            self._lost(f"write failed: {exc}")
            raise self.closed_error() from exc

    async def send_drain(self) -> None:
        """Wait until the write buffer has drained (after `send_nowait` calls)."""
        if self._closed.done():
            raise self.closed_error()
        try:
            await self._stream.drain()
        except (OSError, RuntimeError) as exc:
            self._lost(f"write failed: {exc}")
            raise self.closed_error() from exc

    def send_nowait(self, msg: Message) -> bool:
        """Queue and write without waiting for the drain (from callbacks and timers).

        Returns False when the connection is closed; never raises for a dead socket (the
        reader notices and ends the connection).
        """
        if self._closed.done() or self._stream.is_closing():
            return False
        if not self._proto.send(msg):
            return False
        self._transmit()
        return True

    def _transmit(self) -> None:
        bufs = self._proto.buffers_to_send()
        if bufs and not self._stream.is_closing():
            try:
                for data in bufs:  # a media chunk's bytes are written as they are, not joined
                    self._stream.write(data)
            except (OSError, RuntimeError) as exc:
                self._lost(f"write failed: {exc}")

    # ------------------------------------------------------------------ reading

    async def _read_loop(self) -> None:
        reason = "end of stream"
        try:
            while not self._proto.closed:
                try:
                    data = await self._stream.read()
                except (OSError, ssl_module.SSLError) as exc:
                    reason = f"connection lost: {exc}"
                    data = b""
                if not data:
                    break
                self._proto.receive_data(data, self._loop.time())
                self._process()
        except asyncio.CancelledError:
            reason = "aborted"
            raise
        except Exception as exc:  # a bug in a callback; keep it visible and end cleanly
            log.exception("liaotian: reader failed")
            reason = f"reader failed: {exc!r}"
        finally:
            if not self._closed.done():
                # EOF or a dead socket. A partial frame at EOF is a connection that died
                # mid-write, not a peer protocol error: report it as dropped, not 1002.
                self._lost(reason)

    def _process(self) -> None:
        """Dispatch every complete frame, then flush what the core queued (CLOSE, ...)."""
        while (event := self._proto.next_event()) is not None:
            if isinstance(event, ConnectionTerminated):
                self._terminated(event.code, event.reason, event.by_peer)
                return
            if isinstance(event, ProtocolViolation):
                # The core already queued CLOSE 1002; ConnectionTerminated follows.
                log.warning(
                    "liaotian: server broke the protocol: %s (%s)", event.message, event.code.name
                )
                self.violation = event
                continue
            self._dispatch(event)
        self._transmit()
        self._schedule_timer()

    def _dispatch(self, msg: Message) -> None:
        if self._on_message is not None:
            try:
                if self._on_message(self, msg):
                    return
            except Exception:
                log.exception("liaotian: message handler failed on %s", msg.TYPE.name)
                return
        if not msg.rid:
            return
        fut = self._requests.get(msg.rid)
        if fut is None or fut.done():
            return  # a PONG, or the answer to a request its caller gave up on
        if isinstance(msg, Error):
            fut.set_exception(request_error(msg))
        else:
            fut.set_result(msg)

    # ------------------------------------------------------------------ timer

    def _schedule_timer(self) -> None:
        when = self._proto.get_timer()
        if when is None or self._closed.done():
            self._cancel_timer()
            return
        if self._timer is not None:
            if self._timer_when <= when:
                return  # fires earlier and reschedules itself from there
            self._timer.cancel()
        self._timer_when = when
        self._timer = self._loop.call_at(when, self._on_timer)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timer(self) -> None:
        self._timer = None
        if self._closed.done():
            return
        self._proto.handle_timer(self._loop.time())
        self._process()

    # ------------------------------------------------------------------ closing

    async def close(
        self, code: int = CloseCode.NORMAL, reason: str = "", timeout: float = 2.0
    ) -> None:
        """Send CLOSE and shut the socket; wait (bounded) for the reader to finish."""
        self.close_nowait(code, reason)
        await self._shutdown(timeout)

    def close_nowait(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Queue CLOSE, write it and close the socket, without waiting (for cleanup paths,
        including cancelled ones). The reader task then ends by itself."""
        if not self._closed.done():
            self._proto.close(code, reason)
            self._process()
        if not self._closed.done():  # the core was already closed: just drop the socket
            self._finish(None, reason, by_peer=False)

    def abort(self) -> None:
        """Drop the connection without a CLOSE frame."""
        if not self._closed.done():
            self._finish(None, "aborted", by_peer=False)
        self._reader_task.cancel()

    async def _shutdown(self, timeout: float) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(timeout):
                await self._stream.wait_closed()
        if not self._reader_task.done():
            self._reader_task.cancel()
            # asyncio.wait neither raises the task's outcome nor swallows our own cancel.
            await asyncio.wait({self._reader_task}, timeout=timeout)

    def _lost(self, reason: str) -> None:
        if self._closed.done():
            return
        self._proto.receive_eof()
        # Drain what the core still holds; its ConnectionTerminated is replaced by ours.
        while (event := self._proto.next_event()) is not None:
            if not isinstance(event, ConnectionTerminated | ProtocolViolation):
                self._dispatch(event)
        self._finish(None, reason, by_peer=True)

    def _terminated(self, code: int | None, reason: str, by_peer: bool) -> None:
        self._transmit()  # our CLOSE frame, if we are the closing side
        self._finish(code, reason, by_peer)

    def _finish(self, code: int | None, reason: str, by_peer: bool) -> None:
        if self._closed.done():
            return
        self.close_code, self.close_reason, self.closed_by_peer = code, reason, by_peer
        self._cancel_timer()
        known = _close_code(code)
        if code is not None and known is None:
            reason = f"close code {code}: {reason}"  # a code newer than this client
        exc = ConnectionClosed(known, reason)
        self._closed.set_result(exc)
        with contextlib.suppress(Exception):
            self._stream.close()
        # Each entry is popped by its own request() in a finally block.
        for fut in list(self._requests.values()):
            if not fut.done():
                fut.set_exception(exc)
        self._wake_slot_waiters()
        if self._on_close is not None:
            try:
                self._on_close(self)
            except Exception:
                log.exception("liaotian: close handler failed")

    def __repr__(self) -> str:
        return f"<ClientConnection state={self._proto.state.value} closed={self.closed}>"


def is_protocol_failure(conn: ClientConnection) -> ProtocolError | None:
    """A ProtocolError if the connection ended because the server broke the protocol."""
    if conn.violation is not None:
        return ProtocolError(conn.violation.code, conn.violation.message, conn.violation.rid)
    return None
