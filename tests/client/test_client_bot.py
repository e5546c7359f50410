"""Bot dispatch without a server: commands, message handlers, ignoring itself."""

from __future__ import annotations

from typing import Any

import pytest
from liaotian.client.bot import Bot, Context
from liaotian.client.events import MessageReceived, Resync
from liaotian.protocol import ChatMessage


class FakeClient:
    user = "echo"

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def send(self, to: str, text: str, meta: dict[str, Any] | None = None) -> None:
        self.sent.append((to, text))


def event(text: str, sender: str = "alice", seq: int = 1) -> MessageReceived:
    m = ChatMessage(
        id=seq, conv=1, pos=seq, sender=sender, to="echo", ts=0, cmid=f"c{seq}", text=text
    )
    return MessageReceived(seq, m)


def make_bot() -> tuple[Bot, list[str]]:
    bot = Bot("echo", "password")
    calls: list[str] = []

    @bot.on_message
    async def echo(ctx: Context) -> None:
        calls.append(f"echo:{ctx.text}")
        await ctx.reply(f"echo: {ctx.text}")

    @bot.command("help")
    async def help_(ctx: Context) -> None:
        calls.append(f"help:{ctx.args}")
        await ctx.reply("commands: /help")

    return bot, calls


async def test_messages_go_to_handlers_and_replies_to_the_sender() -> None:
    bot, calls = make_bot()
    client = FakeClient()
    await bot.dispatch(client, event("hello"))  # type: ignore[arg-type]
    assert calls == ["echo:hello"]
    assert client.sent == [("alice", "echo: hello")]


async def test_commands_take_precedence() -> None:
    bot, calls = make_bot()
    client = FakeClient()
    await bot.dispatch(client, event("/help  me please "))  # type: ignore[arg-type]
    await bot.dispatch(client, event("/nosuch thing"))  # type: ignore[arg-type]
    await bot.dispatch(client, event("/ help"))  # type: ignore[arg-type]
    assert calls == ["help:me please", "echo:/nosuch thing", "echo:/ help"]


async def test_own_messages_and_other_events_are_ignored() -> None:
    bot, calls = make_bot()
    client = FakeClient()
    await bot.dispatch(client, event("loop?", sender="echo"))  # type: ignore[arg-type]
    await bot.dispatch(client, Resync(5))  # type: ignore[arg-type]
    assert calls == [] and client.sent == []


async def test_a_failing_handler_does_not_stop_the_others() -> None:
    bot = Bot("echo")
    seen: list[str] = []

    @bot.on_message
    async def broken(ctx: Context) -> None:
        raise RuntimeError("bug")

    @bot.on_message
    async def fine(ctx: Context) -> None:
        seen.append(ctx.text)

    await bot.dispatch(FakeClient(), event("x"))  # type: ignore[arg-type]
    assert seen == ["x"]


def test_parse_command_and_validation() -> None:
    bot, _ = make_bot()
    assert bot.parse_command("/help") == ("help", "")
    assert bot.parse_command("/help\nline two") == ("help", "line two")
    assert bot.parse_command("help") is None
    assert bot.parse_command("/") is None
    with pytest.raises(ValueError):
        bot.command("two words")
    with pytest.raises(ValueError):
        Bot("echo", store=object(), state_file="x")  # type: ignore[arg-type]
    with pytest.raises(RuntimeError):
        _ = bot.client


# ------------------------------------------------------------------ commands, mentions, buttons


class FakePresence:
    def __init__(self) -> None:
        self.calls: list[tuple[str | None, int | None, bool]] = []

    async def typing(
        self, to: str | None = None, group: int | None = None, typing: bool = True
    ) -> bool:
        self.calls.append((to, group, typing))
        return True


class FakeBots:
    def __init__(self) -> None:
        self.answers: list[tuple[int, str]] = []
        self.edits: list[tuple[int, int, str, Any]] = []

    async def answer(self, callback: int, text: str = "", *, alert: bool = False) -> None:
        self.answers.append((callback, text))

    async def edit(self, conv: int, pos: int, text: str, *, buttons: Any = None) -> None:
        self.edits.append((conv, pos, text, buttons))


class FakeGroups:
    def __init__(self, sent: list[tuple[str, str]]) -> None:
        self.sent = sent

    async def send(self, group: int, text: str, meta: dict[str, Any] | None = None) -> None:
        self.sent.append((f"#{group}", text))


class BotClient(FakeClient):
    user = "echobot"

    def __init__(self) -> None:
        super().__init__()
        self.metas: list[dict[str, Any] | None] = []
        self.presence = FakePresence()
        self.bots = FakeBots()
        self.groups = FakeGroups(self.sent)
        self.send_group = self.groups.send

    async def send(self, to: str, text: str, meta: dict[str, Any] | None = None) -> None:
        self.sent.append((to, text))
        self.metas.append(meta)


def group_event(text: str, seq: int = 1) -> MessageReceived:
    m = ChatMessage(
        id=seq, conv=5, pos=seq, sender="alice", to="", ts=0, cmid=f"c{seq}", text=text, group=5
    )
    return MessageReceived(seq, m)


async def test_commands_addressed_to_another_bot_are_not_ours() -> None:
    bot = Bot("echobot", token="t")
    calls: list[str] = []

    @bot.command("help", "what I do")
    async def help_(ctx: Context) -> None:
        calls.append(ctx.args)

    client = BotClient()
    for text in ("/help@echobot a", "/help@otherbot b", "/help c"):
        await bot.dispatch(client, event(text))  # type: ignore[arg-type]
    assert calls == ["a", "c"]


async def test_mentions_in_groups_go_to_mention_handlers_with_typing_around() -> None:
    bot = Bot("echobot", token="t")
    seen: list[str] = []

    @bot.on_mention
    async def mentioned(ctx: Context) -> None:
        seen.append("mention:" + ctx.text)
        await ctx.reply("yes?", buttons=[[("More", "more")]])

    @bot.on_message
    async def other(ctx: Context) -> None:
        seen.append("message:" + ctx.text)

    client = BotClient()
    await bot.dispatch(client, group_event("hi @echobot"))  # type: ignore[arg-type]
    await bot.dispatch(client, group_event("hi @echobotx"))  # type: ignore[arg-type]
    await bot.dispatch(client, event("hi @echobot"))  # type: ignore[arg-type]
    assert seen == ["mention:hi @echobot", "message:hi @echobotx", "message:hi @echobot"]
    assert client.sent[0] == ("#5", "yes?")
    typing = client.presence.calls
    assert typing[:2] == [(None, 5, True), (None, 5, False)]
    assert typing[-2:] == [("alice", None, True), ("alice", None, False)]


async def test_presses_go_to_callback_handlers_which_answer_and_edit() -> None:
    from liaotian.client.bot import CallbackContext
    from liaotian.client.bot_events import CallbackQuery

    bot = Bot("echobot", token="t", typing=False)

    @bot.on_callback
    async def pressed(cb: CallbackContext) -> None:
        await cb.answer(f"got {cb.data}")
        await cb.edit("done", buttons=[[("Again", "again")]])

    client = BotClient()
    q = CallbackQuery(seq=3, callback=77, sender="alice", conv=9, pos=2, id=1, data="yes")
    await bot.dispatch(client, q)  # type: ignore[arg-type]
    assert client.bots.answers == [(77, "got yes")]
    assert client.bots.edits == [(9, 2, "done", [[("Again", "again")]])]
    assert client.presence.calls == []
