"""An echo bot: answers every message with "echo: <text>".

    liaotian register echo                         # once, or pass --register below
    LIAOTIAN_PASSWORD=... python examples/echo_bot.py --user echo
    liaotian send echo hello                       # from another account
    liaotian listen                                # ... [time] echo -> you: echo: hello

`--exit-after N` stops the bot after N answers (for demos and tests); `-v` logs when it is
connected.

Add the bot to a group (the bot's account allows it with `liaotian privacy --groups
everyone`, or be its contact; then `liaotian group create team --member echo` and
`liaotian send --group G hi`) and it echoes there, into the same group: `ctx.reply()` answers
where the message came from.

The bot keeps its session (token, device, position) in a state file, so after a restart it
resumes with its token and answers exactly the messages that arrived while it was away.
It runs until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from liaotian.client import Bot, Context, ErrorCode, RequestError, register


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default=os.environ.get("LIAOTIAN_HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("LIAOTIAN_PORT", "7420")))
    p.add_argument(
        "--user",
        default=os.environ.get("LIAOTIAN_BOT_USER", "echo"),
        help="the bot's account (env LIAOTIAN_BOT_USER; default echo)",
    )
    p.add_argument(
        "--password",
        default=os.environ.get("LIAOTIAN_PASSWORD"),
        help="the bot's password (env LIAOTIAN_PASSWORD); needed for the first "
        "login, later runs use the saved token",
    )
    p.add_argument(
        "--state",
        default=None,
        help="session file (default: echo-bot-<user>.json in the current directory)",
    )
    p.add_argument(
        "--register", action="store_true", help="create the account first if it does not exist"
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


def make_bot(args: argparse.Namespace) -> Bot:
    bot = Bot(
        args.user,
        args.password,
        host=args.host,
        port=args.port,
        device="echo-bot",
        state_file=args.state or f"echo-bot-{args.user}.json",
    )

    answered = 0

    @bot.on_message
    async def echo(ctx: Context) -> None:
        nonlocal answered
        await ctx.reply(f"echo: {ctx.text}")
        answered += 1
        if args.exit_after and answered >= args.exit_after:
            await bot.stop()

    return bot


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    if args.register:
        if not args.password:
            print("--register needs a password", file=sys.stderr)
            return 2
        try:
            asyncio.run(register(args.host, args.port, args.user, args.password))
        except RequestError as exc:
            if exc.code != ErrorCode.USERNAME_TAKEN:
                print(f"register failed: {exc.code.name}: {exc.message}", file=sys.stderr)
                return 1
    bot = make_bot(args)
    try:
        bot.run()
    except ValueError as exc:  # no saved token and no password
        print(f"echo bot: {exc}", file=sys.stderr)
        return 2
    except RequestError as exc:
        print(f"echo bot: {exc.code.name}: {exc.message}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"echo bot: cannot reach {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
