"""The bots' log events (SPEC.md 26): update kinds 23 CALLBACK, 24 CALLBACK_ANSWER and
25 MESSAGE_EDITED, as the client hands them out. events.py includes them among its events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from liaotian.protocol import Update, UpdateKind

__all__ = ["CallbackAnswered", "CallbackQuery", "MessageEdited", "bot_event_from_update"]


@dataclass(frozen=True, slots=True)
class CallbackQuery:
    """Kind 23, to a bot: `sender` pressed the button with `data` under the bot's message
    at `pos` of `conv` (message `id`; `group` set in a group). Answer it with
    `client.bots.answer(callback, text)`."""

    seq: int
    callback: int
    sender: str
    conv: int
    pos: int
    id: int
    data: str
    group: int | None = None


@dataclass(frozen=True, slots=True)
class CallbackAnswered:
    """Kind 24, to the presser: the bot's short notice answering a press (`alert`: show
    it as a dialog to dismiss rather than a passing toast)."""

    seq: int
    callback: int
    bot: str
    conv: int
    pos: int
    text: str
    alert: bool = False


@dataclass(frozen=True, slots=True)
class MessageEdited:
    """Kind 25, to a conversation's members: the bot `sender` replaced the text and meta
    (its buttons) of its message at `pos` of `conv` at `edited` (ms; the stored message,
    in history and later syncs, carries the same text, meta and `edited`)."""

    seq: int
    conv: int
    pos: int
    id: int
    sender: str
    text: str
    meta: dict[str, Any] = field(default_factory=dict)
    group: int | None = None
    edited: int = 0

    @property
    def buttons(self) -> list[list[dict[str, str]]]:
        rows = self.meta.get("buttons")
        return rows if isinstance(rows, list) else []


BotLogEvent = CallbackQuery | CallbackAnswered | MessageEdited


def _int(d: dict[str, Any], key: str) -> int | None:
    v = d.get(key)
    return v if type(v) is int else None


def bot_event_from_update(update: Update) -> BotLogEvent | None:
    """The event of a kind 23-25 entry, or None (not one of these, or unreadable)."""
    d, seq = update.data, update.seq
    conv, pos = _int(d, "conv"), _int(d, "pos")
    if conv is None or pos is None:
        return None
    group = _int(d, "group")
    if update.kind == UpdateKind.CALLBACK:
        cb, sender, data = _int(d, "callback"), d.get("from"), d.get("data")
        if cb is None or type(sender) is not str or type(data) is not str:
            return None
        return CallbackQuery(seq, cb, sender, conv, pos, _int(d, "id") or 0, data, group)
    if update.kind == UpdateKind.CALLBACK_ANSWER:
        cb, bot, text = _int(d, "callback"), d.get("bot"), d.get("text")
        if cb is None or type(bot) is not str or type(text) is not str:
            return None
        return CallbackAnswered(seq, cb, bot, conv, pos, text, d.get("alert") is True)
    if update.kind == UpdateKind.MESSAGE_EDITED:
        sender, text, meta = d.get("from"), d.get("text"), d.get("meta")
        if type(sender) is not str or type(text) is not str:
            return None
        meta = dict(meta) if isinstance(meta, dict) else {}
        return MessageEdited(
            seq, conv, pos, _int(d, "id") or 0, sender, text, meta, group, _int(d, "edited") or 0
        )
    return None
