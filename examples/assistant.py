"""An assistant bot in the spirit of Xiaobing: small talk and answers from a local file.

    LIAOTIAN_PASSWORD=<alice's password> python examples/assistant.py --owner alice

One command: the first run creates the bot account `xiaobot` owned by alice (with her
password) and keeps its token in assistant-xiaobot.token beside the session file; later
runs resume with it. Or create the bot yourself (`liaotian bot create xiaobot`) and run
`LIAOTIAN_BOT_TOKEN=<token> python examples/assistant.py`.

What it does (no network model, no downloads: everything comes from
assistant_knowledge.txt beside this file, or `--knowledge FILE`):

* answers questions about the topics in the knowledge file, and "tell me more";
* small talk (greetings, thanks, how are you), and remembers each conversation's last
  topic ("what were we talking about?");
* offers buttons for follow-ups ("Tell me more", related topics) and answers the press;
* shows "typing" while it composes;
* in groups it answers when mentioned ("@xiaobot what is a red packet?") or given a
  command (a bot in privacy mode sees nothing else);
* /balance and /tasks: its owner's coin balance and open tasks (a bot cannot read other
  people's wallets: it asks with its owner's session, and only for its owner).

`--exit-after N` stops after N answers (for demos and tests); `-v` logs when connected.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from liaotian.client import (
    Bot,
    Client,
    Context,
    ErrorCode,
    MemoryStore,
    RequestError,
)
from liaotian.client.bot import CallbackContext

HERE = Path(__file__).resolve().parent
Buttons = list[list[tuple[str, str]]]

# ---------------------------------------------------------------------------- knowledge


@dataclass
class Topic:
    name: str
    keys: list[str] = field(default_factory=list)
    answer: str = ""
    more: str = ""
    follow: list[str] = field(default_factory=list)


def load_knowledge(path: Path) -> dict[str, Topic]:
    """Topics of an INI-like file: [name], then keys:, answer:, more:, follow: lines."""
    topics: dict[str, Topic] = {}
    current: Topic | None = None
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = topics.setdefault(line[1:-1].strip(), Topic(line[1:-1].strip()))
            continue
        key, sep, value = line.partition(":")
        if current is None or not sep:
            continue
        key, value = key.strip().lower(), value.strip()
        if key in ("keys", "follow"):
            getattr(current, key).extend(v.strip().lower() for v in value.split(",") if v.strip())
        elif key in ("answer", "more"):
            setattr(current, key, value)
    return topics


# ---------------------------------------------------------------------------- the brain

GREETINGS = ("hi", "hello", "hey", "你好", "嗨", "good morning", "good evening")
THANKS = ("thanks", "thank you", "谢谢", "thx")
MORE = ("more", "tell me more", "go on", "and then", "why", "details", "继续")
RECALL = ("what were we talking about", "last topic", "where were we", "刚才聊什么")
CHAT = (
    "Tell me more, I am listening.",
    "Interesting! What makes you say that?",
    "Hmm, I am only a small bot, but I like talking with you.",
    "That sounds like something worth a cup of tea.",
)


@dataclass
class Reply:
    text: str
    buttons: Buttons = field(default_factory=list)


class Brain:
    """The assistant's replies, without I/O: text in, text and buttons out. It remembers
    the last topic of each conversation (a user's DM, or a group)."""

    def __init__(self, topics: dict[str, Topic], name: str) -> None:
        self.topics = topics
        self.name = name
        self.last: dict[str, str] = {}  # conversation -> last topic

    def find(self, text: str) -> Topic | None:
        """The topic whose keys match the text best (longest matching key wins)."""
        words = " " + re.sub(r"[^\w\s-]", " ", text.lower()) + " "
        best: tuple[int, Topic] | None = None
        for t in self.topics.values():
            for k in (*t.keys, t.name):
                hit = f" {k} " in words if k.isascii() else k in text
                if hit and (best is None or len(k) > best[0]):
                    best = (len(k), t)
        return best[1] if best else None

    def buttons(self, t: Topic) -> Buttons:
        row = [("Tell me more", f"more:{t.name}")]
        follow = [(f.title(), f"topic:{f}") for f in t.follow if f in self.topics][:3]
        return [row, follow] if follow else [row]

    def topic(self, conv: str, t: Topic) -> Reply:
        self.last[conv] = t.name
        return Reply(t.answer, self.buttons(t))

    def more(self, conv: str, name: str | None = None) -> Reply:
        name = name or self.last.get(conv)
        t = self.topics.get(name or "")
        if t is None:
            return Reply("More about what? Ask me about " + self.menu() + ".")
        self.last[conv] = t.name
        follow = [(f.title(), f"topic:{f}") for f in t.follow if f in self.topics][:3]
        return Reply(t.more or t.answer, [follow] if follow else [])

    def menu(self) -> str:
        names = list(self.topics)[:5]
        return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else "anything"

    def reply(self, conv: str, sender: str, text: str) -> Reply:
        clean = text.replace("@" + self.name, "").strip()
        low = clean.lower().strip(" !?.。！？")
        if not low or low in GREETINGS or (low.split(" ")[0] in GREETINGS and len(low) < 20):
            starters = [(n.title(), f"topic:{n}") for n in list(self.topics)[:3]]
            return Reply(
                f"Hello {sender}! I am {self.name}. Ask me about {self.menu()}, or just chat.",
                [starters],
            )
        if any(low.startswith(t) for t in THANKS):
            return Reply("You are welcome! 不客气 :)")
        if any(r in low for r in RECALL):
            last = self.last.get(conv)
            if last is None:
                return Reply("We have not talked about anything yet. Shall we?")
            return Reply(f"We were talking about {last}.", self.buttons(self.topics[last]))
        if low in MORE or low.startswith("tell me more"):
            return self.more(conv)
        t = self.find(clean)
        if t is not None:
            return self.topic(conv, t)
        if low.startswith("how are you"):
            return Reply("I am fine, thank you! Always happy to chat. And you?")
        pick = CHAT[zlib.crc32(low.encode()) % len(CHAT)]
        last = self.last.get(conv)
        if last is not None:
            pick += f" (We were on {last}: say 'more' for more.)"
        return Reply(pick)


# ---------------------------------------------------------------------------- the bot


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default=os.environ.get("LIAOTIAN_HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("LIAOTIAN_PORT", "7420")))
    p.add_argument("--name", default="xiaobot", help="the bot's name (ends in 'bot')")
    p.add_argument("--owner", help="the owner's account (creates the bot; wallet answers)")
    p.add_argument("--token", default=os.environ.get("LIAOTIAN_BOT_TOKEN"), help="the bot's token")
    p.add_argument("--knowledge", type=Path, default=HERE / "assistant_knowledge.txt")
    p.add_argument("--state-dir", type=Path, default=Path("."), help="where to keep files")
    p.add_argument("--compose", type=float, default=0.3, help="seconds of 'typing' at most")
    p.add_argument("--exit-after", type=int, default=0, metavar="N")
    p.add_argument("-v", "--verbose", action="store_true")
    return p.parse_args(argv)


class Assistant:
    def __init__(self, args: argparse.Namespace, password: str | None) -> None:
        self.args = args
        self.password = password
        self.brain = Brain(load_knowledge(args.knowledge), args.name)
        self.token_file = args.state_dir / f"assistant-{args.name}.token"
        self.owner_store = MemoryStore()  # the owner's session, for wallet questions
        self.answered = 0
        self.bot: Bot | None = None

    def owner_client(self) -> Client:
        return Client(
            self.args.host,
            self.args.port,
            username=self.args.owner,
            password=self.password,
            device="assistant",
            store=self.owner_store,
            state_events=False,
        )

    async def token(self, *, rotate: bool = False) -> str:
        """The bot's token: given, saved, or made with the owner's account."""
        if self.args.token and not rotate:
            return str(self.args.token)
        if self.token_file.exists() and not rotate:
            return self.token_file.read_text().strip()
        if not (self.args.owner and self.password):
            raise SystemExit("assistant: give --token, or --owner with LIAOTIAN_PASSWORD")
        async with self.owner_client() as owner:
            try:
                made = await (owner.bots.rotate if rotate else owner.bots.create)(self.args.name)
            except RequestError as exc:
                if exc.code != ErrorCode.USERNAME_TAKEN:
                    raise
                made = await owner.bots.rotate(self.args.name)  # ours, token file lost
        self.token_file.write_text(str(made.token))
        self.token_file.chmod(0o600)
        return str(made.token)

    async def wallet_text(self, who: str, what: str) -> str:
        if who != self.args.owner or not self.password:
            return "I can only see my owner's wallet. Try `liaotian wallet` yourself!"
        async with self.owner_client() as owner:
            if what == "balance":
                b = await owner.wallet.balance()
                return f"You have {b.balance} coins ({b.balance - b.pending_out} to spend)."
            tasks = await owner.wallet.tasks()
        open_ = [t for t in tasks if t.done < t.cap]
        if not open_:
            return "All your tasks are done for now. Well done!"
        return "Open tasks: " + "; ".join(f"{t.name} (+{t.reward})" for t in open_)

    async def say(self, ctx: Context | CallbackContext, reply_text: str, buttons: Buttons) -> None:
        # composing: typing is shown by the framework while the handler runs
        await asyncio.sleep(min(self.args.compose, len(reply_text) / 400))
        await ctx.reply(reply_text, buttons=buttons or None)
        self.answered += 1
        if self.args.exit_after and self.answered >= self.args.exit_after and self.bot:
            await self.bot.stop()

    def make_bot(self, token: str) -> Bot:
        bot = Bot(
            self.args.name,
            token=token,
            host=self.args.host,
            port=self.args.port,
            state_file=self.args.state_dir / f"assistant-{self.args.name}.json",
        )
        self.bot = bot
        brain = self.brain

        def conv(ctx: Context) -> str:
            return f"g{ctx.group}" if ctx.group is not None else f"u{ctx.sender}"

        @bot.command("start", "say hello")
        async def start(ctx: Context) -> None:
            r = brain.reply(conv(ctx), ctx.sender, "hello")
            await self.say(ctx, r.text, r.buttons)

        @bot.command("help", "what I can do")
        async def help_(ctx: Context) -> None:
            text = (
                f"Ask me about {brain.menu()}; say 'more' for more, or chat. "
                "/balance and /tasks: your coins and open tasks (for my owner)."
            )
            await self.say(ctx, text, [[("Balance", "balance"), ("Tasks", "tasks")]])

        @bot.command("topics", "what I know about")
        async def topics(ctx: Context) -> None:
            rows = [[(n.title(), f"topic:{n}")] for n in list(brain.topics)[:8]]
            await self.say(ctx, "I know about these:", rows)

        @bot.command("balance", "your coin balance")
        async def balance(ctx: Context) -> None:
            await self.say(ctx, await self.wallet_text(ctx.sender, "balance"), [])

        @bot.command("tasks", "your open tasks")
        async def tasks(ctx: Context) -> None:
            await self.say(ctx, await self.wallet_text(ctx.sender, "tasks"), [])

        @bot.on_message
        async def chat(ctx: Context) -> None:
            if ctx.message.media is not None:
                await self.say(ctx, "Nice! I can only read text, though.", [])
                return
            r = brain.reply(conv(ctx), ctx.sender, ctx.text)
            await self.say(ctx, r.text, r.buttons)

        bot.on_mention(chat)  # in groups: only when mentioned (or a command)

        @bot.on_callback
        async def pressed(cb: CallbackContext) -> None:
            key = f"g{cb.group}" if cb.group is not None else f"u{cb.sender}"
            kind, _, name = cb.data.partition(":")
            await cb.answer("OK!" if kind != "more" else "Here is more...")
            if kind == "more":
                r = brain.more(key, name)
            elif kind == "topic" and name in brain.topics:
                r = brain.topic(key, brain.topics[name])
            elif kind in ("balance", "tasks"):
                r = Reply(await self.wallet_text(cb.sender, kind))
            else:
                r = brain.reply(key, cb.sender, cb.data)
            await self.say(cb, r.text, r.buttons)  # typing is shown meanwhile

        return bot


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    args.state_dir.mkdir(parents=True, exist_ok=True)
    assistant = Assistant(args, os.environ.get("LIAOTIAN_PASSWORD"))
    try:
        token = asyncio.run(assistant.token())
        try:
            assistant.make_bot(token).run()
        except RequestError as exc:
            if exc.code != ErrorCode.INVALID_TOKEN or not args.owner:
                raise
            token = asyncio.run(assistant.token(rotate=True))  # the saved token was rotated
            assistant.make_bot(token).run()
    except RequestError as exc:
        print(f"assistant: {exc.code.name}: {exc.message}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"assistant: cannot reach {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
