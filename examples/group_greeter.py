"""A group bot: welcomes new members, answers /who with the member list, and accepts
every contact request it receives.

    LIAOTIAN_PASSWORD=... python examples/group_greeter.py --user greeter
    liaotian contact request greeter                # from another account: the bot accepts,
    liaotian group create team --member greeter     # and contacts may add it to groups
    liaotian group add G carol                      # -> "welcome, carol!"
    liaotian send --group G /who                    # -> "members: ..."

Group timeline events (added, removed, renamed, ...) are not messages: they reach the
bot's `on_event` handlers, as do contact events, read receipts, typing and presence.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from liaotian.client import Bot, Client, ClientEvent, ContactEvent, Context, MessageReceived


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default=os.environ.get("LIAOTIAN_HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("LIAOTIAN_PORT", "7420")))
    p.add_argument("--user", default="greeter", help="the bot's account (default greeter)")
    p.add_argument("--password", default=os.environ.get("LIAOTIAN_PASSWORD"))
    p.add_argument("--state", default=None,
                   help="session file (default: greeter-<user>.json in the current directory)")
    return p.parse_args(argv)


def make_bot(args: argparse.Namespace) -> Bot:
    bot = Bot(args.user, args.password, host=args.host, port=args.port, device="greeter",
              state_file=args.state or f"greeter-{args.user}.json")

    @bot.command("who")
    async def who(ctx: Context) -> None:
        if ctx.group is None:
            await ctx.reply("ask me inside a group")
            return
        info = await ctx.client.group_info(ctx.group)
        await ctx.reply("members: " + ", ".join(f"{m.user} ({m.role})" for m in info.members))

    @bot.on_event
    async def on_event(client: Client, event: ClientEvent) -> None:
        if isinstance(event, MessageReceived):
            ge = event.group_event
            if ge is not None and ge.type == "added" and ge.actor != client.user:
                newcomers = [u for u in ge.users if u != client.user]
                if newcomers:
                    await client.send_group(ge.group, f"welcome, {', '.join(newcomers)}!")
        elif isinstance(event, ContactEvent) and event.event == "request":
            await client.contact_accept(event.user)

    return bot


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        make_bot(args).run()
    except ValueError as exc:  # no saved token and no password
        print(f"greeter: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
