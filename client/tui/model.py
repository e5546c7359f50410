"""What `liaotian chat` shows, as plain data: the chat list with its unread counts, and the
open conversation with day separators, receipts, typing and pending sends.

No I/O and no terminal: the controller feeds server answers and events in, the render
module turns the result into text. Time is passed in (`now`, `today`), never read here.

Unread bookkeeping: the chat list starts from the server's LIST_CONVERSATIONS (its
`unread` counts the others' messages after the user's read position). A message event then
counts only if its position is beyond the conversation's newest known one (older ones were
already in the server's count: an event replayed after the list was fetched is not counted
twice), it is not the user's own, not a timeline event, not already read, and its
conversation is not the one on screen (that one is marked read as it is shown).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, tzinfo

from liaotian.protocol import ChatMessage
from liaotian.protocol.social import ConversationSummary, Marker

from ..events import GroupEvent
from .names import Target

__all__ = [
    "ChatEntry",
    "ChatList",
    "Conversation",
    "DayRow",
    "EventRow",
    "MessageRow",
    "MoreRow",
    "PendingRow",
    "PendingSend",
    "Row",
    "button_rows",
    "day_label",
    "day_of",
    "peer_of",
]


def button_rows(m: ChatMessage) -> list[list[tuple[str, str]]]:
    """A bot message's buttons as rows of (text, data); [] when it has none or they are
    malformed (the server checks a bot's buttons; this only reads what is well formed)."""
    rows = m.meta.get("buttons") if isinstance(m.meta, dict) else None
    if not isinstance(rows, list):
        return []
    out = []
    for row in rows:
        if not isinstance(row, list):
            return []
        cells = []
        for b in row:
            if not isinstance(b, dict):
                return []
            text, data = b.get("text"), b.get("data")
            if not isinstance(text, str) or not isinstance(data, str):
                return []
            cells.append((text, data))
        out.append(cells)
    return out


def peer_of(m: ChatMessage, me: str) -> str:
    """The other user of a direct message (the user themself in a chat with themself)."""
    return m.to if m.sender == me else m.sender


def day_of(ts_ms: int, tz: tzinfo | None = None) -> date:
    """The calendar day of a server timestamp, in `tz` (default: the local time zone)."""
    return datetime.fromtimestamp(ts_ms / 1000, tz).date()


def day_label(day: date, today: date) -> str:
    """`Today`, `Yesterday`, else e.g. `Tuesday 3 March 2026`."""
    if day == today:
        return "Today"
    if day == today - timedelta(days=1):
        return "Yesterday"
    return f"{day:%A} {day.day} {day:%B %Y}"


# ---------------------------------------------------------------------- the chat list


@dataclass(slots=True)
class ChatEntry:
    conv: int
    kind: str  # "direct", "group" or "channel"
    name: str  # the peer's username, or the group's or channel's name
    ts: int
    unread: int = 0
    read: int = 0
    last: ChatMessage | None = None
    peer: str | None = None
    group: int | None = None
    top: int = 0  # a channel: its newest post's position as far as known

    @property
    def last_pos(self) -> int:
        if self.kind == "channel":
            return self.top
        return self.last.pos if self.last is not None else 0

    @property
    def target(self) -> Target:
        if self.kind == "channel":
            return Target(channel=self.conv)
        return Target(group=self.conv) if self.kind == "group" else Target(peer=self.peer)

    @classmethod
    def from_summary(cls, s: ConversationSummary) -> ChatEntry:
        return cls(
            conv=s.conv,
            kind=s.kind,
            name=s.name,
            ts=s.ts,
            unread=s.unread,
            read=s.read,
            last=s.last,
            peer=s.peer if s.kind == "direct" else None,
            group=s.group if s.kind == "group" else None,
            top=s.read + s.unread if s.kind == "channel" else 0,
        )


class ChatList:
    """The user's conversations, newest first, with unread counts kept current."""

    def __init__(self) -> None:
        self.entries: dict[int, ChatEntry] = {}

    def load(self, summaries: Iterable[ConversationSummary]) -> None:
        """Replace the list with the server's (a fresh LIST_CONVERSATIONS)."""
        self.entries = {s.conv: ChatEntry.from_summary(s) for s in summaries}

    def ordered(self) -> list[ChatEntry]:
        return sorted(self.entries.values(), key=lambda e: (e.ts, e.conv), reverse=True)

    def find(self, target: Target) -> ChatEntry | None:
        if target.channel is not None:
            e = self.entries.get(target.channel)
            return e if e is not None and e.kind == "channel" else None
        if target.group is not None:
            return self.entries.get(target.group)
        for e in self.entries.values():
            if e.kind == "direct" and e.peer == target.peer:
                return e
        return None

    def labels(self) -> dict[int, str]:
        """The name each entry is listed under: its name, with the group number added
        where two entries share a name (so numbers appear only where needed)."""
        seen: dict[str, int] = {}
        for e in self.entries.values():
            seen[e.name] = seen.get(e.name, 0) + 1
        return {
            e.conv: (f"{e.name} #{e.conv}" if seen[e.name] > 1 and e.kind == "group" else e.name)
            for e in self.entries.values()
        }

    def message(self, m: ChatMessage, me: str, viewing: int | None = None) -> bool:
        """Take a message (an event, or the user's own send). Returns False when the
        conversation is a group this list does not know yet (the caller refreshes the list
        from the server); a direct conversation is added on the spot."""
        entry = self.entries.get(m.conv)
        known = entry is not None
        if entry is None:
            if m.group is None:
                peer = peer_of(m, me)
                entry = ChatEntry(conv=m.conv, kind="direct", name=peer, ts=m.ts, peer=peer)
            else:
                ev = GroupEvent.from_message(m)
                name = ev.name if ev is not None and ev.name else f"#{m.conv}"
                entry = ChatEntry(conv=m.conv, kind="group", name=name, ts=m.ts, group=m.group)
            self.entries[m.conv] = entry
        if m.pos <= entry.last_pos:
            return True  # already in the server's list (a replayed event)
        counts = m.sender != me and m.event is None and m.pos > entry.read and m.conv != viewing
        entry.last = m
        entry.ts = max(entry.ts, m.ts)
        if counts:
            entry.unread += 1
        ev = GroupEvent.from_message(m)
        if ev is not None and ev.type in ("created", "renamed") and ev.name:
            entry.name = ev.name
        return known or m.group is None

    def read(self, conv: int, pos: int) -> bool:
        """The user's own read marker moved (this device or another). Returns False when
        the new unread count cannot be known here (read up to a position before the newest
        message: the caller refreshes the list)."""
        entry = self.entries.get(conv)
        if entry is None:
            return False
        if pos <= entry.read:
            return True
        entry.read = pos
        if pos >= entry.last_pos:
            entry.unread = 0
            return True
        return False

    def opened(self, conv: int) -> int:
        """The conversation is on screen: everything in it is read. Returns the position
        to mark read (0: nothing to mark)."""
        entry = self.entries.get(conv)
        if entry is None:
            return 0
        entry.unread = 0
        if entry.last_pos > entry.read:
            entry.read = entry.last_pos
            return entry.last_pos
        return 0

    def news(self, channel: int, pos: int, viewing: bool = False) -> bool:
        """A channel has posts up to `pos` (CHANNEL_NEWS): its unread count follows (the
        server's rule: newest position minus the read position). False: not listed here."""
        entry = self.entries.get(channel)
        if entry is None or entry.kind != "channel":
            return False
        entry.top = max(entry.top, pos)
        if viewing:
            entry.read = entry.top
        entry.unread = max(0, entry.top - entry.read)
        return True

    def edited(self, conv: int, pos: int, text: str, meta: dict[str, object], at: int) -> None:
        """A bot edited a message: the list's preview follows if it is the last one."""
        entry = self.entries.get(conv)
        if entry is not None and entry.last is not None and entry.last.pos == pos:
            entry.last = replace(entry.last, text=text, meta=dict(meta), edited=at or None)

    def rename(self, group: int, name: str) -> None:
        entry = self.entries.get(group)
        if entry is not None:
            entry.name = name


# ---------------------------------------------------------------------- a conversation


@dataclass(slots=True)
class PendingSend:
    """A message typed here that the server has not acknowledged yet (or refused)."""

    key: int
    text: str
    error: str | None = None


@dataclass(frozen=True, slots=True)
class DayRow:
    label: str


@dataclass(frozen=True, slots=True)
class MessageRow:
    message: ChatMessage
    mine: bool
    receipt: str | None  # own messages: "sent", "delivered", "read", "read by 2"
    note: str = ""  # a channel post: its likes and comments, or that it was deleted

    @property
    def buttons(self) -> list[list[tuple[str, str]]]:
        return button_rows(self.message)


@dataclass(frozen=True, slots=True)
class EventRow:
    message: ChatMessage
    event: GroupEvent


@dataclass(frozen=True, slots=True)
class PendingRow:
    pending: PendingSend


@dataclass(frozen=True, slots=True)
class MoreRow:
    """Older messages exist on the server (scroll up or PageUp to load them)."""


Row = DayRow | MessageRow | EventRow | PendingRow | MoreRow


@dataclass(slots=True)
class Conversation:
    """The open conversation: what has been loaded of it and who did what in it."""

    target: Target
    conv: int | None = None  # unknown for a direct chat that has no message yet
    messages: dict[int, ChatMessage] = field(default_factory=dict)  # by position
    more_before: bool = False
    pending: list[PendingSend] = field(default_factory=list)
    read_by: dict[str, int] = field(default_factory=dict)  # others' read positions
    delivered_to: dict[str, int] = field(default_factory=dict)
    typing: dict[str, float] = field(default_factory=dict)  # user -> when it expires
    loaded: bool = False  # the first history page is in
    notes: dict[int, str] = field(default_factory=dict)  # a channel post's likes, comments
    can_post: bool = True  # a channel where only admins post says False to a member
    marked: int = 0  # a channel: the position this view has told the server is read
    _early: list[ChatMessage] = field(default_factory=list)  # events before that
    _next_key: int = 0

    def __post_init__(self) -> None:
        if self.conv is None:
            self.conv = self.target.group if self.target.group is not None else self.target.channel

    def belongs(self, m: ChatMessage, me: str) -> bool:
        """Whether a message is part of this conversation."""
        if self.conv is not None:
            return m.conv == self.conv
        return m.group is None and peer_of(m, me) == self.target.peer

    def add(self, messages: Iterable[ChatMessage]) -> int:
        """Add messages (a history page, an event, an acknowledged send); returns how many
        were new."""
        n = 0
        for m in messages:
            if self.conv is None:
                self.conv = m.conv
            if m.pos not in self.messages:
                n += 1
            self.messages[m.pos] = m
        return n

    def add_live(self, m: ChatMessage) -> bool:
        """A message event; returns whether it was added as new. Until the first history
        page is in it waits; one older than the oldest loaded (a replay of the update
        log) is left to history paging. So the view never has a gap."""
        if not self.loaded:
            self._early.append(m)
            return False
        if self.messages and m.pos < min(self.messages):
            return False
        return self.add([m]) > 0

    def add_page(self, messages: Iterable[ChatMessage], more_before: bool) -> int:
        """An older history page (or the first): `more_before` says older ones exist."""
        self.more_before = more_before
        n = self.add(messages)
        if not self.loaded:
            self.loaded = True
            early, self._early = self._early, []
            n += sum(self.add_live(m) for m in early)
        return n

    @property
    def oldest(self) -> int | None:
        return min(self.messages) if self.messages else None

    @property
    def newest(self) -> int:
        return max(self.messages) if self.messages else 0

    def edit(self, pos: int, text: str, meta: dict[str, object], at: int) -> bool:
        """A bot's edit of a message shown here (MESSAGE_EDITED): replace it."""
        m = self.messages.get(pos)
        if m is None:
            return False
        self.messages[pos] = replace(m, text=text, meta=dict(meta), edited=at or None)
        return True

    def buttons(self) -> tuple[int, list[list[tuple[str, str]]]] | None:
        """(position, rows of (text, data)) of the newest message that has buttons."""
        for pos in sorted(self.messages, reverse=True):
            rows = button_rows(self.messages[pos])
            if rows:
                return pos, rows
        return None

    # -- sends

    def pend(self, text: str) -> PendingSend:
        self._next_key += 1
        p = PendingSend(self._next_key, text)
        self.pending.append(p)
        return p

    def settle(
        self, pending: PendingSend, message: ChatMessage | None, error: str | None = None
    ) -> None:
        """A send finished: stored as `message`, or refused with `error` (kept on screen)."""
        if message is not None:
            self.pending = [p for p in self.pending if p.key != pending.key]
            self.add([message])
        else:
            pending.error = error or "not sent"

    # -- receipts, typing

    def receipts(self, read: Iterable[Marker], delivered: Iterable[Marker]) -> None:
        for mk in read:
            self.read_by[mk.user] = max(self.read_by.get(mk.user, 0), mk.pos)
        for mk in delivered:
            self.delivered_to[mk.user] = max(self.delivered_to.get(mk.user, 0), mk.pos)

    def peer_read(self, user: str, pos: int) -> None:
        self.read_by[user] = max(self.read_by.get(user, 0), pos)
        self.delivered_to[user] = max(self.delivered_to.get(user, 0), pos)

    def receipt(self, pos: int) -> str:
        """What happened to the user's own message at `pos`: read (direct), read by N
        (group), delivered, or sent."""
        if self.target.channel is not None:
            return ""  # a channel has no receipts
        readers = sum(1 for p in self.read_by.values() if p >= pos)
        if readers:
            return "read" if self.target.group is None else f"read by {readers}"
        if any(p >= pos for p in self.delivered_to.values()):
            return "delivered"
        return "sent"

    def typing_event(self, user: str, typing: bool, ttl: float, now: float) -> None:
        if typing:
            self.typing[user] = now + ttl
        else:
            self.typing.pop(user, None)

    def typing_now(self, now: float) -> list[str]:
        """Who is typing at `now` (expired notices are forgotten)."""
        for user in [u for u, until in self.typing.items() if until <= now]:
            del self.typing[user]
        return sorted(self.typing)

    # -- what to show

    def rows(self, me: str, today: date, tz: tzinfo | None = None) -> list[Row]:
        """Everything to show, oldest first, with a day separator before each new day."""
        out: list[Row] = [MoreRow()] if self.more_before else []
        day: date | None = None
        for pos in sorted(self.messages):
            m = self.messages[pos]
            d = day_of(m.ts, tz)
            if d != day:
                out.append(DayRow(day_label(d, today)))
                day = d
            ev = GroupEvent.from_message(m)
            if ev is not None:
                out.append(EventRow(m, ev))
            else:
                mine = m.sender == me
                receipt = self.receipt(m.pos) if mine else None
                out.append(MessageRow(m, mine, receipt or None, self.notes.get(m.pos, "")))
        out.extend(PendingRow(p) for p in self.pending)
        return out
