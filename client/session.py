"""The session engine under a `Client`: one logged-in device that heals itself.

A `Session` owns, for the life of a client object:

* **the connection**: it opens a `ClientConnection`, adopts the limits of its WELCOME,
  authenticates (AUTH with the stored token, falling back to LOGIN when the token is
  refused and a password is known) and catches up (`Inbox.catch_up`); only then is the
  connection *live* and handed to requests;
* **reconnecting**: when the connection drops, or the server closes it with a code that
  says so (1001, 1011, 4001, 4003, 4005), it reconnects with full-jitter exponential
  backoff (`Backoff`); CLOSE 4002 (logged out), a protocol violation or a refused token
  without a password end the session with that error instead;
* **requests**: `request()` sends on the live connection, waiting through a reconnect; its
  timeout counts connected time only (see `deadline`). Read-only requests are repeated
  after a lost connection, writes are not (they may have happened);
* **the halves**: the `Inbox` (SYNC, the cursor, ACKs, the event queue) and the `Outbox`
  (sends in flight, retried with their cmid until the outcome is known);
* **the session store**: token, device and cursor, saved at the ACK points and on close.

It knows nothing of groups, contacts or profiles: those are the facades of `client.py`.
"""

from __future__ import annotations

import asyncio
import logging
import ssl as ssl_module
from collections.abc import Callable, Iterable
from typing import Any, Literal, TypeVar

from liaotian.protocol import (
    DEFAULT_LIMITS,
    Auth,
    Authenticated,
    CloseCode,
    ConnectionClosed,
    DeviceRevoked,
    ErrorCode,
    Limits,
    LoggedOut,
    Login,
    Logout,
    Message,
    ProtocolError,
    RequestError,
    RevokeDevice,
)

from .addresses import Address, Addresses
from .backoff import Backoff
from .connection import CLIENT_NAME, ClientConnection, is_protocol_failure
from .cursor import MemoryStore, SessionState, SessionStore
from .deadline import advised_wait, paused
from .events import Disconnected, Reconnected
from .inbox import Inbox
from .outbox import Outbox

__all__ = ["DEFAULT", "InitialSync", "Session", "TimeoutArg"]

log = logging.getLogger("liaotian.client")

InitialSync = Literal["all", "new"]
A = TypeVar("A", bound=Message)


class _Default:
    """Type of `DEFAULT`."""

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT = _Default()
"""As a `timeout=` argument: the client's `request_timeout`."""
TimeoutArg = float | _Default | None

# ERROR codes after which the same login may succeed later (wait, then try again).
_RETRYABLE = frozenset(
    {ErrorCode.THROTTLED, ErrorCode.RATE_LIMITED, ErrorCode.INTERNAL_ERROR, ErrorCode.UNAVAILABLE}
)


class Session:
    """The engine of one client object; see the module docstring. `Client` is its API."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        device: str | None = None,
        token: str | None = None,
        store: SessionStore | None = None,
        ssl: ssl_module.SSLContext | bool | None = None,
        reconnect: bool = True,
        request_timeout: float | None = 10.0,
        initial_sync: InitialSync = "all",
        sync: bool = True,
        queue_size: int = 1024,
        state_events: bool = True,
        ephemeral_events: bool = True,
        max_reconnect_attempts: int | None = None,
        backoff: Backoff | None = None,
        ack_every: int = 200,
        ack_interval: float = 1.0,
        client_name: str = CLIENT_NAME,
        addresses: Iterable[str | Address] | None = None,
    ) -> None:
        if initial_sync not in ("all", "new"):
            raise ValueError("initial_sync must be 'all' or 'new'")
        # the nodes of a cluster (addresses.py); else the one server of host and port
        self.addresses = Addresses(addresses if addresses else [(host, port)], port)
        self._ssl = ssl
        self._password = password
        self._reconnect = reconnect
        self.request_timeout = request_timeout
        self._initial_sync = initial_sync
        self._sync_enabled = sync
        self._max_attempts = max_reconnect_attempts
        self._backoff = backoff if backoff is not None else Backoff()
        self._client_name = client_name

        # The stored session belongs to one account and device: reuse it only if it matches.
        self.store: SessionStore = store if store is not None else MemoryStore()
        state = self.store.load()
        matches = (username is None or state.username in (None, username)) and (
            device is None or state.device in (None, device)
        )
        if not matches:
            state = SessionState(extra=state.extra)
        self._state = state
        self.username = username or state.username
        self.device = device or state.device or "default"
        self.token = token or state.token
        self.stored_cursor = state.cursor
        if not self.token and not (self.username and password):
            raise ValueError(
                "need a session token (given or in the store) or a username and password"
            )

        self._conn: ClientConnection | None = None
        self._live = False  # authenticated and caught up: requests may go out
        self._ready = asyncio.Event()  # set when live, closed or failed: wakes waiters
        self.closing = False
        self._closed = asyncio.Event()
        self.failure: BaseException | None = None
        self._logout_requested = False
        self._supervisor: asyncio.Task[None] | None = None
        self._user: str | None = None
        self.auth: Authenticated | None = None
        self._limits = DEFAULT_LIMITS  # those of the last WELCOME
        # Called with no argument whenever a new connection starts and when the session
        # ends: per-connection state elsewhere (the typing budget) starts over.
        self.on_reset: list[Callable[[], None]] = []
        self.outbox = Outbox(self)
        self.inbox = Inbox(
            self,
            self.outbox,
            queue_size=queue_size,
            ack_every=ack_every,
            ack_interval=ack_interval,
            state_events=state_events,
            ephemeral_events=ephemeral_events,
            request_timeout=request_timeout,
        )

    # ------------------------------------------------------------------ state

    @property
    def host(self) -> str:
        """The server (node) in use, or tried next."""
        return self.addresses.current[0]

    @property
    def port(self) -> int:
        return self.addresses.current[1]

    @property
    def conn(self) -> ClientConnection | None:
        """The current connection (authenticating, catching up or live), if any."""
        return self._conn

    @property
    def live(self) -> bool:
        """Authenticated and caught up right now (False while reconnecting)."""
        return self._live and self._conn is not None and not self._conn.closed

    @property
    def user(self) -> str | None:
        """The account name the server confirmed."""
        return self._user

    @property
    def ended(self) -> bool:
        return self._closed.is_set()

    @property
    def started(self) -> bool:
        """Logged in at least once (the cursor exists)."""
        return self.inbox.tracker is not None

    @property
    def running(self) -> bool:
        """start() succeeded: the supervisor watches the connection."""
        return self._supervisor is not None

    @property
    def reconnect(self) -> bool:
        return self._reconnect

    @property
    def limits(self) -> Limits:
        """The limits the server advertised in its last WELCOME (the defaults before)."""
        return self._limits

    def timeout_for(self, timeout: TimeoutArg) -> float | None:
        """A `timeout=` argument in seconds (None: no timeout)."""
        return self.request_timeout if isinstance(timeout, _Default) else timeout

    def save(self, **changes: Any) -> None:
        self._state = self._state.with_changes(**changes)
        try:
            self.store.save(self._state)
        except Exception:
            log.exception("liaotian: could not save the session state")

    def forget_token(self) -> None:
        self.token = None
        self.save(token=None)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Connect, authenticate and catch up. Failures are raised, not retried: a client
        that cannot connect at all should say so at once."""
        if self._supervisor is not None or self.closing:
            raise RuntimeError("client already started")
        for left in range(len(self.addresses) - 1, -1, -1):
            try:
                await self._establish()
                break
            except (OSError, ConnectionClosed) as exc:  # this node is down: the next one
                if not left:
                    raise
                log.info(
                    "liaotian: %s:%d unreachable (%s); trying the next",
                    *self.addresses.current,
                    exc,
                )
                self.addresses.advance()
        self._supervisor = asyncio.get_running_loop().create_task(
            self._supervise(), name="liaotian-client"
        )

    async def close(self) -> None:
        """ACK and save the position, send CLOSE 1000, stop reconnecting, end the events.
        Requests still waiting fail with ConnectionClosed; idempotent."""
        if self._closed.is_set():
            return
        self.closing = True
        self.inbox.flush_ack()
        sup, self._supervisor = self._supervisor, None
        if sup is not None and sup is not asyncio.current_task():
            sup.cancel()
            await asyncio.wait({sup})
        conn = self._conn
        if conn is not None:
            await conn.close(CloseCode.NORMAL, "client closed")
        self._finish(None)

    async def wait_closed(self) -> None:
        await self._closed.wait()

    def _fail(self, exc: BaseException) -> None:
        """End the session because of `exc`: waiters and the event iterator raise it."""
        if self._closed.is_set():
            return
        log.warning("liaotian: client stopped: %s", exc)
        self.failure = exc
        self.closing = True
        self.inbox.flush_ack()
        conn = self._conn
        if conn is not None:
            conn.close_nowait(CloseCode.NORMAL, "client stopped")
        self._finish(exc)

    def _finish(self, exc: BaseException | None) -> None:
        self.closing = True
        self._live = False
        self._reset_hooks()
        self.inbox.close(exc)
        self._ready.set()
        self._closed.set()

    def _reset_hooks(self) -> None:
        for hook in self.on_reset:
            try:
                hook()
            except Exception:
                log.exception("liaotian: reset hook failed")

    def raise_if_ended(self) -> None:
        if self.failure is not None:
            raise self.failure
        if self.closing:
            raise ConnectionClosed(CloseCode.NORMAL, "client closed")

    # ------------------------------------------------------------------ requests

    async def live_connection(self, deadline: asyncio.Timeout | None = None) -> ClientConnection:
        """The live connection, waiting through a reconnect if one is in progress; the
        wait does not count against `deadline`. Raises once the session has ended."""
        while True:
            self.raise_if_ended()
            conn = self._conn
            if self._live and conn is not None and not conn.closed:
                return conn
            self._ready.clear()
            with paused(deadline):
                await self._ready.wait()

    async def request(
        self, msg: Message, answer: type[A], *, retry: bool, timeout: float | None
    ) -> A:
        """One request on the live connection, answered by an `answer`. Read-only ones
        (`retry=True`) are repeated after a reconnect; any request refused by a rate limit
        is made again after the wait the server advises, if it fits in the timeout (the
        refusal changed nothing). `timeout` counts connected time. Raises RequestError
        for an ERROR answer, ProtocolError for a wrong one."""
        async with asyncio.timeout(timeout) as deadline:
            while True:
                conn = await self.live_connection(deadline)
                try:
                    got = await conn.request(msg)
                    break
                except ConnectionClosed:
                    if not (retry and self._reconnect):
                        raise
                except RequestError as exc:
                    wait = advised_wait(exc, deadline)
                    if wait is None:
                        raise
                    await asyncio.sleep(wait)
        if not isinstance(got, answer):
            raise ProtocolError(
                ErrorCode.INVALID_FIELD,
                f"expected {answer.TYPE.name} for {msg.TYPE.name}, got {got.TYPE.name}",
                got.rid,
            )
        return got

    async def logout(self, timeout: float | None) -> None:
        """Revoke this device's token on the server, forget it locally, and close."""
        self._logout_requested = True
        try:
            await self.request(Logout(rid=0), LoggedOut, retry=False, timeout=timeout)
        except BaseException:
            self._logout_requested = False
            raise
        self.forget_token()
        await self.close()

    async def revoke_device(self, device: str, timeout: float | None) -> None:
        """Revoke a device's token; revoking this device is a logout."""
        own = device == self.device
        if own:
            self._logout_requested = True
        try:
            await self.request(
                RevokeDevice(rid=0, device=device), DeviceRevoked, retry=False, timeout=timeout
            )
        except BaseException:
            if own:
                self._logout_requested = False
            raise
        if own:
            self.forget_token()
            await self.close()

    # ------------------------------------------------------------------ establishing

    async def _establish(self) -> Authenticated:
        """Open a connection, authenticate, catch up; the connection is then live."""
        conn = await ClientConnection.open(
            self.host,
            self.port,
            ssl=self._ssl,
            on_message=self._on_message,
            on_close=self._on_conn_closed,
            client_name=self._client_name,
            timeout=self.request_timeout,
        )
        self._conn = conn
        self._limits = conn.limits
        self._reset_hooks()  # e.g. the server's typing budget is per connection
        inbox = self.inbox
        try:
            auth = await self._authenticate(conn)
            self.auth = auth
            self._user = auth.user
            self.device = auth.device
            inbox.head = max(inbox.head, auth.head)
            if inbox.tracker is None:
                start = self._start_position(auth)
                inbox.start_at(start)
                self.save(username=auth.user, device=auth.device, cursor=start)
            if self._sync_enabled:
                await inbox.catch_up(conn)
            if conn.closed:
                raise conn.closed_error()
            self._live = True
            self._ready.set()
            inbox.flush_ack()
            return auth
        except BaseException:
            inbox.reset_sync()
            conn.close_nowait(CloseCode.NORMAL, "giving up on this connection")
            if self._conn is conn:
                self._conn = None
            raise

    async def _authenticate(self, conn: ClientConnection) -> Authenticated:
        if self.token:
            try:
                return await self._handshake(conn, Auth(rid=0, token=self.token))
            except RequestError as exc:
                if exc.code != ErrorCode.INVALID_TOKEN:
                    raise
                self.forget_token()
                if not (self.username and self._password):
                    raise
                log.info("liaotian: stored token refused, logging in again")
        assert self.username is not None and self._password is not None
        auth = await self._handshake(
            conn, Login(rid=0, username=self.username, password=self._password, device=self.device)
        )
        self.token = auth.token
        self.save(username=auth.user, device=auth.device, token=auth.token)
        return auth

    async def _handshake(self, conn: ClientConnection, msg: Message) -> Authenticated:
        async with asyncio.timeout(self.request_timeout):
            auth = await conn.request(msg)
        assert isinstance(auth, Authenticated)
        return auth

    def _start_position(self, auth: Authenticated) -> int:
        """Where a device without a cursor starts: its saved cursor; else the position the
        server kept for it (the store was lost); else, for a brand-new device, the start of
        the log ("all") or its head ("new": only messages from now on)."""
        if self.stored_cursor is not None:
            return self.stored_cursor
        if auth.acked > 0:
            return auth.acked
        return auth.head if self._initial_sync == "new" else 0

    def _on_message(self, conn: ClientConnection, msg: Message) -> bool:
        """The reader's callback: frames of the current connection go to the inbox."""
        if conn is not self._conn:
            return False
        return self.inbox.on_message(conn, msg)

    # ------------------------------------------------------------------ connection loss

    def _on_conn_closed(self, conn: ClientConnection) -> None:
        """Synchronously, the moment a connection ends: stop handing it out."""
        if conn is not self._conn:
            return
        self._live = False
        if not self.closing:
            self._ready.clear()
        self.inbox.reset_sync()

    async def _supervise(self) -> None:
        """Watch the current connection; reconnect when it ends, or end the session."""
        try:
            while True:
                conn = self._conn
                if conn is None:
                    return
                closed = await conn.wait_closed()
                if self.closing:
                    return
                if self._logout_requested and conn.close_code == CloseCode.LOGGED_OUT:
                    return  # logout() / revoke_device() finish the job
                failure = self._fatal_reason(conn, closed)
                if failure is not None:
                    if conn.close_code == CloseCode.LOGGED_OUT:
                        self.forget_token()
                    self._fail(failure)
                    return
                log.info("liaotian: connection lost (%s); reconnecting", closed)
                if len(self.addresses) > 1:  # another node serves this user just as well
                    self.addresses.advance()
                self.inbox.emit(Disconnected(conn.close_code, conn.close_reason))
                attempts = await self._reconnect_loop()
                self.inbox.emit(Reconnected(self.inbox.head, attempts))
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._fail(exc)

    def _fatal_reason(
        self, conn: ClientConnection, closed: ConnectionClosed
    ) -> BaseException | None:
        """None if the loss calls for a reconnect, else the error that ends the session."""
        violation: ProtocolError | None = is_protocol_failure(conn)
        if violation is not None:
            return violation
        if not self._reconnect:
            return closed
        if conn.close_code is None:
            return None
        known = closed.close_code
        if known is not None and known.reconnect:
            return None
        return closed

    async def _reconnect_loop(self) -> int:
        attempts = 0
        while True:
            attempts += 1
            await asyncio.sleep(self._backoff.next_delay())
            try:
                await self._establish()
            except RequestError as exc:
                if exc.code not in _RETRYABLE:
                    raise
                log.info("liaotian: reconnect refused for now: %s", exc)
                if exc.retry_after:
                    await asyncio.sleep(exc.retry_after)
            except ConnectionClosed as exc:
                if exc.close_code is not None and not exc.close_code.reconnect:
                    raise
                log.info("liaotian: reconnect attempt %d failed: %s", attempts, exc)
                self.addresses.advance()
            except OSError as exc:  # includes TimeoutError
                log.info("liaotian: reconnect attempt %d failed: %s", attempts, exc)
                self.addresses.advance()
            else:
                self._backoff.reset()
                return attempts
            if self._max_attempts is not None and attempts >= self._max_attempts:
                raise ConnectionClosed(None, f"gave up after {attempts} reconnect attempts")
