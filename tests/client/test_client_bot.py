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
