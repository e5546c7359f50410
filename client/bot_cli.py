"""The bots' commands of the `liaotian` CLI (cli.py registers them and opens the session):

    liaotian bot create NAME                 a bot of yours; prints its token (once)
    liaotian bot list                        your bots and their commands
    liaotian bot token NAME                  a new token (the old one stops working)
    liaotian bot delete NAME
    liaotian bot commands NAME [CMD=TEXT ...]  a bot's commands; with CMD=TEXT, set yours
    liaotian bot privacy GROUP on|off        (group admins) bots see only commands and
                                             mentions (on, the default) or everything
    liaotian press CONV POS DATA             press a button under a bot's message

Messages with buttons are shown with a line of `[text] -> liaotian press CONV POS DATA`
(`fmt_buttons`), and the bot's answers and edits as `(bot)` lines (`fmt_bot_event`).
"""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from liaotian.protocol import ChatMessage

from .bot_events import CallbackAnswered, CallbackQuery, MessageEdited
from .client import Client
from .terminal import safe

COMMANDS = ("bot", "press")


class UsageError(Exception):
    """A wrong combination of arguments (cli.py reports it with exit status 2)."""


def add_parsers(sub: Any, common: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("bot", parents=common, help="your bots: create, list, token, delete")
    bsub = p.add_subparsers(dest="bot_command", metavar="ACTION", required=True)
    q = bsub.add_parser("create", parents=common, help="create a bot (its name ends in 'bot')")
    q.add_argument("name", metavar="NAME")
    bsub.add_parser("list", parents=common, help="your bots and their commands")
    q = bsub.add_parser("token", parents=common, help="rotate a bot's token")
    q.add_argument("name", metavar="NAME")
    q = bsub.add_parser("delete", parents=common, help="delete a bot")
    q.add_argument("name", metavar="NAME")
    q = bsub.add_parser("commands", parents=common, help="show or set a bot's commands")
    q.add_argument("name", metavar="NAME")
    q.add_argument("set", nargs="*", metavar="CMD=TEXT", help="set these commands (yours)")
    q = bsub.add_parser("privacy", parents=common, help="what bots in a group see")
    q.add_argument("group_id", type=int, metavar="GROUP")
    q.add_argument("mode", choices=("on", "off"), help="on: commands and mentions only")
    p = sub.add_parser("press", parents=common, help="press a button under a bot's message")
    p.add_argument("conv", type=int, metavar="CONV")
    p.add_argument("pos", type=int, metavar="POS")
    p.add_argument("data", metavar="DATA")


def fmt_buttons(m: ChatMessage) -> str | None:
    """The line under a bot message with buttons, saying how to press each."""
    rows = m.meta.get("buttons") if m.meta else None
    if not isinstance(rows, list):
        return None
    shown = []
    for row in rows:
        for b in row if isinstance(row, list) else ():
            if isinstance(b, dict) and isinstance(b.get("data"), str):
                shown.append(f"[{safe(b.get('text'))}] {safe(b['data'])}")
    if not shown:
        return None
    return f"    buttons: {'  '.join(shown)}  (liaotian press {m.conv} {m.pos} DATA)"


def fmt_bot_event(event: Any) -> str | None:
    """The `listen` line of a bot event, or None if it is not one."""
    if isinstance(event, CallbackAnswered):
        kind = "alert" if event.alert else "notice"
        return f"(bot) {safe(event.bot)} {kind}: {safe(event.text)}"
    if isinstance(event, MessageEdited):
        return (
            f"(bot) {safe(event.sender)} edited #{event.pos} in conversation {event.conv}: "
            f"{safe(event.text)}"
        )
    if isinstance(event, CallbackQuery):
        return f"(bot) {safe(event.sender)} pressed {safe(event.data)} under #{event.pos}"
    return None


async def run(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    b = client.bots
    if args.command == "press":
        cb = await b.press(args.conv, args.pos, args.data)
        print(
            f"pressed {safe(args.data)} (callback {cb}); the bot's answer comes as a notice",
            file=out,
        )
        return 0
    action = args.bot_command
    if action == "create":
        made = await b.create(args.name)
        print(f"bot {safe(made.name)} created; its token (keep it secret):", file=out)
        print(made.token, file=out)
    elif action == "list":
        for entry in await b.list():
            cmds = " ".join("/" + c.name for c in entry.commands)
            print(f"{safe(entry.name):<32} {safe(cmds)}", file=out)
    elif action == "token":
        made = await b.rotate(args.name)
        print(f"new token of {safe(made.name)} (the old one no longer works):", file=out)
        print(made.token, file=out)
    elif action == "delete":
        await b.delete(args.name)
        print(f"bot {safe(args.name)} deleted", file=out)
    elif action == "commands":
        if args.set:
            pairs = []
            for item in args.set:
                name, sep, text = item.partition("=")
                if not sep or not name:
                    raise UsageError(f"bot commands: {item!r} is not CMD=TEXT")
                pairs.append((name.lstrip("/"), text))
            await b.set_commands(pairs, bot=args.name)
        for c in await b.commands(args.name):
            print(f"/{safe(c.name):<20} {safe(c.description)}", file=out)
    elif action == "privacy":
        await b.group_privacy(args.group_id, see_all=args.mode == "off")
        mode = "commands and mentions only" if args.mode == "on" else "every message"
        print(f"bots in group #{args.group_id} see {mode}", file=out)
    return 0
