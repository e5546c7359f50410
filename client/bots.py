"""`client.bots`: bot accounts, their commands and buttons (SPEC.md 26).

    made = await client.bots.create("helpbot")     # made.token: give it to the bot
    await client.bots.set_commands([("help", "what I do")], bot="helpbot")
    for b in await client.bots.list(): print(b.name, [c.name for c in b.commands])
    fresh = await client.bots.rotate("helpbot")    # the old token stops working
    await client.bots.delete("helpbot")

    # a user pressing a button of a bot message (conv and pos from the message)
    pressed = await client.bots.press(msg.conv, msg.pos, "more")
    # the bot's side (its client authenticated with the bot token)
    await bot_client.bots.answer(query.callback, "done!")
    await bot_client.bots.edit(msg.conv, msg.pos, "new text", buttons=[[("Again", "more")]])
    for cb in await bot_client.bots.pending(): ...   # presses not answered yet

The bot framework (bot.py) uses these for the bot; people use create/list/rotate/delete,
commands and press. Refusals raise RequestError: UNKNOWN_BOT, BOTS_ONLY, UNKNOWN_CALLBACK,
NO_SUCH_BUTTON, USERNAME_TAKEN, INVALID_USERNAME (a bot's name ends in "bot"), ...
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence
from typing import Any

from liaotian.protocol.bots import (
    AnswerCallback,
    BotCreate,
    BotDelete,
    BotEdit,
    BotEntry,
    BotInfo,
    BotList,
    BotToken,
    CallbackEntry,
    CallbackList,
    CommandEntry,
    CommandList,
    GetCommands,
    GroupBots,
    ListBots,
    PendingCallbacks,
    Press,
    Pressed,
    SetCommands,
)
from liaotian.protocol.social import Ok

from .facade import Facade

__all__ = ["Bots", "Button", "buttons_meta"]

Button = tuple[str, str]  # (text shown, data the bot receives)


def buttons_meta(rows: Iterable[Iterable[Button]]) -> dict[str, Any]:
    """The meta of a message with these rows of (text, data) buttons."""
    return {"buttons": [[{"text": t, "data": d} for t, d in row] for row in rows]}


def _commands(commands: Iterable[tuple[str, str] | str]) -> tuple[CommandEntry, ...]:
    out = []
    for c in commands:
        name, desc = (c, "") if isinstance(c, str) else c
        out.append(CommandEntry(name=name.lstrip("/"), description=desc))
    return tuple(out)


class Bots(Facade):
    """Bot requests of one client."""

    __slots__ = ()

    # ------------------------------------------------------------------ an owner's

    async def create(self, name: str) -> BotInfo:
        """A new bot owned by you; `token` is how it authenticates (keep it secret)."""
        return await self._ask(BotCreate(rid=0, name=name), BotInfo, retry=False)

    async def list(self) -> builtins.list[BotEntry]:
        """Your bots, oldest first, with their commands."""
        return builtins.list((await self._ask(ListBots(rid=0), BotList, retry=True)).bots)

    async def rotate(self, name: str) -> BotInfo:
        """A new token for your bot: the old one is dead and its connections are closed."""
        return await self._ask(BotToken(rid=0, name=name), BotInfo, retry=False)

    async def delete(self, name: str) -> None:
        """Delete your bot: it can no longer connect and leaves its groups; its name stays
        taken for 30 days (nobody can pose as it), then it is free again."""
        await self._ask(BotDelete(rid=0, name=name), Ok, retry=False)

    async def set_commands(
        self, commands: Iterable[tuple[str, str] | str], *, bot: str = ""
    ) -> None:
        """Declare the commands of `bot` (yours), or of this client when it is a bot."""
        await self._ask(SetCommands(rid=0, commands=_commands(commands), bot=bot), Ok, retry=True)

    async def commands(self, bot: str) -> builtins.list[CommandEntry]:
        """The commands a bot declares (anyone may ask)."""
        got = await self._ask(GetCommands(rid=0, bot=bot), CommandList, retry=True)
        return builtins.list(got.commands)

    async def group_privacy(self, group: int, *, see_all: bool) -> None:
        """A group admin's setting: whether bot members see every message (see_all) or
        only commands and mentions of them (the default)."""
        await self._ask(GroupBots(rid=0, group=group, see_all=see_all), Ok, retry=True)

    # ------------------------------------------------------------------ buttons

    async def press(self, conv: int, pos: int, data: str) -> int:
        """Press the button with `data` of the bot message at `pos` of `conv`; the callback
        id (the bot's answer arrives as a CallbackAnswered event)."""
        got = await self._ask(Press(rid=0, conv=conv, pos=pos, data=data), Pressed, retry=False)
        return got.callback

    async def answer(self, callback: int, text: str = "", *, alert: bool = False) -> None:
        """A bot's answer to a press: a short notice to the presser."""
        await self._ask(
            AnswerCallback(rid=0, callback=callback, text=text, alert=alert), Ok, retry=False
        )

    async def pending(self, limit: int = 100) -> builtins.list[CallbackEntry]:
        """A bot's presses still waiting for its answer, oldest first (they are kept across
        restarts of the server and of the bot, for a day; each has `callback`, `sender`,
        `conv`, `pos`, `id`, `data`, `group`)."""
        got = await self._ask(PendingCallbacks(rid=0, limit=limit), CallbackList, retry=True)
        return builtins.list(got.callbacks)

    async def edit(
        self,
        conv: int,
        pos: int,
        text: str,
        *,
        buttons: Sequence[Sequence[Button]] | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        """A bot's edit of its message at `pos` of `conv`: new text and buttons."""
        m = dict(meta or {})
        if buttons:
            m.update(buttons_meta(buttons))
        await self._ask(BotEdit(rid=0, conv=conv, pos=pos, text=text, meta=m), Ok, retry=True)
