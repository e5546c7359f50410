"""The bots' round trips: a command answered, and a button press answered.

    python -m bench.bots --quick                  # 100 of each, seconds
    python -m bench.bots --json /tmp/bots.json    # 1,000 of each

Its own `liaotian-server` process on a temporary database (cheap password hashing, write
budgets and the bots' send limit lifted: the figure is the round trip, not the rate limit);
the bot in a process of its own, on the client library's `Bot` framework with its defaults
(a reconnecting client with an exactly-once cursor, "typing" shown while a handler runs):
what a bot built as the README says pays. `users` users in this process (the client
library), each doing one round trip at a time, after `warmup` unmeasured ones:

* `bot_command_ms_p50`, `bot_command_ms_p99`: from a user's `send("/ping N")` to the
  bot's reply `pong N` arriving at the user's client (MessageReceived). In between: the
  SEND's commit, the push to the bot, its handler (typing on, reply, typing off), the
  reply's commit and the push back;
* `bot_press_ms_p50`, `bot_press_ms_p99`: from a user's `bots.press()` of a button of the
  bot's menu message to the bot's answer arriving (CallbackAnswered): the press's commit
  (the callback kept pending, durably), the push to the bot, its handler answering, the
  answer's commit (closing the callback) and the push back;
* the baseline of the same run, `echo_ms_p50/p99` (in the details): the same round trip
  to a plain client in the bot's process that sends back what it gets (no framework, no
  typing): what a bot costs over two ordinary messages.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from typing import Any

from liaotian.client import Bot, CallbackAnswered, Client, MessageReceived, register
from liaotian.client.bot import CallbackContext, Context
from liaotian.client.cursor import MemoryStore

from .channels import ENV as CHANNEL_ENV
from .channels import free_port
from .report import percentile

PASSWORD = "bench password 1"
BOT = "benchbot"
ECHO = "benchecho"
ENV = {
    **CHANNEL_ENV,
    "LIAOTIAN_SEND_RATE": "1000000",
    "LIAOTIAN_SEND_BURST": "1000000",
    "LIAOTIAN_BOT_SEND_RATE": "1000000",
    "LIAOTIAN_BOT_SEND_BURST": "1000000",
}


# ---------------------------------------------------------------------------- the bot


def run_bot(port: int, token: str) -> None:
    """The bot process: /ping N -> pong N; /menu -> a message with buttons; a press ->
    its answer at once."""
    bot = Bot(BOT, token=token, host="127.0.0.1", port=port, store=MemoryStore())

    @bot.command("ping", "answers pong")
    async def ping(ctx: Context) -> None:
        await ctx.reply("pong " + ctx.args)

    @bot.command("menu", "a message with buttons")
    async def menu(ctx: Context) -> None:
        await ctx.reply("menu", buttons=[[("A", "a"), ("B", "b")]])

    @bot.on_callback
    async def pressed(cb: CallbackContext) -> None:
        await cb.answer("ok " + cb.data)

    async def echo() -> None:
        """The baseline: a plain client (no framework, no typing) sending back what it
        gets, in this same process."""
        async with Client(
            "127.0.0.1", port, username=ECHO, password=PASSWORD, device="b", state_events=False
        ) as c:
            async for event in c:
                if isinstance(event, MessageReceived) and event.message.sender != ECHO:
                    await c.send(event.message.sender, event.message.text)

    async def main() -> None:
        await asyncio.gather(bot.run_async(), echo())

    asyncio.run(main())


# ---------------------------------------------------------------------------- a user


class User:
    """A user's client and a reader task handing events to whoever waits for them."""

    def __init__(self, port: int, name: str) -> None:
        self.client = Client(
            "127.0.0.1", port, username=name, password=PASSWORD, device="b", state_events=False
        )
        self.waiting: dict[Any, asyncio.Future[Any]] = {}
        self.early: dict[Any, Any] = {}  # events that came before anyone waited
        self.reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.client.start()
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        async for event in self.client:
            key: Any = None
            if isinstance(event, MessageReceived) and event.message.sender in (BOT, ECHO):
                key = ("text", event.message.text)
            elif isinstance(event, CallbackAnswered):
                key = ("callback", event.callback)
            if key is None:
                continue
            fut = self.waiting.pop(key, None)
            if fut is not None and not fut.done():
                fut.set_result(event)
            else:
                self.early[key] = event

    def expect(self, key: Any) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if key in self.early:
            fut.set_result(self.early.pop(key))
        else:
            self.waiting[key] = fut
        return fut

    async def close(self) -> None:
        await self.client.close()
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.reader


async def commands(u: User, n: int, tag: str, *, to: str = BOT) -> list[float]:
    """Round trips of `/ping N` -> `pong N` (to the echo: `e N` -> `e N`)."""
    out = []
    for i in range(n):
        word = f"{tag}-{i}"
        text, back = (f"/ping {word}", f"pong {word}") if to == BOT else (f"e {word}",) * 2
        reply = u.expect(("text", back))
        t0 = time.perf_counter()
        await u.client.send(to, text)
        await asyncio.wait_for(reply, 30)
        out.append((time.perf_counter() - t0) * 1000)
    return out


async def presses(u: User, conv: int, pos: int, n: int) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        cb = await u.client.bots.press(conv, pos, "ab"[i % 2])
        await asyncio.wait_for(u.expect(("callback", cb)), 30)
        out.append((time.perf_counter() - t0) * 1000)
    return out


# ---------------------------------------------------------------------------- the run


async def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = tempfile.mkdtemp(prefix="bench-bots-")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIAOTIAN_")}
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "liaotian.server",
        "--port",
        str(port),
        "--db-path",
        os.path.join(tmp, "bench.db"),
        env={**env, **ENV},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )
    bot_proc: asyncio.subprocess.Process | None = None
    users: list[User] = []
    bot_log = open(os.path.join(tmp, "bot.log"), "wb")  # noqa: SIM115 (closed below)
    try:
        for _ in range(400):
            with contextlib.suppress(OSError):
                _r, w = await asyncio.open_connection("127.0.0.1", port)
                w.close()
                break
            await asyncio.sleep(0.05)
        names = [f"bu{i:03d}" for i in range(args.users)]
        for name in [*names, ECHO]:
            await register("127.0.0.1", port, name, PASSWORD)
        users = [User(port, name) for name in names]
        for u in users:
            await u.start()
        made = await users[0].client.bots.create(BOT)
        bot_proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.bots",
            "--bot",
            f"{port}:{made.token}",
            env={**env, "PYTHONPATH": _pythonpath(env)},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=bot_log,
        )
        # the bot is up once it has declared its commands (it starts at its log's head)
        async with asyncio.timeout(60):
            while not await users[0].client.bots.commands(BOT):
                if bot_proc.returncode is not None:
                    raise RuntimeError(f"the bot exited ({bot_proc.returncode})")
                await asyncio.sleep(0.05)
        # each user's menu message to press
        menus = []
        for u in users:
            got = u.expect(("text", "menu"))
            await u.client.send(BOT, "/menu")
            m = (await asyncio.wait_for(got, 30)).message
            menus.append((m.conv, m.pos))
        per = max(1, args.rounds // args.users)
        await asyncio.gather(*(commands(u, args.warmup, "ew", to=ECHO) for u in users))
        echo = await asyncio.gather(*(commands(u, per, "em", to=ECHO) for u in users))
        await asyncio.gather(*(commands(u, args.warmup, "w") for u in users))
        cmd = await asyncio.gather(*(commands(u, per, "m") for u in users))
        await asyncio.gather(
            *(presses(u, c, p, args.warmup) for u, (c, p) in zip(users, menus, strict=True))
        )
        prs = await asyncio.gather(
            *(presses(u, c, p, per) for u, (c, p) in zip(users, menus, strict=True))
        )
    finally:
        for u in users:
            await u.close()
        if bot_proc is not None and bot_proc.returncode is None:
            bot_proc.terminate()
            await bot_proc.wait()
        if server.returncode is None:
            server.terminate()
        code = await server.wait()
        bot_log.close()
        shutil.rmtree(tmp, ignore_errors=True)
    cmd_ms = [x for xs in cmd for x in xs]
    press_ms = [x for xs in prs for x in xs]
    echo_ms = [x for xs in echo for x in xs]
    return {
        "bot_command_ms_p50": round(percentile(cmd_ms, 50), 2),
        "bot_command_ms_p99": round(percentile(cmd_ms, 99), 2),
        "bot_press_ms_p50": round(percentile(press_ms, 50), 2),
        "bot_press_ms_p99": round(percentile(press_ms, 99), 2),
        # the baseline, measured in the same run: a plain client echoing (no framework)
        "echo_ms_p50": round(percentile(echo_ms, 50), 2),
        "echo_ms_p99": round(percentile(echo_ms, 99), 2),
        "commands": len(cmd_ms),
        "presses": len(press_ms),
        "users": args.users,
        "server_exit_code": code,
    }


def _pythonpath(env: dict[str, str]) -> str:
    """This checkout first, so that the bot process finds `bench.bots`."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))


def options(quick: bool) -> argparse.Namespace:
    args = build_parser().parse_args(["--quick"] if quick else [])
    apply_quick(args)
    return args


def measure(quick: bool) -> dict[str, Any]:
    """For `python -m bench` (runner.py): run with the defaults."""
    return asyncio.run(run(options(quick)))


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100 round trips of each kind")
    ap.add_argument("--rounds", type=int, default=1000, help="measured round trips of each")
    ap.add_argument("--users", type=int, default=4, help="users, one round trip at a time each")
    ap.add_argument("--warmup", type=int, default=20, help="unmeasured round trips per user")
    ap.add_argument("--json", help="also write the result here")
    ap.add_argument("--bot", help=argparse.SUPPRESS)  # PORT:TOKEN: be the bot process
    return ap


def apply_quick(args: argparse.Namespace) -> None:
    if args.quick:
        args.rounds, args.warmup = 100, 5


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.bot:
        port, _, token = args.bot.partition(":")
        run_bot(int(port), token)
        return 0
    apply_quick(args)
    result = asyncio.run(run(args))
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as fh:
            fh.write(text)
    return 0 if result["server_exit_code"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
