"""The bots' write operations (rules/bots.py), beside ops.py's: a press, an answer or
another notice to update logs, a bot's edit of its message, a deleted bot leaving its
groups. ops.py re-exports them, so `ops.BotNotice` and the rest keep their names."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .ops import Op

__all__ = ["BotNotice", "EditMessage", "RemoveBot"]


@dataclass(slots=True, eq=False, kw_only=True)
class BotNotice(Op):
    """One update-log entry of `kind` with `data` for each of `users` (a press to the bot,
    its answer to the presser, an edit to a conversation's members)."""

    users: tuple[int, ...]
    kind: int
    data: bytes
    callback: int = 0  # a press: answered PRESSED with this id (handlers/bots.py)
    # a press keeps its callback pending (for users[0], the bot) on this message; an answer
    # names the callback it closes
    press_conv: int = 0
    press_pos: int = 0
    answers: int = 0
    # outcome
    seqs: list[int] = field(default_factory=list)


@dataclass(slots=True, eq=False, kw_only=True)
class RemoveBot(Op):
    """A deleted bot leaves each of `groups` (a "left" event with "deleted" that every
    member sees); a group it owned passes to its longest-standing admin, else member.
    The actor is the bot's owner (for the write budget); the events are the bot's."""

    bot: int
    groups: tuple[int, ...]


@dataclass(slots=True, eq=False, kw_only=True)
class EditMessage(Op):
    """A bot's edit of its own message: `message` is the stored map as the handler read it;
    the rule replaces its text and meta, stamps `edited` and tells each of `users`."""

    message: dict[str, Any]
    text: str
    meta: dict[str, Any]
    users: tuple[int, ...]
    # outcome
    seqs: list[int] = field(default_factory=list)
