"""The receiving half of a session: the update log, exactly once and in order, as events.

The connection's reader hands every frame to `Inbox.on_message`, in arrival order, and never
waits for the application. What the inbox does with them:

* **Catching up.** After each (re)connect, `catch_up()` SYNCs from the cursor, page after
  page (each page is processed by the reader in line, so a push can never overtake it).
  Pushes that arrive meanwhile are held and delivered after the last page. Then the
  `CaughtUp` event goes into the queue.
* **Exactly once.** Every entry goes through the `CursorTracker`: one at or below the cursor,
  or already seen, is dropped. An entry of a send still waiting in the `Outbox` (same
  account, same cmid) answers that send instead of becoming an event (its SENT was lost
  with a connection). Entries of kinds this client does not know are counted and skipped.
* **No blocking.** The event queue is bounded but refuses instead of blocking; refused
  entries are fetched again from the server's log once the application has taken half of
  what is queued. Typing and presence pushes are not in the log: when the queue is full
  they are dropped.
* **Acknowledging.** The cursor covers only entries the application took from the queue
  (or this device's own sends). It is ACKed to the server and saved in the session store
  every `ack_every` entries or `ack_interval` seconds, and on close.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from liaotian.protocol import (
    Ack,
    CloseCode,
    Error,
    ErrorCode,
    Limits,
    Message,
    Presence,
    Sent,
    State,
    Sync,
    TypingNotice,
    Update,
    Updates,
)
from liaotian.protocol.channels import ChannelNews

from .connection import ClientConnection, request_error
from .cursor import CursorTracker, Verdict, classify_update
from .events import (
    LOG_EVENT_TYPES,
    CaughtUp,
    ChannelNewsEvent,
    ClientEvent,
    Disconnected,
    EphemeralEvent,
    EventQueue,
    PresenceChanged,
    Reconnected,
    Resync,
    TypingEvent,
    event_from_update,
)
from .outbox import Outbox

__all__ = ["Inbox", "InboxHost", "sent_from_update"]

log = logging.getLogger("liaotian.client")

# ERROR codes (rid 0) the server answers a refused TYPING with: not worth a warning.
_TYPING_REFUSALS = frozenset({ErrorCode.RATE_LIMITED, ErrorCode.NOT_MEMBER, ErrorCode.UNKNOWN_USER})


def sent_from_update(update: Update) -> Sent:
    """The SENT a send would have received, rebuilt from its entry in the sender's log."""
    m = update.message
    assert m is not None
    return Sent(
        rid=0, id=m.id, conv=m.conv, pos=m.pos, ts=m.ts, seq=update.seq, cmid=m.cmid, duplicate=True
    )


class InboxHost(Protocol):
    """What the inbox needs from the session that owns it."""

    @property
    def conn(self) -> ClientConnection | None:
        """The current connection (authenticating, catching up or live), if any."""
        ...

    @property
    def live(self) -> bool:
        """Authenticated and caught up: the connection is open for requests."""
        ...

    @property
    def user(self) -> str | None: ...

    @property
    def limits(self) -> Limits: ...

    @property
    def ended(self) -> bool:
        """The session is over (closed or failed)."""
        ...

    def save(self, **changes: Any) -> None:
        """Update the stored session state (the cursor here)."""
        ...


class Inbox:
    """Update-log bookkeeping and the event queue of one session."""

    def __init__(
        self,
        host: InboxHost,
        outbox: Outbox,
        *,
        queue_size: int = 1024,
        ack_every: int = 200,
        ack_interval: float = 1.0,
        state_events: bool = True,
        ephemeral_events: bool = True,
        request_timeout: float | None = 10.0,
    ) -> None:
        self._host = host
        self._outbox = outbox
        self.events: EventQueue[ClientEvent] = EventQueue(queue_size)
        self.tracker: CursorTracker | None = None  # set by start_at() on the first login
        self.head = 0  # the newest seq of the log heard of
        self.acked = 0  # the cursor last ACKed and saved
        self._ack_every = max(1, ack_every)
        self._ack_interval = ack_interval
        self._ack_timer: asyncio.TimerHandle | None = None
        self._state_events = state_events
        self._ephemeral_events = ephemeral_events
        self._request_timeout = request_timeout
        # The SYNC in progress on the current connection, if any.
        self.sync_rid: int | None = None
        self.sync_initial = False  # the SYNC of a (re)connect (else a refetch)
        self.sync_done: asyncio.Future[None] | None = None
        self._sync_deadline: asyncio.Timeout | None = None
        self.held: list[Updates] = []  # pushes that arrived while a SYNC was running
        self.catching_up = False  # a CaughtUp is owed for the current connection

    @property
    def cursor(self) -> int | None:
        return self.tracker.cursor if self.tracker is not None else None

    def start_at(self, position: int) -> None:
        """The first login: the cursor starts at `position`."""
        self.tracker = CursorTracker(position)
        self.acked = position

    # ------------------------------------------------------------------ catching up

    async def catch_up(self, conn: ClientConnection) -> None:
        """Page through the log from the cursor; the reader processes each page in line
        (so pushes can never overtake it) and this waits for the last one, with the
        request timeout applied per page."""
        tracker = self.tracker
        assert tracker is not None
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sync_done = done
        self.sync_initial = True
        self.catching_up = True
        self.held = []
        tracker.begin_sync()
        self.request_page(conn, tracker.cursor)
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

    def request_page(self, conn: ClientConnection, since: int) -> None:
        limit = None
        tracker = self.tracker
        # A refetch asks for about what the queue can take. Once it overflows again the
        # rest of the pages are dropped anyway, but the connection only goes live again
        # after the last page, so those are fetched at the server's default size.
        if not self.sync_initial and tracker is not None and not tracker.overflowing:
            max_page = self._host.limits.max_sync_page
            limit = max(1, min(max_page, self.events.free + tracker.pending))
        rid = conn.next_rid()
        if conn.send_nowait(Sync(rid=rid, since=since, limit=limit)):
            self.sync_rid = rid
        else:
            self.sync_rid = None

    def reset_sync(self) -> None:
        """The connection is gone: forget its SYNC (the next one starts over)."""
        self.sync_rid = None
        self.held = []
        done = self.sync_done
        if done is not None and not done.done():
            done.cancel()
        self.sync_done = None

    # ------------------------------------------------------------------ reading

    def on_message(self, conn: ClientConnection, msg: Message) -> bool:
        """Called by the reader for every frame of the current connection, in order.
        True = consumed here; False = route it to the request it answers."""
        if self.tracker is None:
            return False
        if isinstance(msg, Updates):
            self.head = max(self.head, msg.head)
            if msg.rid == 0:
                if self.sync_rid is not None:
                    self.held.append(msg)  # deliver after the SYNC's pages, in order
                else:
                    self._deliver(msg.updates)
                return True
            if msg.rid == self.sync_rid:
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
        if isinstance(msg, ChannelNews):
            self._emit_ephemeral(ChannelNewsEvent(msg.channel, msg.pos))
            return True
        if isinstance(msg, Error):
            if msg.rid and msg.rid == self.sync_rid:
                self._on_sync_error(conn, msg)
                return True
            if not msg.rid:
                # One-way frames (TYPING, ACK) are refused this way; a refused typing
                # notice (rate limit, not a member, unknown user) is not worth a warning.
                level = logging.DEBUG if msg.code in _TYPING_REFUSALS else logging.WARNING
                log.log(
                    level, "liaotian: server error without a request: %s %s", msg.code, msg.message
                )
                return True
        return False

    def _on_sync_page(self, conn: ClientConnection, page: Updates) -> None:
        tracker = self.tracker
        assert tracker is not None
        self.sync_rid = None
        if page.resync:
            tracker.reset(page.head)
            self.emit(Resync(page.head))
        else:
            self._deliver(page.updates)
        if self._sync_deadline is not None and self._request_timeout is not None:
            self._sync_deadline.reschedule(
                asyncio.get_running_loop().time() + self._request_timeout
            )
        if page.more and page.updates:
            self.request_page(conn, page.updates[-1].seq)
            return
        # The log is caught up; pushes held meanwhile follow in order.
        held, self.held = self.held, []
        for push in held:
            self._deliver(push.updates)
        done = self.sync_done
        if done is not None and not done.done():
            done.set_result(None)
        self.sync_done = None
        self.sync_initial = False
        if self.catching_up and not tracker.overflowing:
            # Everything up to the head is queued (a refetch of dropped entries would
            # still be owed while overflowing: then this comes after it).
            self.catching_up = False
            self.emit(CaughtUp(self.head))
        self._after_cursor_change()

    def _on_sync_error(self, conn: ClientConnection, err: Error) -> None:
        tracker = self.tracker
        assert tracker is not None
        self.sync_rid = None
        if err.code == ErrorCode.INVALID_CURSOR and tracker.cursor > 0:
            # Our cursor is ahead of the server's log: the stored state belongs to another
            # incarnation of the server (its data was reset). As SPEC.md section 15 advises,
            # start over from 0: the whole new log follows. Resync(0) tells the application
            # that what it shows may not match the server any more.
            log.warning(
                "liaotian: cursor %d is ahead of the server's log (head %d); syncing again from 0",
                tracker.cursor,
                self.head,
            )
            tracker.reset(0)
            self.acked = 0
            self._host.save(cursor=0)
            self.emit(Resync(0))
            self.request_page(conn, 0)
            return
        exc = request_error(err)
        done = self.sync_done
        if done is not None and not done.done():
            done.set_exception(exc)
            return
        # A refetch failed on a live connection: start over on a fresh one.
        log.warning("liaotian: refetch refused (%s); reconnecting", exc)
        conn.close_nowait(CloseCode.GOING_AWAY, "refetch failed")

    def _on_sent(self, msg: Sent) -> None:
        tracker = self.tracker
        if tracker is not None:
            tracker.skip(msg.seq)  # the server never pushes our own send back to us
        self._outbox.resolve(msg.cmid, msg)
        self._after_cursor_change()

    def _deliver(self, updates: tuple[Update, ...]) -> None:
        """Apply the exactly-once rules to updates arriving in log order."""
        tracker = self.tracker
        assert tracker is not None
        events = self.events
        me = self._host.user
        top = 0
        for u in updates:
            if u.seq > top:
                top = u.seq
            verdict = classify_update(u, tracker, me, self._outbox)
            if verdict is Verdict.DUPLICATE:
                continue
            if verdict is Verdict.UNKNOWN_KIND:
                tracker.skip(u.seq)
                continue
            if verdict is Verdict.OWN_SEND:
                msg = u.message
                assert msg is not None
                self._outbox.resolve(msg.cmid, sent_from_update(u))
                tracker.skip(u.seq)
                continue
            event = event_from_update(u)
            if event is None:  # a READ or CONTACT entry this client cannot read
                log.warning(
                    "liaotian: skipped unreadable update %d (kind %d): %r", u.seq, u.kind, u.data
                )
                tracker.skip(u.seq)
                continue
            if tracker.overflowing or not events.put_nowait(event):
                tracker.drop(u.seq)  # fetched again once the application catches up
                continue
            tracker.accept(u.seq)
        if top:
            tracker.received_through(top)
        self._after_cursor_change()

    def maybe_refetch(self) -> None:
        """After an overflow, fetch the dropped entries again once the queue is half empty."""
        tracker = self.tracker
        conn = self._host.conn
        if (
            tracker is None
            or not tracker.overflowing
            or self.sync_rid is not None
            or not self._host.live
            or conn is None
            or conn.closed
            or self.events.qsize() > self.events.maxsize // 2
        ):
            return
        since = tracker.refetch_since
        tracker.begin_sync()
        self.held = []
        self.sync_initial = False
        self.request_page(conn, since)

    # ------------------------------------------------------------------ the application

    async def next_event(self) -> ClientEvent:
        """The next event for the application; the cursor now covers a log event."""
        event = await self.events.get()
        tracker = self.tracker
        if tracker is not None:
            if isinstance(event, LOG_EVENT_TYPES):
                tracker.handed(event.seq)
                self._after_cursor_change()
            self.maybe_refetch()
        return event

    def emit(self, event: Resync | CaughtUp | Disconnected | Reconnected) -> None:
        """A state event: always queued (beyond the bound), unless switched off."""
        if not isinstance(event, Resync) and not self._state_events:
            return
        self.events.put_nowait(event, force=True)

    def _emit_ephemeral(self, event: EphemeralEvent) -> None:
        """A push that is not in the log: queued if there is room, else dropped (it cannot
        be fetched again, and waiting for room would block the reader)."""
        if self._ephemeral_events and not self.events.put_nowait(event):
            log.debug("liaotian: event queue full, dropped %r", event)

    def close(self, exc: BaseException | None) -> None:
        """The session ended: stop the ACK timer and end the event stream."""
        if self._ack_timer is not None:
            self._ack_timer.cancel()
            self._ack_timer = None
        self.events.close(exc)

    # ------------------------------------------------------------------ acknowledging

    def _after_cursor_change(self) -> None:
        tracker = self.tracker
        if tracker is None or tracker.cursor == self.acked:
            return
        if tracker.cursor - self.acked >= self._ack_every:
            self.flush_ack()
        elif self._ack_timer is None and not self._host.ended:
            self._ack_timer = asyncio.get_running_loop().call_later(
                self._ack_interval, self.flush_ack
            )

    def flush_ack(self) -> None:
        """ACK the cursor on the current connection (if any) and save it in the store.
        Without a connection the save alone is enough: the next SYNC records the
        position."""
        if self._ack_timer is not None:
            self._ack_timer.cancel()
            self._ack_timer = None
        tracker = self.tracker
        if tracker is None or tracker.cursor == self.acked:
            return
        cursor = tracker.cursor
        conn = self._host.conn
        if (
            conn is not None
            and not conn.closed
            and conn.state is State.AUTHENTICATED
            and cursor > 0
        ):
            conn.send_nowait(Ack(rid=0, seq=cursor))
        self.acked = cursor
        self._host.save(cursor=cursor)
