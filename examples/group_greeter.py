"""A group bot: welcomes new members, answers /who with the member list, and accepts
every contact request it receives.

    LIAOTIAN_PASSWORD=... python examples/group_greeter.py --user greeter
    liaotian contact request greeter                # from another account: the bot accepts,
    liaotian group create team --member greeter     # and contacts may add it to groups
    liaotian group add G carol                      # -> "welcome, carol!"
    liaotian send --group G /who                    # -> "members: ..."

The first run creates the account (with LIAOTIAN_PASSWORD) if it does not exist yet; later
runs log in with the saved token (greeter-<user>.json), so the same command works every
time. It runs until Ctrl-C or SIGTERM; `--exit-after N` stops it after N answers (welcomes,
/who replies, accepted contact requests), and `-v` logs when it is connected.

Group timeline events (added, removed, renamed, ...) are not messages: they arrive as
`GroupChanged` events at the bot's `on_event` handlers, as do contact events, read
receipts, typing and presence.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from liaotian.client import (
    Bot,
    Client,
    ClientEvent,
    ContactEvent,
    Context,
    ErrorCode,
    GroupChanged,
    RequestError,
    register,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default=os.environ.get("LIAOTIAN_HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("LIAOTIAN_PORT", "7420")))
    p.add_argument("--user", default="greeter", help="the bot's account (default greeter)")
    p.add_argument("--password", default=os.environ.get("LIAOTIAN_PASSWORD"))
    p.add_argument(
        "--state",
        default=None,
        help="session file (default: greeter-<user>.json in the current directory)",
    )
    p.add_argument(
        "--exit-after",
        type=int,
        default=0,
        metavar="N",
        help="stop after N answers (default 0: run until Ctrl-C)",
    )
    p.add_argument("-v", "--verbose", action="store_true")
    return p.parse_args(argv)


async def ensure_account(args: argparse.Namespace) -> None:
    """Create the bot's account unless it exists (USERNAME_TAKEN: it does; log in)."""
    try:
        await register(args.host, args.port, args.user, args.password)
    except RequestError as exc:
        if exc.code != ErrorCode.USERNAME_TAKEN:
            raise


def make_bot(args: argparse.Namespace) -> Bot:
    bot = Bot(
        args.user,
        args.password,
        host=args.host,
        port=args.port,
        device="greeter",
        state_file=args.state or f"greeter-{args.user}.json",
    )
    answered = 0

    async def done() -> None:
        nonlocal answered
        answered += 1
        if args.exit_after and answered >= args.exit_after:
            await bot.stop()

    @bot.command("who")
    async def who(ctx: Context) -> None:
        if ctx.group is None:
            await ctx.reply("ask me inside a group")
            return
        info = await ctx.client.groups.info(ctx.group)
        await ctx.reply("members: " + ", ".join(f"{m.user} ({m.role})" for m in info.members))
        await done()

    @bot.on_event
    async def on_event(client: Client, event: ClientEvent) -> None:
        if isinstance(event, GroupChanged):
            if event.type == "added" and event.actor != client.user:
                newcomers = [u for u in event.users if u != client.user]
                if newcomers:
                    await client.groups.send(event.group, f"welcome, {', '.join(newcomers)}!")
                    await done()
        elif isinstance(event, ContactEvent) and event.event == "request":
            await client.contacts.accept(event.user)
            await done()

    return bot


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    try:
        if args.password:
            asyncio.run(ensure_account(args))
        make_bot(args).run()
    except ValueError as exc:  # no saved token and no password
        print(f"greeter: {exc}", file=sys.stderr)
        return 2
    except RequestError as exc:
        print(f"greeter: {exc.code.name}: {exc.message}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"greeter: cannot reach {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
