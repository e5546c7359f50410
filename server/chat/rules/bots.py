"""Bots (SPEC.md 26): names, commands, buttons, what a bot in a group sees, notices.

Plain functions over plain data, no I/O: the handlers (handlers/bots.py) and the send rule
(send.py, through `SendRequest.bots`) call them.

* A bot's name is a username ending in "bot", so people can tell one from a person.
* A command is a message `/name args`, or `/name@bot args` addressed to one bot; a mention
  is `@bot` in the text. A bot in a group sees only those (privacy mode) unless the
  group's admins let bots see everything (GROUP_BOTS): `hidden_members` is who of a
  group's members a message is not delivered to.
* Buttons ride in a bot message's meta: "buttons" is a list of rows, each a list of
  {"text", "data"} maps; `check_buttons` says what is wrong with them, `has_button`
  whether a press names a real one.
* `BotNotice` (chat/ops.py) appends one update-log entry to each of its users: the
  callback to the bot (its callback kept pending in the same commit, so a press survives
  a restart), the answer to the presser (the callback closed in the same commit).
* `EditMessage` replaces a bot's stored message (text, meta, and `edited`, the batch's
  time) and appends a MESSAGE_EDITED entry to each member's log in the same commit, so
  history, a sync from before the edit and the live push all agree.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from typing import Any

from liaotian.protocol import ChatMessage, UpdateKind
from liaotian.protocol.codec import packb

from ..bot_ops import BotNotice, EditMessage
from ..model import BotView, PendingCallback
from ..plan import Needs, Plan

__all__ = [
    "MAX_BUTTONS_PER_ROW",
    "MAX_BUTTON_ROWS",
    "BotView",
    "check_buttons",
    "edit",
    "has_button",
    "hidden_members",
    "mentions",
    "needs_edit",
    "needs_notice",
    "notice",
    "parse_command",
    "valid_bot_name",
    "valid_command_name",
]

MAX_BUTTON_ROWS = 8
MAX_BUTTONS_PER_ROW = 8
MAX_BUTTON_TEXT = 64
MAX_BUTTON_DATA = 64
_BOT_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,28}bot")
_COMMAND = re.compile(r"[a-z0-9_]{1,32}")
_INVOKE = re.compile(r"/([A-Za-z0-9_]{1,32})(?:@([a-z0-9][a-z0-9_.-]{2,31}))?(?=\s|$)")


def valid_bot_name(name: str) -> bool:
    """A username (3-32 characters of a-z 0-9 _ . -) that ends in "bot"."""
    return _BOT_NAME.fullmatch(name) is not None


def valid_command_name(name: str) -> bool:
    return _COMMAND.fullmatch(name) is not None


def parse_command(text: str) -> tuple[str, str | None, str] | None:
    """(command, the bot it is addressed to or None, args) if `text` is a command."""
    m = _INVOKE.match(text)
    if m is None:
        return None
    return m.group(1).lower(), m.group(2), text[m.end() :].strip()


def mentions(text: str, name: str) -> bool:
    """Whether `text` mentions `@name` (as a word: not `@namex`)."""
    at = "@" + name
    start = 0
    while True:
        i = text.find(at, start)
        if i < 0:
            return False
        end = i + len(at)
        if end == len(text) or not (text[end].isalnum() or text[end] in "_.-"):
            return True
        start = end


def _sees(name: str, text: str) -> bool:
    cmd = parse_command(text)
    if cmd is not None and (cmd[1] is None or cmd[1] == name):
        return True
    return mentions(text, name)


def hidden_members(
    view: BotView, group: int, members: Iterable[int], sender: int, text: str
) -> frozenset[int]:
    """The bot members of a group in privacy mode that a message is not for: neither a
    command (to every bot, or to them) nor a mention of them. Empty for an open group."""
    if group in view.open_groups or not view.names:
        return frozenset()
    names = view.names
    hidden = [
        uid for uid in members if uid != sender and uid in names and not _sees(names[uid], text)
    ]
    return frozenset(hidden)


def check_buttons(buttons: Any) -> str | None:
    """What is wrong with a meta "buttons" value, or None when it is well formed."""
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= MAX_BUTTON_ROWS:
        return f"buttons must be 1..{MAX_BUTTON_ROWS} rows"
    for row in buttons:
        if not isinstance(row, list) or not 1 <= len(row) <= MAX_BUTTONS_PER_ROW:
            return f"a row of buttons holds 1..{MAX_BUTTONS_PER_ROW} buttons"
        for b in row:
            if not isinstance(b, dict) or set(b) != {"text", "data"}:
                return 'a button is a map {"text", "data"}'
            text, data = b["text"], b["data"]
            if not isinstance(text, str) or not 1 <= len(text) <= MAX_BUTTON_TEXT:
                return f"a button's text is 1..{MAX_BUTTON_TEXT} characters"
            if not isinstance(data, str) or not 1 <= len(data) <= MAX_BUTTON_DATA:
                return f"a button's data is 1..{MAX_BUTTON_DATA} characters"
    return None


def has_button(meta: Any, data: str) -> bool:
    """Whether a message's meta carries a button with this data."""
    if not isinstance(meta, dict):
        return False
    rows = meta.get("buttons")
    if rows is None or check_buttons(rows) is not None:
        return False
    return any(b["data"] == data for row in rows for b in row)


# ---------------------------------------------------------------------------- notices


def needs_notice(op: BotNotice, n: Needs, plan: Plan) -> None:
    n.users.update(op.users)


def notice(plan: Plan, op: BotNotice) -> None:
    """One entry of kind `op.kind` with `op.data` in each user's log, pushed live; a press
    keeps its callback pending, an answer closes the one it answers."""
    if op.answers:
        plan.drop_callback(op.answers)
    for uid in op.users:
        op.seqs.append(plan.log(uid, op.kind, op.data))
    if op.callback:
        bot, seq = op.users[0], op.seqs[0]
        plan.add_callback(
            PendingCallback(
                op.callback, bot, op.actor, op.press_conv, op.press_pos, plan.ts, op.data, seq
            )
        )


# ---------------------------------------------------------------------------- edits


def needs_edit(op: EditMessage, n: Needs, plan: Plan) -> None:
    n.users.update(op.users)


def edited_body(message: dict[str, Any], text: str, meta: dict[str, Any], ts: int) -> bytes:
    """The stored map of `message` with its text and meta replaced, edited at `ts`."""
    m = ChatMessage.from_wire(message, 0)
    return dataclasses.replace(m, text=text, meta=dict(meta), edited=ts).encode()


def edit(plan: Plan, op: EditMessage) -> None:
    """Replace the stored message and tell every member (SPEC.md 26.3): the MESSAGE_EDITED
    entry carries what the new map carries, `edited` included."""
    m = op.message
    mid, conv, pos = int(m["id"]), int(m["conv"]), int(m["pos"])
    plan.replace_message(mid, conv, pos, edited_body(m, op.text, op.meta, plan.ts))
    data: dict[str, Any] = {
        "conv": conv,
        "pos": pos,
        "id": mid,
        "from": m.get("from", ""),
        "text": op.text,
        "meta": op.meta,
        "edited": plan.ts,
    }
    if "group" in m:
        data["group"] = conv
    body = packb(data)
    for uid in op.users:
        op.seqs.append(plan.log(uid, int(UpdateKind.MESSAGE_EDITED), body))
