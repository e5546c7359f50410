"""`Client`: an authenticated, self-healing session with exactly-once delivery.

    async with liaotian.client.connect("127.0.0.1", 7420, username="alice",
                                       password="...", store=FileStore("alice.json")) as c:
        await c.send("bob", "hi")
        team = await c.groups.create("team", ["bob", "carol"])
        await c.groups.send(team.group, "hello team")
        async for event in c:
            ...

The client itself does messaging: `send()`, `history()`, the chat list and read markers
(`conversations()`, `mark_read()`, `receipts()`) and the events (`async for`, see
`events`). The rest of the social layer (SPEC.md 17-23) lives in feature facades, one
object per feature, in the spirit of nats.py's `nc.jetstream()`:

* `client.groups`: create, info, list / page / iter, add, remove, leave, update, set_role,
  transfer, history, send (`groups.py`);
* `client.contacts`: request, accept, decline, cancel, remove, list, block, unblock;
* `client.account`: profile, set_profile, privacy, set_privacy, devices, revoke_device,
  logout;
* `client.presence`: query, typing;
* `client.media`: upload, download, send and send_file / send_image / send_voice /
  send_track (`media.py`, SPEC.md 27).
* `client.bots`: bot accounts (create, list, rotate, delete), commands, buttons (press,
  answer, edit) (`bots.py`, SPEC.md 26).
* `client.wallet`: balance, history, pay, red_packet, claim, packet, check_in, tasks,
  items, gift, redeem (SPEC.md 25; requests that move coins retry with their idempotency
  key by themselves, `wallet.py`).
* `client.channels`: create, find, join, leave, info, update, set_role, transfer, members,
  members_page, ban, unban, post, comment, like, unlike, pin, delete, read, fetch,
  comments, catch_up, search, list, chat_list, resolve (forum channels, SPEC.md 24,
  `channels.py`).

The method names from before the facades (`create_group`, `contact_accept`, `set_privacy`,
...) still work: see `compat`. Requests return the typed answer records of
`liaotian.protocol.social` and raise RequestError when the server answers ERROR.

What the client guarantees, and how (the engine is `Session`, with its `Inbox` and
`Outbox`):

* **Exactly once, in order.** Every entry of the user's update log has a `seq`; the cursor
  covers only entries the application took from `async for` (or this device's own sends),
  is ACKed in batches and saved in the store, so a restarted process resumes exactly there.
* **Knowing when it has everything.** After each (re)connect's SYNC has reached the head of
  the log, a `CaughtUp(head)` event follows the last entry.
* **Sends return once, with the outcome.** `send()` gives the message a client message id
  (cmid) and retries it with that cmid across reconnects, rate limits and server errors
  until it has SENT or a definitive refusal. Its timeout counts connected time only.
* **Reconnects.** On a dropped connection or a CLOSE whose code says so the client
  reconnects with full-jitter exponential backoff, AUTHs with its token, SYNCs from the
  cursor and then retries pending sends.
* **The server's limits.** The limits a server advertises in WELCOME (frame size, text and
  meta sizes, page sizes, requests in flight) are the ones the client enforces and keeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl as ssl_module
from collections.abc import AsyncIterator, Generator, Iterable
from types import TracebackType
from typing import Any, TypeVar

from liaotian.protocol import (
    CloseCode,
    ConnectionClosed,
    History,
    HistoryPage,
    Limits,
    Message,
    Register,
    Registered,
    Sent,
)
from liaotian.protocol.social import (
    ConversationList,
    ConversationSummary,
    GetReceipts,
    ListConversations,
    Ok,
    Read,
    Receipts,
)

from .account import Account
from .addresses import Address
from .backoff import Backoff
from .bots import Bots
from .channels import Channels
from .compat import CompatMethods
from .connection import CLIENT_NAME, ClientConnection
from .contacts import Contacts
from .cursor import SessionStore
from .events import ClientEvent
from .groups import Groups
from .media import Media
from .nearby import Nearby
from .outbox import SendTimeout, new_cmid
from .presence import Presence
from .session import DEFAULT, InitialSync, Session, TimeoutArg
from .shop import Shop
from .wallet import Wallet

__all__ = [
    "DEFAULT_PORT",
    "Client",
    "InitialSync",
    "SendTimeout",
    "connect",
    "new_cmid",
    "register",
]

DEFAULT_PORT = 7420
A = TypeVar("A", bound=Message)


class Client(CompatMethods):
    """A logged-in device. Create it with `connect()`; see the module docstring.

    Options: `reconnect` (False: a lost connection ends the client), `request_timeout`
    (seconds of connected time a request waits for its answer; None: no limit),
    `initial_sync` ("all" or "new": where a brand-new device starts), `sync` (False: no
    SYNC at all, live pushes only), `queue_size` (events held for the application),
    `state_events` (False: no Disconnected, Reconnected and CaughtUp events),
    `ephemeral_events` (False: no typing and presence events), `max_reconnect_attempts`,
    `backoff`, `ack_every` / `ack_interval` (how often the position is ACKed and saved),
    `client_name` (sent in HELLO), `addresses` (the nodes of a cluster, `(host, port)`
    or "host:port", in order of preference: on losing its node the client resumes on the
    next one with its token and cursor; `host` and `port` are then not used).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
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
        self._session = session = Session(
            host,
            port,
            username=username,
            password=password,
            device=device,
            token=token,
            store=store,
            ssl=ssl,
            reconnect=reconnect,
            request_timeout=request_timeout,
            initial_sync=initial_sync,
            sync=sync,
            queue_size=queue_size,
            state_events=state_events,
            ephemeral_events=ephemeral_events,
            max_reconnect_attempts=max_reconnect_attempts,
            backoff=backoff,
            ack_every=ack_every,
            ack_interval=ack_interval,
            client_name=client_name,
            addresses=addresses,
        )
        self.groups = Groups(session)
        self.contacts = Contacts(session)
        self.account = Account(session)
        self.presence = Presence(session)
        self.media = Media(session)
        self.wallet = Wallet(session)
        self.nearby = Nearby(session)
        self.shop = Shop(session)
        self.channels = Channels(session)
        self.bots = Bots(session)

    # ------------------------------------------------------------------ properties

    @property
    def host(self) -> str:
        return self._session.host

    @property
    def port(self) -> int:
        return self._session.port

    @property
    def user(self) -> str | None:
        """The account name the server confirmed."""
        return self._session.user

    @property
    def device(self) -> str:
        return self._session.device

    @property
    def token(self) -> str | None:
        """The session token (a bearer secret): keep it like a password."""
        return self._session.token

    @property
    def cursor(self) -> int:
        """Every update <= cursor has been handed to the application (or was our own)."""
        cursor = self._session.inbox.cursor
        return cursor if cursor is not None else (self._session.stored_cursor or 0)

    @property
    def head(self) -> int:
        """The newest seq of the user's log this client has heard of."""
        return self._session.inbox.head

    @property
    def connected(self) -> bool:
        """Authenticated and caught up right now (False while reconnecting)."""
        return self._session.live

    @property
    def closed(self) -> bool:
        return self._session.ended

    @property
    def failure(self) -> BaseException | None:
        """The error that ended the client, if it ended by itself."""
        return self._session.failure

    @property
    def limits(self) -> Limits:
        """The limits in force: those the server advertised in its last WELCOME."""
        return self._session.limits

    @property
    def server_limits(self) -> dict[str, Any]:
        """The limits map of the current connection's WELCOME, as received."""
        conn = self._session.conn
        return conn.server_limits if conn is not None else {}

    @property
    def store(self) -> SessionStore:
        return self._session.store

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> Client:
        """Connect, authenticate and catch up. Failures are raised, not retried: a client
        that cannot connect at all should say so at once."""
        await self._session.start()
        return self

    async def close(self) -> None:
        """ACK and save the position, send CLOSE 1000, stop reconnecting, end iteration.

        Sends still waiting fail with ConnectionClosed; idempotent.
        """
        await self._session.close()

    async def wait_closed(self) -> None:
        """Wait until the client ended (close(), logout, or a fatal error)."""
        await self._session.wait_closed()

    async def __aenter__(self) -> Client:
        if not self._session.running:
            await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # ------------------------------------------------------------------ messaging

    async def send(
        self,
        to: str,
        text: str,
        meta: dict[str, Any] | None = None,
        cmid: str | None = None,
        *,
        timeout: TimeoutArg = DEFAULT,
    ) -> Sent:
        """Send a direct message; returns its SENT once the server has stored it durably.

        `cmid` (default: new_cmid(), time-ordered) is the idempotency key: the client
        retries with it across reconnects, rate limits (after the `retry_after` the server
        asks for) and server errors, so the message is stored once and this call returns
        once, with SENT (`duplicate=True` if an earlier attempt had stored it) or a
        definitive RequestError: UNKNOWN_USER, NOT_ALLOWED (the recipient blocked you or
        takes messages from contacts only), MESSAGE_TOO_LARGE (also checked locally),
        RATE_LIMITED when waiting `retry_after` would outlast the timeout (nothing stored).

        `timeout` (default: the client's `request_timeout`; None: no limit) counts the time
        spent connected: waiting for a reconnect is not charged. If it runs out, SendTimeout
        (a TimeoutError) carries the cmid: send again with it to learn the outcome without
        risking a second copy. ConnectionClosed means the client ended meanwhile (or, made
        with `reconnect=False`, lost its connection): the outcome is then unknown too.
        """
        session = self._session
        session.raise_if_ended()
        return await session.outbox.send(to, None, text, meta, cmid, session.timeout_for(timeout))

    async def history(
        self,
        with_user: str,
        before: int | None = None,
        after: int | None = None,
        limit: int | None = None,
    ) -> HistoryPage:
        """A page of the conversation with `with_user`, ascending by position.

        `before=P`: the newest messages older than position P (`more`: older ones exist);
        `after=P`: the oldest newer than P (`more`: newer ones exist); neither: the newest.
        `limit` above the server's `max_history_page` asks for that many. Group timelines:
        `groups.history()`.
        """
        if before is not None and after is not None:
            raise ValueError("give before or after, not both")
        if limit is not None:  # within the server's page size: more pages say `more`
            limit = min(limit, self._session.limits.max_history_page)
        return await self._ask(
            History(rid=0, with_user=with_user, before=before, after=after, limit=limit),
            HistoryPage,
        )

    # ------------------------------------------------------------------ read state

    async def mark_read(self, conv: int, pos: int) -> None:
        """Everything in conversation `conv` up to `pos` has been read. Markers only move
        forward (a lower pos is accepted and changes nothing). In a direct conversation
        the other participant receives a ReadReceipt."""
        await self._ask(Read(rid=0, conv=conv, pos=pos), Ok)

    async def receipts(self, conv: int) -> Receipts:
        """Every other participant's read and delivered positions in `conv`."""
        return await self._ask(GetReceipts(rid=0, conv=conv), Receipts)

    async def conversations(
        self,
        limit: int | None = None,
        before: tuple[int, int] | ConversationSummary | None = None,
        *,
        channels: bool = False,
    ) -> ConversationList:
        """One page of the chat list, newest first, with unread counts. For the next page
        pass `before=` the last entry (or its `(ts, conv)`); `more` says one exists. With
        `channels=True` the user's channels are listed beside the chats (kind "channel")."""
        if isinstance(before, ConversationSummary):
            before = (before.ts, before.conv)
        before_ts, before_conv = before if before is not None else (None, None)
        return await self._ask(
            ListConversations(
                rid=0,
                limit=limit,
                before_ts=before_ts,
                before_conv=before_conv,
                channels=channels or None,
            ),
            ConversationList,
        )

    async def iter_conversations(
        self, page_size: int | None = None, *, channels: bool = False
    ) -> AsyncIterator[ConversationSummary]:
        """Every conversation (and with `channels=True` every channel), newest first,
        fetched page by page."""
        before: ConversationSummary | None = None
        while True:
            page = await self.conversations(page_size, before, channels=channels)
            for entry in page.conversations:
                yield entry
            if not page.more or not page.conversations:
                return
            before = page.conversations[-1]

    async def _ask(self, msg: Message, answer: type[A]) -> A:
        """A read-only request (repeated after a reconnect) with the request timeout."""
        session = self._session
        return await session.request(msg, answer, retry=True, timeout=session.request_timeout)

    async def ack(self) -> None:
        """ACK and save the current position now instead of at the next batch point."""
        session = self._session
        session.inbox.flush_ack()
        conn = session.conn
        if conn is not None and not conn.closed:
            with contextlib.suppress(ConnectionClosed):
                await conn.send_drain()

    # ------------------------------------------------------------------ events

    def __aiter__(self) -> Client:
        return self

    async def __anext__(self) -> ClientEvent:
        """The next event. Iteration ends after close() and raises the error that ended
        the client otherwise (ConnectionClosed 4002 when logged out elsewhere, ...)."""
        session = self._session
        if not session.started and not session.ended:
            raise RuntimeError("the client is not started: use `async with` or `await start()`")
        return await session.inbox.next_event()

    def __repr__(self) -> str:
        s = self._session
        return (
            f"<Client {s.user or s.username}/{s.device} "
            f"{'live' if s.live else 'offline'} cursor={self.cursor}>"
        )


# ---------------------------------------------------------------------- module level


class _Connector:
    """What `connect()` returns: awaitable (`c = await connect(...)`, then `await
    c.close()`) and an async context manager (`async with connect(...) as c:`)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def __await__(self) -> Generator[Any, None, Client]:
        return self._client.start().__await__()

    async def __aenter__(self) -> Client:
        return await self._client.start()

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._client.close()


def connect(
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
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
    **options: Any,
) -> _Connector:
    """Connect, HELLO, authenticate (AUTH with the stored token, falling back to LOGIN when
    it is refused and a password is known; else LOGIN), SYNC from the stored cursor.

    `device` defaults to the store's device, else "default". A device with no saved cursor
    starts where the server last saw it, or, if brand new, at the start of the log
    (`initial_sync="all"`) or at its head (`"new"`). More keyword options: see `Client`.
    """
    return _Connector(
        Client(
            host,
            port,
            username=username,
            password=password,
            device=device,
            token=token,
            store=store,
            ssl=ssl,
            reconnect=reconnect,
            request_timeout=request_timeout,
            initial_sync=initial_sync,
            **options,
        )
    )


async def register(
    host: str,
    port: int,
    username: str,
    password: str,
    *,
    ssl: ssl_module.SSLContext | bool | None = None,
    timeout: float | None = 10.0,
    invite: str | None = None,
) -> str:
    """Create an account; returns the username as stored. Raises RequestError
    (USERNAME_TAKEN, INVALID_USERNAME, WEAK_PASSWORD). `invite`: an invitation code of the
    user who invited this one (their "invite" task pays, SPEC.md 25.6)."""
    conn = await ClientConnection.open(host, port, ssl=ssl, timeout=timeout)
    try:
        async with asyncio.timeout(timeout):
            answer = await conn.request(
                Register(rid=0, username=username, password=password, invite=invite)
            )
        assert isinstance(answer, Registered)
        return answer.user
    finally:
        await conn.close(CloseCode.NORMAL, "registered")
