"""The model as text for the screen: Textual `Content` built from plain strings.

Every string a peer or the server chose (message text, usernames, display names, group
names, error messages) goes through `terminal.safe()`, so control characters show as
escapes (`\\x1b`) and cannot reach the terminal; and `Content` is built from plain text and
styles, never parsed as markup, so `[bold]` in a message shows as typed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Any

from liaotian.protocol import ChatMessage
from textual.content import Content

from ..events import GroupEvent
from ..terminal import safe
from .model import ChatEntry, DayRow, EventRow, MessageRow, MoreRow, PendingRow, Row
from .names import Names

__all__ = [
    "chat_prompt",
    "conversation",
    "describe_event",
    "media_text",
    "preview",
    "status_line",
    "title",
    "typing_line",
]

CONTINUATION = "      | "  # before the further lines of a multi-line message
BUTTON_INDENT = "      "  # before a row of a bot message's buttons
PREVIEW_LEN = 28  # fits the chat list's column


def clock(ts_ms: int, tz: tzinfo | None = None) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz).strftime("%H:%M")


def _people(users: Sequence[str], names: Names) -> str:
    return ", ".join(safe(names.person(u)) for u in users) if users else "nobody"


def describe_event(ev: GroupEvent, names: Names) -> str:
    """A group timeline event as a sentence, with display names (made safe)."""
    a = safe(names.person(ev.actor))
    if ev.type == "created":
        others = [u for u in ev.users if u != ev.actor]
        return f'{a} created the group "{safe(ev.name or "")}"' + (
            f" with {_people(others, names)}" if others else ""
        )
    if ev.type == "added":
        return f"{a} added {_people(ev.users, names)}"
    if ev.type == "removed":
        return f"{a} removed {_people(ev.users, names)}"
    if ev.type == "left":
        return f"{_people(ev.users or (ev.actor,), names)} left"
    if ev.type == "renamed":
        return f'{a} renamed the group to "{safe(ev.name or "")}"'
    if ev.type == "topic":
        return f'{a} set the topic to "{safe(ev.topic or "")}"'
    if ev.type == "role":
        who = safe(names.person(ev.user or ""))
        return f"{a} made {who} {'an admin' if ev.role == 'admin' else 'a member'}"
    if ev.type == "owner":
        return f"{a} made {safe(names.person(ev.user or ''))} the owner"
    return f"{a}: {safe(ev.type)}"


def _mmss(ms: object) -> str:
    s = int(ms) // 1000 if isinstance(ms, int) and ms >= 0 else 0
    return f"{s // 60}:{s % 60:02d}"


def _size(n: object) -> str:
    if not isinstance(n, int) or n < 0:
        return ""
    if n < 1024:
        return f"{n} B"
    x = n / 1024
    for unit in ("KiB", "MiB"):
        if x < 1024:
            return f"{x:.1f} {unit}"
        x /= 1024
    return f"{x:.1f} GiB"


def media_text(media: dict[str, Any] | None) -> str:
    """A media message's media as one readable line, every peer-chosen part made safe:
    `[image beach.jpg · 1200x800 · 120.3 KiB]`, `[voice 0:12 · 15.0 KiB]`,
    `[file notes.pdf · 1.2 MiB]`, `[track Moon River – Audrey · 0:30-1:00 of 2:41 ·
    3.1 MiB]`. The numbers are the server's (read from the blob, never the sender's)."""
    if not isinstance(media, dict):
        return ""
    kind = safe(str(media.get("kind", "media")))
    name = media.get("name")
    parts: list[str] = []
    if kind == "track":
        title = safe(str(media.get("title") or "untitled"))
        artist = media.get("artist")
        parts.append(f"{title} – {safe(str(artist))}" if artist else title)
        clip = media.get("clip")
        length = _mmss(media.get("duration_ms"))
        if isinstance(clip, list | tuple) and len(clip) == 2:
            parts.append(f"{_mmss(clip[0])}-{_mmss(clip[1])} of {length}")
        else:
            parts.append(length)
    else:
        if isinstance(name, str) and name:
            parts.append(safe(name))
        if kind == "image" and isinstance(media.get("w"), int) and isinstance(media.get("h"), int):
            parts.append(f"{media['w']}x{media['h']}")
        if kind == "voice":
            parts.append(_mmss(media.get("duration_ms")))
    size = _size(media.get("size"))
    if size:
        parts.append(size)
    return f"[{kind} " + " · ".join(parts) + "]" if parts else f"[{kind}]"


def preview(m: ChatMessage, names: Names, me: str) -> str:
    """One line for the chat list: `Bob: text` or `* Bob added Carol`, shortened."""
    ev = GroupEvent.from_message(m)
    if ev is not None:
        text = "* " + describe_event(ev, names)
    else:
        who = "you" if m.sender == me else safe(names.person(m.sender))
        body = safe(m.text)
        if m.media is not None:
            body = f"{media_text(m.media)} {body}".rstrip()
        text = f"{who}: {body}"
    return text if len(text) <= PREVIEW_LEN else text[: PREVIEW_LEN - 1] + "…"


def chat_prompt(
    entry: ChatEntry, label: str, names: Names, me: str, online: bool | None = None
) -> Content:
    """A chat list entry: name (a dot when the peer is online), unread count, and the last
    message on the second line."""
    shown = safe(names.person(label) if entry.kind == "direct" else label)
    dot = {"direct": "● " if online else "○ ", "channel": "≡ "}.get(entry.kind, "# ")
    unread = "999+" if entry.unread >= 1000 else str(entry.unread)
    head = Content.assemble(
        (dot, "green" if online else "dim"),
        (shown, "bold" if entry.unread else ""),
        (f"  ({unread})", "bold reverse") if entry.unread else "",
    )
    if entry.last is not None:
        last = preview(entry.last, names, me)
    elif entry.kind == "channel":
        last = f"channel, {entry.top} posts" if entry.top else "channel, no posts yet"
    else:
        last = "(no messages)"
    return Content.assemble(head, "\n  ", (last, "dim"))


def _message(row: MessageRow, names: Names, tz: tzinfo | None) -> Content:
    m = row.message
    who = safe(names.person(m.sender))
    parts: list[str | tuple[str, str]] = [
        (clock(m.ts, tz) + " ", "dim"),
        (who, "bold cyan" if row.mine else "bold"),
        ": ",
    ]
    if m.media is not None:  # then its caption, if any
        parts.append((media_text(m.media), "magenta"))
        if m.text:
            parts.append(" ")
    parts.append(safe(m.text, CONTINUATION))
    if m.edited:
        parts.append(("  (edited)", "dim"))
    if row.note:
        parts.append((f"  ({row.note})", "dim"))
    if row.receipt:
        parts.append((f"  ({row.receipt})", "dim"))
    line = Content.assemble(*parts)
    for buttons in row.buttons:  # a bot's buttons, a line per row, under its message
        cells = "  ".join(f"[{safe(text)}]" for text, _data in buttons)
        line = Content.assemble(line, "\n", (BUTTON_INDENT + cells, "bold"))
    return line


def conversation(
    rows: Sequence[Row], names: Names, me: str, tz: tzinfo | None = None, *, loading: bool = False
) -> Content:
    """The open conversation, one line per row (more for multi-line messages)."""
    lines: list[Content] = []
    for row in rows:
        if isinstance(row, DayRow):
            lines.append(Content.styled(f"──── {row.label} ────", "dim bold"))
        elif isinstance(row, MoreRow):
            lines.append(Content.styled("↑ older messages: PageUp", "dim"))
        elif isinstance(row, EventRow):
            lines.append(
                Content.styled(
                    f"{clock(row.message.ts, tz)} * {describe_event(row.event, names)}",
                    "italic dim",
                )
            )
        elif isinstance(row, MessageRow):
            lines.append(_message(row, names, tz))
        elif isinstance(row, PendingRow):
            p = row.pending
            state = f"not sent: {safe(p.error)}" if p.error else "sending…"
            lines.append(
                Content.assemble(
                    "      ",
                    (safe(names.person(me)), "bold cyan"),
                    ": ",
                    safe(p.text, CONTINUATION),
                    (f"  ({state})", "red" if p.error else "dim"),
                )
            )
    if loading:
        lines.append(Content.styled("loading…", "dim"))
    elif not lines:
        lines.append(Content.styled("(no messages yet: type below and press Enter)", "dim"))
    return Content("\n").join(lines)


def title(
    entry_name: str,
    is_group: bool,
    names: Names,
    *,
    online: bool | None = None,
    last_seen: str | None = None,
    members: int | None = None,
    channel: bool = False,
) -> Content:
    """The conversation's header: `Bob (bob) · online`, `trip · group, 3 members`,
    `news · channel, 3 members`."""
    if channel:
        extra = f" · channel, {members} members" if members else " · channel"
        return Content.assemble((safe(entry_name), "bold"), extra)
    if is_group:
        extra = f" · group, {members} members" if members else " · group"
        return Content.assemble((safe(entry_name), "bold"), extra)
    state = ""
    if online is True:
        state = " · online"
    elif online is False:
        state = f" · last seen {last_seen}" if last_seen else " · offline"
    return Content.assemble((safe(names.full(entry_name)), "bold"), state)


def typing_line(users: Sequence[str], names: Names) -> Content:
    if not users:
        return Content("")
    verb = "is" if len(users) == 1 else "are"
    return Content.styled(f"{_people(users, names)} {verb} typing…", "italic")


def status_line(me: str, names: Names, state: str, detail: str = "") -> Content:
    """`liaotian · Alice (alice) · connected`, or `reconnecting (why)`."""
    style = {"connected": "green", "reconnecting": "yellow"}.get(state, "red")
    return Content.assemble(
        "liaotian · ",
        (safe(names.full(me)), "bold"),
        " · ",
        (state, style),
        f" ({safe(detail)})" if detail else "",
    )
