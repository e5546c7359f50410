"""`Client`: an authenticated, self-healing session with exactly-once delivery.

    async with liaotian.client.connect("127.0.0.1", 7420, username="alice",
                                       password="...", store=FileStore("alice.json")) as c:
        await c.send("bob", "hi")
        team = await c.create_group("team", ["bob", "carol"])
        await c.send_group(team.group, "hello team")
        async for event in c:
            ...

Besides messaging, the client speaks the social layer (SPEC.md 17-23): groups
(`create_group`, `add_members`, ...), read markers and receipts (`mark_read`, `receipts`),
the chat list (`conversations`), typing notices, presence, contacts and blocking, profiles
and privacy. Requests return the typed answer records of `liaotian.protocol.social` and
raise RequestError when the server answers ERROR (NOT_MEMBER, NOT_ALLOWED, FORBIDDEN,
CONFLICT, ...). See `events` for what `async for` yields.

What the client guarantees, and how:

* **Exactly once, in order.** Every entry of the user's update log has a `seq`. A
  `CursorTracker` keeps a contiguous cursor plus the seqs seen above it; an entry at or below
  the cursor, or already seen, is dropped. The cursor covers only entries the application
  took from `async for` (or this device's own sends), is ACKed to the server in batches
  (every `ack_every` entries or `ack_interval` seconds, and on close) and saved in the store
  at the same points, so a restarted process resumes exactly there.
* **Sends return once.** `send()` gives the message a client message id (cmid). If the
  connection drops before SENT arrives, the client reconnects, SYNCs, and either finds the
  message in the log (it was committed: the log entry answers the send) or sends it again
  with the same cmid (the server deduplicates and answers duplicate=true).
* **Reconnects.** On a dropped connection or a CLOSE whose code says so (1001, 1011, 4001,
  4003, 4005) the client reconnects with full-jitter exponential backoff, AUTHs with its
  token, SYNCs from the cursor and then retries pending sends. CLOSE 4002 (logged out) or
  a refused token without a password end the client with that error.
* **No blocking reader.** Each connection has one reader task that never awaits the
  application: the event queue is bounded but refuses instead of blocking; refused entries
  are fetched again from the server's log once the application catches up. Typing and
  presence pushes are not in the log: when the queue is full they are simply dropped.
* **Log events.** READ (kind 2) and CONTACT (kind 3) entries of the update log go through
  the same exactly-once cursor as messages (`ReadReceipt`, `ContactEvent`); entries of
  kinds this client does not know are counted by the cursor and skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import ssl as ssl_module
import time
from collections.abc import AsyncIterator, Generator, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, TypeVar

import msgpack
from liaotian.protocol import (
    Ack,
    Auth,
    Authenticated,
    CloseCode,
    ConnectionClosed,
    DeviceInfo,
    DeviceList,
    DeviceRevoked,
    Error,
    ErrorCode,
    History,
    HistoryPage,
    ListDevices,
    LoggedOut,
    Login,
    Logout,
    Message,
    ProtocolError,
    Register,
    Registered,
    RequestError,
    RevokeDevice,
    Send,
    Sent,
    State,
    Sync,
    Update,
    Updates,
)
from liaotian.protocol.limits import DEFAULT_LIMITS
from liaotian.protocol.social import (
    MESSAGE_POLICY,
    VISIBILITY,
    Block,
    ContactAccept,
    ContactCancel,
    ContactDecline,
    ContactList,
    ContactRemove,
    ContactRequest,
    ConversationList,
    ConversationSummary,
    GetGroup,
    GetPresence,
    GetPrivacy,
    GetProfile,
    GetReceipts,
    GroupAdd,
    GroupCreate,
    GroupInfo,
    GroupLeave,
    GroupList,
    GroupRemove,
    GroupSetRole,
    GroupSummary,
    GroupTransfer,
    GroupUpdate,
    ListContacts,
    ListConversations,
    ListGroups,
    Ok,
    Presence,
    PresenceEntry,
    PresenceList,
    Privacy,
    Profile,
    Read,
    Receipts,
    SetPrivacy,
    SetProfile,
    Typing,
    TypingNotice,
    Unblock,
)

from .backoff import Backoff
from .connection import CLIENT_NAME, ClientConnection, is_protocol_failure, request_error
from .cursor import CursorTracker, MemoryStore, SessionState, SessionStore, Verdict, classify_update
from .events import (
    LOG_EVENT_TYPES,
    ClientEvent,
    Disconnected,
    EventQueue,
    PresenceChanged,
    Reconnected,
    Resync,
    TypingEvent,
    event_from_update,
)

__all__ = ["DEFAULT_PORT", "Client", "InitialSync", "connect", "register"]

log = logging.getLogger("liaotian.client")

DEFAULT_PORT = 7420
InitialSync = Literal["all", "new"]

# ERROR codes after which the same attempt may succeed later (wait, then try again).
_RETRYABLE = frozenset({ErrorCode.THROTTLED, ErrorCode.RATE_LIMITED, ErrorCode.INTERNAL_ERROR,
                        ErrorCode.UNAVAILABLE})
# ERROR codes (rid 0) the server answers a refused TYPING with.
_TYPING_REFUSALS = frozenset({ErrorCode.RATE_LIMITED, ErrorCode.NOT_MEMBER,
                              ErrorCode.UNKNOWN_USER})



def new_cmid() -> str:
    """A fresh client message id: 12 hex digits of the time in ms, then 80 random bits.

    Ids that grow over time land together in the server's idempotency index (ordered by
    cmid, SPEC 10.3), so each message costs the server one page write less than a random
    id would; the random part keeps ids of one account's devices apart.
    """
    return f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(10)}"

class _Default:
    """Sentinel type for "use the client's request_timeout"."""


_DEFAULT = _Default()
A = TypeVar("A", bound=Message)
MAX_PRESENCE_USERS = 100  # users in one GET_PRESENCE (SPEC limits table)


@dataclass(slots=True)
class _PendingSend:
    """A send waiting for its SENT. `result` is resolved by SENT or by the log entry a SYNC
    returns for the same cmid; nobody awaits it directly, so it never holds an exception."""

    to: str
    cmid: str
    text: str
    meta: dict[str, Any]
    result: asyncio.Future[Sent] = field(repr=False)
    group: int | None = None  # a group send: `to` is "" then


class _TypingSlot:
    """Client-side bookkeeping of typing notices for one conversation: a token bucket like
    the server's (so a chatty UI does not run into ERROR 4001) and what was last sent."""

    __slots__ = ("sent", "sent_at", "stamp", "timer", "tokens", "wanted")

    def __init__(self, burst: float, now: float) -> None:
        self.tokens = burst
        self.stamp = now
        self.sent: bool | None = None  # the state last sent on this connection
        self.sent_at = 0.0
        self.wanted: bool | None = None  # a state waiting for budget
        self.timer: asyncio.TimerHandle | None = None

    def refill(self, now: float, rate: float, burst: float) -> None:
        self.tokens = min(burst, self.tokens + (now - self.stamp) * rate)
        self.stamp = now


def _sent_from_update(update: Update) -> Sent:
    """The SENT a send would have received, rebuilt from its entry in the sender's log."""
    m = update.message
    assert m is not None
    return Sent(rid=0, id=m.id, conv=m.conv, pos=m.pos, ts=m.ts, seq=update.seq, cmid=m.cmid,
                duplicate=True)


class Client:
    """A logged-in device. Create it with `connect()`; see the module docstring."""

    # Typing notices (see `typing()`): a typing=True is renewed at most every
    # `typing_renew` seconds, and at most `typing_rate` notices per second (bursts of
    # `typing_burst`) go out per conversation, as the server's defaults allow.
    typing_renew = 2.0
    typing_rate = 2.0
    typing_burst = 3.0

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
    ) -> None:
        if initial_sync not in ("all", "new"):
            raise ValueError("initial_sync must be 'all' or 'new'")
        self.host = host
        self.port = port
        self._ssl = ssl
        self._password = password
        self._reconnect = reconnect
        self._request_timeout = request_timeout
        self._initial_sync = initial_sync
        self._sync_enabled = sync
        self._state_events = state_events
        self._ephemeral_events = ephemeral_events
        self._max_attempts = max_reconnect_attempts
        self._backoff = backoff if backoff is not None else Backoff()
        self._ack_every = max(1, ack_every)
        self._ack_interval = ack_interval
        self._client_name = client_name

        # The stored session belongs to one account and device: reuse it only if it matches.
        self._store: SessionStore = store if store is not None else MemoryStore()
        state = self._store.load()
        matches = (username is None or state.username in (None, username)) and (
            device is None or state.device in (None, device))
        if not matches:
            state = SessionState(extra=state.extra)
        self._session = state
        self._username = username or state.username
        self._device = device or state.device or "default"
        self._token = token or state.token
        self._stored_cursor = state.cursor
        if not self._token and not (self._username and password):
            raise ValueError("need a session token (given or in the store) "
                             "or a username and password")

        self._conn: ClientConnection | None = None
        self._live = False  # authenticated and caught up: requests may go out
        self._ready = asyncio.Event()  # set when live, closed or failed: wakes waiters
        self._closing = False
        self._closed = asyncio.Event()
        self._failure: BaseException | None = None
        self._logout_requested = False
        self._supervisor: asyncio.Task[None] | None = None
        self._user: str | None = None
        self._head = 0
        self._auth: Authenticated | None = None
        self._tracker: CursorTracker | None = None
        self._acked = 0
        self._ack_timer: asyncio.TimerHandle | None = None
        self._events: EventQueue[ClientEvent] = EventQueue(queue_size)
        self._sends: dict[str, _PendingSend] = {}
        # The SYNC in progress on the current connection, if any.
        self._sync_rid: int | None = None
        self._sync_initial = False
        self._sync_done: asyncio.Future[None] | None = None
        self._sync_deadline: asyncio.Timeout | None = None
        self._held: list[Updates] = []  # pushes that arrived while a SYNC was running
        self._typing_slots: dict[tuple[str, str | int], _TypingSlot] = {}

    # ------------------------------------------------------------------ properties

    @property
    def user(self) -> str | None:
        """The account name the server confirmed."""
        return self._user

    @property
    def device(self) -> str:
        return self._device

    @property
    def token(self) -> str | None:
        """The session token (a bearer secret): keep it like a password."""
        return self._token

    @property
    def cursor(self) -> int:
        """Every update <= cursor has been handed to the application (or was our own)."""
        return self._tracker.cursor if self._tracker is not None else (self._stored_cursor or 0)

    @property
    def head(self) -> int:
        """The newest seq of the user's log this client has heard of."""
        return self._head

    @property
    def connected(self) -> bool:
        """Authenticated and caught up right now (False while reconnecting)."""
        return self._live and self._conn is not None and not self._conn.closed

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    @property
    def server_limits(self) -> dict[str, Any]:
        """The limits the server advertised in WELCOME."""
        return self._conn.server_limits if self._conn is not None else {}

    @property
    def store(self) -> SessionStore:
        return self._store

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> Client:
        """Connect, authenticate and catch up. Failures are raised, not retried: a client
        that cannot connect at all should say so at once."""
        if self._supervisor is not None or self._closing:
            raise RuntimeError("client already started")
        await self._establish()
        self._supervisor = asyncio.get_running_loop().create_task(
            self._supervise(), name="liaotian-client")
        return self

    async def close(self) -> None:
        """ACK and save the position, send CLOSE 1000, stop reconnecting, end iteration.

        Sends still waiting fail with ConnectionClosed; idempotent.
        """
        if self._closed.is_set():
            return
        self._closing = True
        self._flush_ack()
        sup, self._supervisor = self._supervisor, None
        if sup is not None and sup is not asyncio.current_task():
            sup.cancel()
            await asyncio.wait({sup})
        conn = self._conn
        if conn is not None:
            await conn.close(CloseCode.NORMAL, "client closed")
        self._finish(None)

    async def wait_closed(self) -> None:
        """Wait until the client ended (close(), logout, or a fatal error)."""
        await self._closed.wait()

    @property
    def failure(self) -> BaseException | None:
        """The error that ended the client, if it ended by itself."""
        return self._failure

    async def __aenter__(self) -> Client:
        if self._supervisor is None:
            await self.start()
        return self

    async def __aexit__(self, et: type[BaseException] | None, ev: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    # ------------------------------------------------------------------ requests

    async def send(self, to: str, text: str, meta: dict[str, Any] | None = None,
                   cmid: str | None = None, *,
                   timeout: float | _Default | None = _DEFAULT) -> Sent:
        """Send a message; returns its SENT once the server has stored it durably.

        `cmid` (default: new_cmid(), time-ordered) is the idempotency key: across reconnects the
        client resends with the same cmid, so the message is stored once and this call
        returns once. If it times out the outcome is unknown: call again with the same
        cmid to find out without risking a duplicate. Raises RequestError for refusals
        (UNKNOWN_USER, MESSAGE_TOO_LARGE (also checked locally), NOT_ALLOWED when the
        recipient blocked you or accepts messages from contacts only, ...). RATE_LIMITED is
        waited out and retried, unless its `retry_after` ends after the timeout: then it is
        raised at once.
        """
        return await self._send(to, None, text, meta, cmid, timeout)

    async def send_group(self, group: int, text: str, meta: dict[str, Any] | None = None,
                         cmid: str | None = None, *,
                         timeout: float | _Default | None = _DEFAULT) -> Sent:
        """Send a message to a group (its id is its conversation id); same exactly-once
        behaviour as `send()`. Raises RequestError NOT_MEMBER if you are not a member (or
        the group does not exist)."""
        if type(group) is not int or group < 1:
            raise ValueError("group must be a positive integer")
        return await self._send("", group, text, meta, cmid, timeout)

    async def _send(self, to: str, group: int | None, text: str,
                    meta: dict[str, Any] | None, cmid: str | None,
                    timeout: float | _Default | None) -> Sent:
        cmid = cmid if cmid is not None else new_cmid()
        self._check_message(cmid, text, meta)
        if cmid in self._sends:
            raise ValueError(f"a send with cmid {cmid!r} is already in progress")
        self._raise_if_ended()
        pending = _PendingSend(to, cmid, text, dict(meta or {}),
                               asyncio.get_running_loop().create_future(), group)
        self._sends[cmid] = pending
        try:
            async with asyncio.timeout(self._timeout(timeout)) as deadline:
                return await self._send_loop(pending, deadline)
        finally:
            if self._sends.get(cmid) is pending:
                del self._sends[cmid]
            if not pending.result.done():
                pending.result.cancel()

    async def _send_loop(self, p: _PendingSend, deadline: asyncio.Timeout) -> Sent:
        while True:
            conn = await self._ready_connection()
            if p.result.done():  # a SYNC found it in the log after a reconnect
                return p.result.result()
            try:
                sent = await conn.request(Send(rid=0, to=p.to, cmid=p.cmid, text=p.text,
                                               meta=p.meta, group=p.group))
            except ConnectionClosed:
                if not self._reconnect:
                    raise
                continue  # resent with the same cmid once reconnected
            except RequestError as exc:
                if exc.code == ErrorCode.RATE_LIMITED:
                    wait = exc.retry_after or 1.0
                    when = deadline.when()
                    if when is not None and asyncio.get_running_loop().time() + wait > when:
                        raise  # the wait outlasts the timeout: the caller sees retry_after
                    await asyncio.sleep(wait)
                    continue
                if exc.code == ErrorCode.UNAVAILABLE and self._reconnect:
                    await conn.wait_closed()  # the server is going away: retry after
                    continue
                raise
            assert isinstance(sent, Sent)
            return sent

    async def history(self, with_user: str, before: int | None = None,
                      after: int | None = None, limit: int | None = None) -> HistoryPage:
        """A page of the conversation with `with_user`, ascending by position.

        `before=P`: the newest messages older than position P (`more`: older ones exist);
        `after=P`: the oldest newer than P (`more`: newer ones exist); neither: the newest.
        """
        if before is not None and after is not None:
            raise ValueError("give before or after, not both")
        page = await self._call(History(rid=0, with_user=with_user, before=before,
                                        after=after, limit=limit), retry=True)
        assert isinstance(page, HistoryPage)
        return page

    async def history_group(self, group: int, before: int | None = None,
                            after: int | None = None, limit: int | None = None) -> HistoryPage:
        """A page of a group's timeline (messages and events), like `history()`. A member
        sees the timeline from the event that added them on."""
        if before is not None and after is not None:
            raise ValueError("give before or after, not both")
        return await self._ask(History(rid=0, with_user="", group=group, before=before,
                                       after=after, limit=limit), HistoryPage, retry=True)

    # ------------------------------------------------------------------ groups

    async def create_group(self, name: str, members: Iterable[str],
                           topic: str = "") -> GroupInfo:
        """Create a group owned by this user with `members` (usernames; this user is
        added anyway). Its `group` id is also its conversation id. Refusals: UNKNOWN_USER,
        NOT_ALLOWED (a member blocked you or takes contacts only), GROUP_FULL."""
        return await self._ask(GroupCreate(rid=0, name=name, members=_names(members),
                                           topic=topic), GroupInfo, retry=False)

    async def group_info(self, group: int) -> GroupInfo:
        """Name, topic, owner, newest position and members with roles (NOT_MEMBER if you
        are not a member)."""
        return await self._ask(GetGroup(rid=0, group=group), GroupInfo, retry=True)

    async def groups(self) -> list[GroupSummary]:
        """The groups this user is a member of, with their role in each: every page of
        LIST_GROUPS (see `groups_page`), in ascending group id."""
        out: list[GroupSummary] = []
        after: int | None = None
        while True:
            page, more = await self.groups_page(after=after)
            out.extend(page)
            if not more or not page:
                return out
            after = page[-1].group

    async def groups_page(self, *, limit: int | None = None, after: int | None = None
                          ) -> tuple[list[GroupSummary], bool]:
        """One page of this user's groups in ascending group id: those above group id
        `after`, at most `limit` (1 .. 500; the server's default page when None), and
        whether more follow."""
        answer = await self._ask(ListGroups(rid=0, limit=limit, after=after), GroupList,
                                 retry=True)
        return list(answer.groups), answer.more

    async def add_members(self, group: int, users: Iterable[str]) -> int:
        """Add members (owner or admin); returns the position of the "added" event."""
        return await self._group_op(GroupAdd(rid=0, group=group, users=_names(users)))

    async def remove_member(self, group: int, user: str) -> int:
        """Remove a member (owner: anyone; admin: plain members); returns the event's
        position. The removed user stops receiving the group at once."""
        return await self._group_op(GroupRemove(rid=0, group=group, user=user))

    async def leave_group(self, group: int) -> int:
        """Leave the group (an owner must transfer ownership first: CONFLICT)."""
        return await self._group_op(GroupLeave(rid=0, group=group))

    async def update_group(self, group: int, name: str | None = None,
                           topic: str | None = None) -> int:
        """Rename the group and/or set its topic (owner or admin)."""
        if name is None and topic is None:
            raise ValueError("give a new name, a new topic, or both")
        return await self._group_op(GroupUpdate(rid=0, group=group, name=name, topic=topic))

    async def set_role(self, group: int, user: str, role: str) -> int:
        """Make a member an "admin" or a plain "member" again (owner only)."""
        if role not in ("admin", "member"):
            raise ValueError("role must be 'admin' or 'member'")
        return await self._group_op(GroupSetRole(rid=0, group=group, user=user, role=role))

    async def transfer_group(self, group: int, user: str) -> int:
        """Hand ownership to another member (owner only); this user becomes an admin."""
        return await self._group_op(GroupTransfer(rid=0, group=group, user=user))

    async def _group_op(self, msg: Message) -> int:
        """A group change: not retried after a lost connection (it may have happened), and
        answered with the position of the timeline event it created (0 if none)."""
        ok = await self._ask(msg, Ok, retry=False)
        return ok.pos or 0

    # ------------------------------------------------------------------ read state

    async def mark_read(self, conv: int, pos: int) -> None:
        """Everything in conversation `conv` up to `pos` has been read. Markers only move
        forward (a lower pos is accepted and changes nothing). In a direct conversation
        the other participant receives a ReadReceipt."""
        await self._ask(Read(rid=0, conv=conv, pos=pos), Ok, retry=True)

    async def receipts(self, conv: int) -> Receipts:
        """Every other participant's read and delivered positions in `conv`."""
        return await self._ask(GetReceipts(rid=0, conv=conv), Receipts, retry=True)

    async def conversations(self, limit: int | None = None,
                            before: tuple[int, int] | ConversationSummary | None = None
                            ) -> ConversationList:
        """One page of the chat list, newest first, with unread counts. For the next page
        pass `before=` the last entry (or its `(ts, conv)`); `more` says one exists."""
        if isinstance(before, ConversationSummary):
            before = (before.ts, before.conv)
        before_ts, before_conv = before if before is not None else (None, None)
        return await self._ask(ListConversations(rid=0, limit=limit, before_ts=before_ts,
                                                 before_conv=before_conv),
                               ConversationList, retry=True)

    async def iter_conversations(self, page_size: int | None = None
                                 ) -> AsyncIterator[ConversationSummary]:
        """Every conversation, newest first, fetched page by page."""
        before: ConversationSummary | None = None
        while True:
            page = await self.conversations(page_size, before)
            for entry in page.conversations:
                yield entry
            if not page.more or not page.conversations:
                return
            before = page.conversations[-1]

    # ------------------------------------------------------------------ typing, presence

    async def typing(self, to: str | None = None, group: int | None = None,
                     typing: bool = True) -> bool:
        """Tell the peer `to` (or the other members of `group`) that this user is typing
        (`typing=False`: stopped). One-way and best effort: never raises for a notice that
        cannot go out (not connected) or that the server drops or refuses (its ERROR
        without a request id is only logged). Returns True if a notice was sent or will
        be sent shortly, False if it was not needed or could not go out.

        Call it as often as you like (on every keystroke): a repeated typing=True is
        renewed only every `typing_renew` seconds (receivers keep one for its ttl), a
        repeated typing=False is not sent again, and beyond `typing_rate` notices per
        second the latest state is sent as soon as the budget allows.
        """
        if (to is None) == (group is None):
            raise ValueError("give to or group, not both")
        key: tuple[str, str | int] = ("to", to) if to is not None else ("group", group or 0)
        if not self.connected:
            return False
        loop = asyncio.get_running_loop()
        now = loop.time()
        slot = self._typing_slots.get(key)
        if slot is None:
            if len(self._typing_slots) > 256:
                self._reset_typing()
            slot = self._typing_slots[key] = _TypingSlot(self.typing_burst, now)
        slot.refill(now, self.typing_rate, self.typing_burst)
        if slot.timer is not None:  # waiting for budget: the newest state wins
            slot.wanted = typing
            return True
        if typing == slot.sent and (not typing or now - slot.sent_at < self.typing_renew):
            return False
        if slot.tokens >= 1:
            return self._send_typing(slot, key, typing, now)
        slot.wanted = typing
        slot.timer = loop.call_later((1 - slot.tokens) / self.typing_rate,
                                     self._typing_due, key)
        return True

    def _typing_due(self, key: tuple[str, str | int]) -> None:
        slot = self._typing_slots.get(key)
        if slot is None:
            return
        slot.timer = None
        wanted, slot.wanted = slot.wanted, None
        if wanted is None or not self.connected:
            return
        now = asyncio.get_running_loop().time()
        slot.refill(now, self.typing_rate, self.typing_burst)
        if wanted != slot.sent or (wanted and now - slot.sent_at >= self.typing_renew):
            self._send_typing(slot, key, wanted, now)

    def _send_typing(self, slot: _TypingSlot, key: tuple[str, str | int], typing: bool,
                     now: float) -> bool:
        conn = self._conn
        if conn is None:
            return False
        target = key[1]
        if isinstance(target, str):
            msg = Typing(rid=0, typing=typing, to=target)
        else:
            msg = Typing(rid=0, typing=typing, group=target)
        if not conn.send_nowait(msg):
            return False
        slot.tokens -= 1
        slot.sent, slot.sent_at = typing, now
        return True

    def _reset_typing(self) -> None:
        for slot in self._typing_slots.values():
            if slot.timer is not None:
                slot.timer.cancel()
        self._typing_slots.clear()

    async def presence(self, users: str | Iterable[str]) -> list[PresenceEntry]:
        """Online state and last seen of the `users` this user may see (their presence
        privacy decides; others and unknown names are simply absent from the result).
        Any number of users: they are asked for in batches of 100."""
        names = list(dict.fromkeys(_names(users)))
        out: list[PresenceEntry] = []
        for i in range(0, len(names), MAX_PRESENCE_USERS):
            batch = tuple(names[i:i + MAX_PRESENCE_USERS])
            answer = await self._ask(GetPresence(rid=0, users=batch), PresenceList, retry=True)
            out.extend(answer.presence)
        return out

    # ------------------------------------------------------------------ contacts

    async def contact_request(self, user: str) -> None:
        """Ask `user` to become a contact (accepts at once if they already asked you)."""
        await self._ask(ContactRequest(rid=0, user=user), Ok, retry=True)

    async def contact_accept(self, user: str) -> None:
        """Accept `user`'s pending request (CONFLICT if there is none)."""
        await self._ask(ContactAccept(rid=0, user=user), Ok, retry=False)

    async def contact_decline(self, user: str) -> None:
        """Decline `user`'s pending request (CONFLICT if there is none)."""
        await self._ask(ContactDecline(rid=0, user=user), Ok, retry=False)

    async def contact_cancel(self, user: str) -> None:
        """Withdraw the request this user sent to `user` (CONFLICT if there is none)."""
        await self._ask(ContactCancel(rid=0, user=user), Ok, retry=False)

    async def contact_remove(self, user: str) -> None:
        """Stop being contacts with `user` (CONFLICT if you are not)."""
        await self._ask(ContactRemove(rid=0, user=user), Ok, retry=False)

    async def contacts(self) -> ContactList:
        """Contacts, incoming and outgoing requests, and blocked users (sorted names)."""
        return await self._ask(ListContacts(rid=0), ContactList, retry=True)

    async def block(self, user: str) -> None:
        """Block `user` (idempotent): their direct messages fail with NOT_ALLOWED, their
        requests and typing are dropped, they stop seeing your presence and profile."""
        await self._ask(Block(rid=0, user=user), Ok, retry=True)

    async def unblock(self, user: str) -> None:
        """Lift a block (idempotent)."""
        await self._ask(Unblock(rid=0, user=user), Ok, retry=True)

    # ------------------------------------------------------------------ profile, privacy

    async def set_profile(self, display_name: str | None = None,
                          status: str | None = None) -> None:
        """Change the display name and/or status ("" clears one; None leaves it)."""
        await self._ask(SetProfile(rid=0, display_name=display_name, status=status), Ok,
                        retry=True)

    async def profile(self, user: str | None = None) -> Profile:
        """`user`'s profile (default: this user's). NOT_ALLOWED if their profile privacy
        does not include you or they blocked you; UNKNOWN_USER."""
        who = user if user is not None else (self._user or self._username)
        if who is None:
            raise ValueError("no user given and the client is not logged in")
        return await self._ask(GetProfile(rid=0, user=who), Profile, retry=True)

    async def set_privacy(self, presence: str | None = None, profile: str | None = None,
                          messages: str | None = None, groups: str | None = None, *,
                          receipts: str | None = None) -> None:
        """Who sees presence / profile / read and delivered positions ("everyone",
        "contacts", "nobody"), who may send direct messages ("everyone", "contacts") and who
        may add this user to groups ("everyone", "contacts", "nobody"); None leaves a
        setting as it is."""
        for name, value, allowed in (("presence", presence, VISIBILITY),
                                     ("profile", profile, VISIBILITY),
                                     ("messages", messages, MESSAGE_POLICY),
                                     ("groups", groups, VISIBILITY),
                                     ("receipts", receipts, VISIBILITY)):
            if value is not None and value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}")
        await self._ask(SetPrivacy(rid=0, presence=presence, profile=profile,
                                   messages=messages, groups=groups, receipts=receipts), Ok,
                        retry=True)

    async def privacy(self) -> Privacy:
        """This user's privacy settings."""
        return await self._ask(GetPrivacy(rid=0), Privacy, retry=True)

    async def devices(self) -> list[DeviceInfo]:
        """The account's devices, with their positions and whether they are online."""
        answer = await self._call(ListDevices(rid=0), retry=True)
        assert isinstance(answer, DeviceList)
        return list(answer.devices)

    async def revoke_device(self, device: str) -> None:
        """Revoke another device's token and disconnect it. Revoking this device is a
        logout: the client then ends."""
        if device == self._device:
            self._logout_requested = True
        try:
            answer = await self._call(RevokeDevice(rid=0, device=device), retry=False)
        except BaseException:
            if device == self._device:
                self._logout_requested = False
            raise
        assert isinstance(answer, DeviceRevoked)
        if device == self._device:
            self._forget_token()
            await self.close()

    async def logout(self) -> None:
        """Revoke this device's token on the server, forget it locally, and close."""
        self._logout_requested = True
        try:
            answer = await self._call(Logout(rid=0), retry=False)
        except BaseException:
            self._logout_requested = False
            raise
        assert isinstance(answer, LoggedOut)
        self._forget_token()
        await self.close()

    async def ack(self) -> None:
        """ACK and save the current position now instead of at the next batch point."""
        self._flush_ack()
        conn = self._conn
        if conn is not None and not conn.closed:
            with contextlib.suppress(ConnectionClosed):
                await conn.send_drain()

    async def _call(self, msg: Message, *, retry: bool,
                    timeout: float | _Default | None = _DEFAULT) -> Message:
        """One request on the live connection; read-only ones are retried after a
        reconnect, within the timeout."""
        async with asyncio.timeout(self._timeout(timeout)):
            while True:
                conn = await self._ready_connection()
                try:
                    return await conn.request(msg)
                except ConnectionClosed:
                    if not (retry and self._reconnect):
                        raise

    async def _ask(self, msg: Message, answer: type[A], *, retry: bool) -> A:
        """`_call` and check the type of the answer."""
        got = await self._call(msg, retry=retry)
        if not isinstance(got, answer):
            raise ProtocolError(ErrorCode.INVALID_FIELD,
                                f"expected {answer.TYPE.name} for {msg.TYPE.name}, "
                                f"got {got.TYPE.name}", got.rid)
        return got

    def _timeout(self, timeout: float | _Default | None) -> float | None:
        return self._request_timeout if isinstance(timeout, _Default) else timeout

    def _check_message(self, cmid: str, text: str, meta: dict[str, Any] | None) -> None:
        """Refuse locally what the server would refuse, before it enters the retry path:
        a message the server rejects by closing the connection would be resent forever."""
        limits = self.server_limits
        max_cmid = int(limits.get("max_cmid_len", DEFAULT_LIMITS.max_cmid_len))
        max_text = int(limits.get("max_text_len", DEFAULT_LIMITS.max_text_len))
        max_meta = int(limits.get("max_meta_size", DEFAULT_LIMITS.max_meta_size))
        if not isinstance(cmid, str) or not 1 <= len(cmid) <= max_cmid:
            raise ValueError(f"cmid must be a string of 1..{max_cmid} characters")
        if len(text.encode()) > max_text:
            raise RequestError(ErrorCode.MESSAGE_TOO_LARGE,
                               f"text above {max_text} bytes (checked locally)")
        if meta and len(msgpack.packb(meta)) > max_meta:
            raise RequestError(ErrorCode.MESSAGE_TOO_LARGE,
                               f"meta above {max_meta} bytes (checked locally)")

    # ------------------------------------------------------------------ events

    def __aiter__(self) -> Client:
        return self

    async def __anext__(self) -> ClientEvent:
        """The next event. Iteration ends after close() and raises the error that ended
        the client otherwise (ConnectionClosed 4002 when logged out elsewhere, ...)."""
        if self._tracker is None and not self._closed.is_set():
            raise RuntimeError("the client is not started: use `async with` or `await start()`")
        event = await self._events.get()
        tracker = self._tracker
        if tracker is not None:
            if isinstance(event, LOG_EVENT_TYPES):
                tracker.handed(event.seq)
                self._after_cursor_change()
            self._maybe_refetch()
        return event

    def _emit(self, event: ClientEvent) -> None:
        if isinstance(event, Disconnected | Reconnected) and not self._state_events:
            return
        self._events.put_nowait(event, force=True)

    def _emit_ephemeral(self, event: TypingEvent | PresenceChanged) -> None:
        """A push that is not in the log: queued if there is room, else dropped (it cannot
        be fetched again, and waiting for room would block the reader)."""
        if self._ephemeral_events and not self._events.put_nowait(event):
            log.debug("liaotian: event queue full, dropped %r", event)

    # ------------------------------------------------------------------ establishing

    async def _establish(self) -> Authenticated:
        """Open a connection, authenticate, catch up; the connection is then live."""
        conn = await ClientConnection.open(
            self.host, self.port, ssl=self._ssl, on_message=self._on_message,
            on_close=self._on_conn_closed, client_name=self._client_name,
            timeout=self._request_timeout)
        self._conn = conn
        self._reset_typing()  # the server's typing budget is per connection
        try:
            auth = await self._authenticate(conn)
            self._auth = auth
            self._user = auth.user
            self._device = auth.device
            self._head = max(self._head, auth.head)
            if self._tracker is None:
                start = self._start_position(auth)
                self._tracker = CursorTracker(start)
                self._acked = start
                self._save(username=auth.user, device=auth.device, cursor=start)
            if self._sync_enabled:
                await self._sync(conn)
            if conn.closed:
                raise conn.closed_error()
            self._live = True
            self._ready.set()
            self._flush_ack()
            return auth
        except BaseException:
            self._reset_sync_state()
            conn.close_nowait(CloseCode.NORMAL, "giving up on this connection")
            if self._conn is conn:
                self._conn = None
            raise

    async def _authenticate(self, conn: ClientConnection) -> Authenticated:
        if self._token:
            try:
                auth = await self._request(conn, Auth(rid=0, token=self._token))
                assert isinstance(auth, Authenticated)
                return auth
            except RequestError as exc:
                if exc.code != ErrorCode.INVALID_TOKEN:
                    raise
                self._forget_token()
                if not (self._username and self._password):
                    raise
                log.info("liaotian: stored token refused, logging in again")
        assert self._username is not None and self._password is not None
        auth = await self._request(conn, Login(rid=0, username=self._username,
                                               password=self._password, device=self._device))
        assert isinstance(auth, Authenticated)
        self._token = auth.token
        self._save(username=auth.user, device=auth.device, token=auth.token)
        return auth

    async def _request(self, conn: ClientConnection, msg: Message) -> Message:
        async with asyncio.timeout(self._request_timeout):
            return await conn.request(msg)

    def _start_position(self, auth: Authenticated) -> int:
        """Where a device without a tracker starts: its saved cursor; else the position the
        server kept for it (the store was lost); else, for a brand-new device, the start of
        the log ("all") or its head ("new": only messages from now on)."""
        if self._stored_cursor is not None:
            return self._stored_cursor
        if auth.acked > 0:
            return auth.acked
        return auth.head if self._initial_sync == "new" else 0

    async def _sync(self, conn: ClientConnection) -> None:
        """Page through the log from the cursor; the reader processes each page in line
        (so pushes can never overtake it) and this waits for the last one, with the
        request timeout applied per page."""
        tracker = self._tracker
        assert tracker is not None
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._sync_done = done
        self._sync_initial = True
        self._held = []
        tracker.begin_sync()
        self._request_sync_page(conn, tracker.cursor)
        try:
            async with asyncio.timeout(self._request_timeout) as deadline:
                self._sync_deadline = deadline
                waiting: set[asyncio.Future[Any]] = {done, conn.closed_future}
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._sync_deadline = None
            if not done.done():
                done.cancel()
        if done.done() and not done.cancelled() and (exc := done.exception()) is not None:
            raise exc  # the server refused the SYNC
        if not done.done() or done.cancelled() or conn.closed:
            raise conn.closed_error()

    def _request_sync_page(self, conn: ClientConnection, since: int) -> None:
        limit = None
        tracker = self._tracker
        # A refetch asks for about what the queue can take. Once it overflows again the
        # rest of the pages are dropped anyway, but the connection only goes live again
        # after the last page, so those are fetched at the server's default size.
        if not self._sync_initial and tracker is not None and not tracker.overflowing:
            max_page = int(self.server_limits.get("max_sync_page",
                                                  DEFAULT_LIMITS.max_sync_page))
            limit = max(1, min(max_page, self._events.free + tracker.pending))
        rid = conn.next_rid()
        if conn.send_nowait(Sync(rid=rid, since=since, limit=limit)):
            self._sync_rid = rid
        else:
            self._sync_rid = None

    def _reset_sync_state(self) -> None:
        self._sync_rid = None
        self._held = []
        done = self._sync_done
        if done is not None and not done.done():
            done.cancel()
        self._sync_done = None

    # ------------------------------------------------------------------ reading

    def _on_message(self, conn: ClientConnection, msg: Message) -> bool:
        """Called by the reader for every frame, in order. True = consumed here."""
        if conn is not self._conn or self._tracker is None:
            return False
        if isinstance(msg, Updates):
            self._head = max(self._head, msg.head)
            if msg.rid == 0:
                if self._sync_rid is not None:
                    self._held.append(msg)  # deliver after the SYNC's pages, in order
                else:
                    self._deliver(msg.updates)
                return True
            if msg.rid == self._sync_rid:
                self._on_sync_page(conn, msg)
                return True
            return False
        if isinstance(msg, Sent):
            self._on_sent(msg)
            return False  # the request future gets it too
        if isinstance(msg, TypingNotice):
            self._emit_ephemeral(TypingEvent(msg.user, msg.typing, msg.ttl, msg.group))
            return True
        if isinstance(msg, Presence):
            self._emit_ephemeral(PresenceChanged(msg.user, msg.online, msg.last_seen))
            return True
        if isinstance(msg, Error):
            if msg.rid and msg.rid == self._sync_rid:
                self._on_sync_error(conn, msg)
                return True
            if not msg.rid:
                # One-way frames (TYPING, ACK) are refused this way; a refused typing
                # notice (rate limit, not a member, unknown user) is not worth a warning.
                level = logging.DEBUG if msg.code in _TYPING_REFUSALS else logging.WARNING
                log.log(level, "liaotian: server error without a request: %s %s",
                        msg.code, msg.message)
                return True
        return False

    def _on_sync_page(self, conn: ClientConnection, page: Updates) -> None:
        tracker = self._tracker
        assert tracker is not None
        self._sync_rid = None
        if page.resync:
            tracker.reset(page.head)
            self._emit(Resync(page.head))
        else:
            self._deliver(page.updates)
        if self._sync_deadline is not None and self._request_timeout is not None:
            self._sync_deadline.reschedule(asyncio.get_running_loop().time()
                                           + self._request_timeout)
        if page.more and page.updates:
            self._request_sync_page(conn, page.updates[-1].seq)
            return
        # The log is caught up; pushes held meanwhile follow in order.
        held, self._held = self._held, []
        for push in held:
            self._deliver(push.updates)
        done = self._sync_done
        if done is not None and not done.done():
            done.set_result(None)
        self._sync_done = None
        self._sync_initial = False
        self._after_cursor_change()

    def _on_sync_error(self, conn: ClientConnection, err: Error) -> None:
        tracker = self._tracker
        assert tracker is not None
        self._sync_rid = None
        if err.code == ErrorCode.INVALID_CURSOR and tracker.cursor > 0:
            # Our cursor is ahead of the server's log: the stored state belongs to another
            # incarnation of the server (its data was reset). As SPEC.md section 15 advises,
            # start over from 0: the whole new log follows. Resync(0) tells the application
            # that what it shows may not match the server any more.
            log.warning("liaotian: cursor %d is ahead of the server's log (head %d); "
                        "syncing again from 0", tracker.cursor, self._head)
            tracker.reset(0)
            self._acked = 0
            self._save(cursor=0)
            self._emit(Resync(0))
            self._request_sync_page(conn, 0)
            return
        exc = request_error(err)
        done = self._sync_done
        if done is not None and not done.done():
            done.set_exception(exc)
            return
        # A refetch failed on a live connection: start over on a fresh one.
        log.warning("liaotian: refetch refused (%s); reconnecting", exc)
        conn.close_nowait(CloseCode.GOING_AWAY, "refetch failed")

    def _on_sent(self, msg: Sent) -> None:
        tracker = self._tracker
        if tracker is not None:
            tracker.skip(msg.seq)  # the server never pushes our own send back to us
        p = self._sends.get(msg.cmid)
        if p is not None and not p.result.done():
            p.result.set_result(msg)
        self._after_cursor_change()

    def _deliver(self, updates: tuple[Update, ...]) -> None:
        """Apply the exactly-once rules to updates arriving in log order."""
        tracker = self._tracker
        assert tracker is not None
        events = self._events
        top = 0
        for u in updates:
            if u.seq > top:
                top = u.seq
            verdict = classify_update(u, tracker, self._user, self._sends)
            if verdict is Verdict.DUPLICATE:
                continue
            if verdict is Verdict.UNKNOWN_KIND:
                tracker.skip(u.seq)
                continue
            if verdict is Verdict.OWN_SEND:
                msg = u.message
                assert msg is not None
                p = self._sends[msg.cmid]
                if not p.result.done():
                    p.result.set_result(_sent_from_update(u))
                tracker.skip(u.seq)
                continue
            event = event_from_update(u)
            if event is None:  # a READ or CONTACT entry this client cannot read
                log.warning("liaotian: skipped unreadable update %d (kind %d): %r",
                            u.seq, u.kind, u.data)
                tracker.skip(u.seq)
                continue
            if tracker.overflowing or not events.put_nowait(event):
                tracker.drop(u.seq)  # fetched again once the application catches up
                continue
            tracker.accept(u.seq)
        if top:
            tracker.received_through(top)
        self._after_cursor_change()

    def _maybe_refetch(self) -> None:
        """After an overflow, fetch the dropped entries again once the queue is half empty."""
        tracker = self._tracker
        conn = self._conn
        if (tracker is None or not tracker.overflowing or self._sync_rid is not None
                or not self._live or conn is None or conn.closed
                or self._events.qsize() > self._events.maxsize // 2):
            return
        since = tracker.refetch_since
        tracker.begin_sync()
        self._held = []
        self._sync_initial = False
        self._request_sync_page(conn, since)

    # ------------------------------------------------------------------ acknowledging

    def _after_cursor_change(self) -> None:
        tracker = self._tracker
        if tracker is None or tracker.cursor == self._acked:
            return
        if tracker.cursor - self._acked >= self._ack_every:
            self._flush_ack()
        elif self._ack_timer is None and not self._closed.is_set():
            self._ack_timer = asyncio.get_running_loop().call_later(
                self._ack_interval, self._flush_ack)

    def _flush_ack(self) -> None:
        """ACK the cursor on the live connection (if any) and save it in the store. Without
        a connection the save alone is enough: the next SYNC records the position."""
        if self._ack_timer is not None:
            self._ack_timer.cancel()
            self._ack_timer = None
        tracker = self._tracker
        if tracker is None or tracker.cursor == self._acked:
            return
        cursor = tracker.cursor
        conn = self._conn
        if (conn is not None and not conn.closed and conn.state is State.AUTHENTICATED
                and cursor > 0):
            conn.send_nowait(Ack(rid=0, seq=cursor))
        self._acked = cursor
        self._save(cursor=cursor)

    def _save(self, **changes: Any) -> None:
        self._session = self._session.with_changes(**changes)
        try:
            self._store.save(self._session)
        except Exception:
            log.exception("liaotian: could not save the session state")

    def _forget_token(self) -> None:
        self._token = None
        self._save(token=None)

    # ------------------------------------------------------------------ connection loss

    def _on_conn_closed(self, conn: ClientConnection) -> None:
        """Synchronously, the moment a connection ends: stop handing it out."""
        if conn is not self._conn:
            return
        self._live = False
        if not self._closing:
            self._ready.clear()
        self._reset_sync_state()

    async def _supervise(self) -> None:
        """Watch the current connection; reconnect when it ends, or end the client."""
        try:
            while True:
                conn = self._conn
                if conn is None:
                    return
                closed = await conn.wait_closed()
                if self._closing:
                    return
                if self._logout_requested and conn.close_code == CloseCode.LOGGED_OUT:
                    return  # logout() / revoke_device() finish the job
                failure = self._fatal_reason(conn, closed)
                if failure is not None:
                    if conn.close_code == CloseCode.LOGGED_OUT:
                        self._forget_token()
                    self._fail(failure)
                    return
                log.info("liaotian: connection lost (%s); reconnecting", closed)
                self._emit(Disconnected(conn.close_code, conn.close_reason))
                attempts = await self._reconnect_loop()
                self._emit(Reconnected(self._head, attempts))
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._fail(exc)

    def _fatal_reason(self, conn: ClientConnection, closed: ConnectionClosed
                      ) -> BaseException | None:
        """None if the loss calls for a reconnect, else the error that ends the client."""
        violation: ProtocolError | None = is_protocol_failure(conn)
        if violation is not None:
            return violation
        if not self._reconnect:
            return closed
        code = conn.close_code
        if code is None:
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
            except OSError as exc:  # includes TimeoutError
                log.info("liaotian: reconnect attempt %d failed: %s", attempts, exc)
            else:
                self._backoff.reset()
                return attempts
            if self._max_attempts is not None and attempts >= self._max_attempts:
                raise ConnectionClosed(None, f"gave up after {attempts} reconnect attempts")

    def _fail(self, exc: BaseException) -> None:
        """End the client because of `exc`: waiters and the event iterator raise it."""
        if self._closed.is_set():
            return
        log.warning("liaotian: client stopped: %s", exc)
        self._failure = exc
        self._closing = True
        self._flush_ack()
        conn = self._conn
        if conn is not None:
            conn.close_nowait(CloseCode.NORMAL, "client stopped")
        self._finish(exc)

    def _finish(self, exc: BaseException | None) -> None:
        self._closing = True
        self._live = False
        self._reset_typing()
        if self._ack_timer is not None:
            self._ack_timer.cancel()
            self._ack_timer = None
        self._events.close(exc)
        self._ready.set()
        self._closed.set()

    def _raise_if_ended(self) -> None:
        if self._failure is not None:
            raise self._failure
        if self._closing:
            raise ConnectionClosed(CloseCode.NORMAL, "client closed")

    async def _ready_connection(self) -> ClientConnection:
        """The live connection, waiting through a reconnect if one is in progress."""
        while True:
            self._raise_if_ended()
            conn = self._conn
            if self._live and conn is not None and not conn.closed:
                return conn
            self._ready.clear()
            await self._ready.wait()

    def __repr__(self) -> str:
        return (f"<Client {self._user or self._username}/{self._device} "
                f"{'live' if self.connected else 'offline'} cursor={self.cursor}>")


def _names(users: str | Iterable[str]) -> tuple[str, ...]:
    """Usernames as a tuple; a single name is accepted as well as any iterable of them."""
    if isinstance(users, str):
        return (users,)
    names = tuple(users)
    if not all(isinstance(u, str) for u in names):
        raise TypeError("usernames must be strings")
    return names


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

    async def __aexit__(self, et: type[BaseException] | None, ev: BaseException | None,
                        tb: TracebackType | None) -> None:
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
    return _Connector(Client(
        host, port, username=username, password=password, device=device, token=token,
        store=store, ssl=ssl, reconnect=reconnect, request_timeout=request_timeout,
        initial_sync=initial_sync, **options))


async def register(host: str, port: int, username: str, password: str, *,
                   ssl: ssl_module.SSLContext | bool | None = None,
                   timeout: float | None = 10.0) -> str:
    """Create an account; returns the username as stored. Raises RequestError
    (USERNAME_TAKEN, INVALID_USERNAME, WEAK_PASSWORD)."""
    conn = await ClientConnection.open(host, port, ssl=ssl, timeout=timeout)
    try:
        async with asyncio.timeout(timeout):
            answer = await conn.request(Register(rid=0, username=username, password=password))
        assert isinstance(answer, Registered)
        return answer.user
    finally:
        await conn.close(CloseCode.NORMAL, "registered")

