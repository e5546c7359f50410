"""Bots' messages: bot accounts, commands, buttons and callbacks (SPEC.md section 26).

Declared like the wallet's (codec.py). A bot is an account its owner creates; it has no
password and authenticates with AUTH and its bot token (a session token of its device
"bot"), which the owner can rotate. Buttons ride in a bot message's `meta` ("buttons": rows
of {text, data}); a press reaches the bot as an update-log entry of kind 23 CALLBACK, its
answer reaches the presser as kind 24 CALLBACK_ANSWER, an edit of a bot message reaches the
conversation's members as kind 25 MESSAGE_EDITED.
"""

from __future__ import annotations

from typing import Any

from .base import Message, MessageType
from .codec import Record, message, record, wire

__all__ = [
    "BOT_CLASSES",
    "BOT_CLIENT_TYPES",
    "BOT_SERVER_TYPES",
    "MAX_COMMANDS",
    "AnswerCallback",
    "BotCreate",
    "BotDelete",
    "BotEdit",
    "BotEntry",
    "BotInfo",
    "BotList",
    "BotToken",
    "CallbackEntry",
    "CallbackList",
    "CommandEntry",
    "CommandList",
    "GetCommands",
    "GroupBots",
    "ListBots",
    "PendingCallbacks",
    "Press",
    "Pressed",
    "SetCommands",
]

M = MessageType
USER_MAX = 256  # the decoder cap of a username field
MAX_COMMANDS = 100  # commands one bot declares at most
MAX_DATA = 64  # characters of a button's data
MAX_NOTICE = 200  # characters of a callback answer's notice


@record()
class CommandEntry(Record):
    """One command a bot declares: `/name args` in a chat invokes it."""

    name: str = wire(min=1, max=32)
    description: str = wire(default="", max=256)


@record()
class BotEntry(Record):
    name: str = wire(max=USER_MAX)
    created: int  # ms
    commands: tuple[CommandEntry, ...] = wire(max_items=MAX_COMMANDS)


@message(M.BOT_CREATE)
class BotCreate(Message):
    """Create a bot owned by the asking user: answered by BOT_INFO with its token."""

    name: str = wire(max=USER_MAX)


@message(M.BOT_INFO)
class BotInfo(Message):
    name: str = wire(max=USER_MAX)
    owner: str = wire(max=USER_MAX)
    created: int
    token: str | None = wire(default=None, max=None)  # on BOT_CREATE and BOT_TOKEN only


@message(M.LIST_BOTS)
class ListBots(Message):
    pass


@message(M.BOT_LIST)
class BotList(Message):
    bots: tuple[BotEntry, ...] = wire(max_items=None)


@message(M.BOT_TOKEN)
class BotToken(Message):
    """Rotate the bot's token: the old one is dead, its connections closed (4002)."""

    name: str = wire(max=USER_MAX)


@message(M.BOT_DELETE)
class BotDelete(Message):
    name: str = wire(max=USER_MAX)


@message(M.SET_COMMANDS)
class SetCommands(Message):
    """Declare a bot's commands (all of them; replaces the list). The bot sends it with
    `bot` empty; its owner names the bot."""

    commands: tuple[CommandEntry, ...] = wire(max_items=MAX_COMMANDS)
    bot: str = wire(default="", max=USER_MAX)


@message(M.GET_COMMANDS)
class GetCommands(Message):
    bot: str = wire(max=USER_MAX)


@message(M.COMMAND_LIST)
class CommandList(Message):
    bot: str = wire(max=USER_MAX)
    commands: tuple[CommandEntry, ...] = wire(max_items=MAX_COMMANDS)


@message(M.PRESS)
class Press(Message):
    """Press the button with `data` of the bot message at `pos` of conversation `conv`."""

    conv: int
    pos: int = wire(lo=1)
    data: str = wire(max=MAX_DATA)


@message(M.PRESSED)
class Pressed(Message):
    callback: int  # the id the bot answers


@message(M.ANSWER_CALLBACK)
class AnswerCallback(Message):
    """The bot's answer to a press: `text` is a short notice shown to the presser."""

    callback: int
    text: str = wire(default="", max=MAX_NOTICE)
    alert: bool = False  # show it as an alert the presser dismisses, not a toast


@message(M.BOT_EDIT)
class BotEdit(Message):
    """The bot replaces the text and meta (buttons) of its message at `pos` of `conv`."""

    conv: int
    pos: int = wire(lo=1)
    text: str = wire(max=None)
    meta: dict[str, Any] = wire(default_factory=dict, omit="empty")


@message(M.GROUP_BOTS)
class GroupBots(Message):
    """A group admin's privacy setting for bots: with `see_all` false (the default) a bot
    member sees only commands and messages that mention it."""

    group: int
    see_all: bool


@message(M.PENDING_CALLBACKS)
class PendingCallbacks(Message):
    """The bot's presses still waiting for its answer (after a restart of either side)."""

    limit: int = wire(default=100, lo=1, hi=1000)


@record()
class CallbackEntry(Record):
    """A press waiting for an answer: the same map as its CALLBACK entry's `data`."""

    callback: int
    sender: str = wire("from", max=USER_MAX)
    conv: int
    pos: int
    id: int
    data: str = wire(max=MAX_DATA)
    group: int | None = None


@message(M.CALLBACK_LIST)
class CallbackList(Message):
    """The bot's presses waiting for its answer, oldest first (SPEC.md 26.3)."""

    callbacks: tuple[CallbackEntry, ...] = wire(max_items=1000)
    more: bool = False


BOT_CLASSES: tuple[type[Message], ...] = (
    BotCreate,
    BotInfo,
    ListBots,
    BotList,
    BotToken,
    BotDelete,
    SetCommands,
    GetCommands,
    CommandList,
    Press,
    Pressed,
    AnswerCallback,
    BotEdit,
    GroupBots,
    PendingCallbacks,
    CallbackList,
)
BOT_CLIENT_TYPES = frozenset(int(c.TYPE) for c in BOT_CLASSES if c.FROM_CLIENT)
BOT_SERVER_TYPES = frozenset(int(c.TYPE) for c in BOT_CLASSES if not c.FROM_CLIENT)
