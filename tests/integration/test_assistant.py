"""The assistant example (examples/assistant.py) as a real process against a real server,
run with its one documented command: it creates its bot account with the owner's password,
chats in a direct conversation (small talk, answers from its knowledge file, the last
topic remembered, buttons for follow-ups, typing while composing, the owner's coins and
tasks) and in a group when mentioned. The brain itself is tested without I/O too."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import pytest
from cliproc import CLI
from liaotian.client import (
    CallbackAnswered,
    Client,
    MessageReceived,
    TypingEvent,
    register,
)
from liaotian.server.testing import RunningServer, run_server

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"
WAIT = 30.0
E = TypeVar("E")


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("assistant", ROOT / "examples" / "assistant.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["assistant"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    (tmp_path / "db").mkdir()
    async with run_server(tmp_path / "db") as srv:
        yield srv


def client(srv: RunningServer, user: str) -> Client:
    return Client(
        srv.host, srv.port, username=user, password=PASSWORD, device="phone", state_events=False
    )


async def next_event(c: Client, kind: type[E], pred: Any = None) -> E:
    async with asyncio.timeout(WAIT):
        async for event in c:
            if isinstance(event, kind) and (pred is None or pred(event)):
                return event
    raise AssertionError("event stream ended")


async def answer(c: Client, contains: str = "") -> MessageReceived:
    return await next_event(
        c,
        MessageReceived,
        lambda e: e.message.sender == "xiaobot" and contains in e.message.text,
    )


def test_the_brain_answers_from_its_knowledge_and_remembers_the_topic() -> None:
    ex = load_example()
    brain = ex.Brain(ex.load_knowledge(ROOT / "examples" / "assistant_knowledge.txt"), "xiaobot")
    hello = brain.reply("u1", "ann", "hi!")
    assert "Hello ann" in hello.text and hello.buttons
    r = brain.reply("u1", "ann", "How do red packets work?")
    assert "红包" in r.text and r.buttons[0] == [("Tell me more", "more:red packets")]
    assert "expires" in brain.reply("u1", "ann", "tell me more").text
    assert "red packets" in brain.reply("u1", "ann", "what were we talking about?").text
    assert "haven't" not in brain.reply("u2", "bob", "what were we talking about?").text
    assert "龙井" in brain.reply("u2", "bob", "我想喝茶").text  # Chinese keys match inside text
    assert brain.reply("u2", "bob", "@xiaobot thanks").text.startswith("You are welcome")
    small = brain.reply("u3", "cy", "the sky is purple today")
    assert small.text and not small.buttons


async def test_the_assistant_chats_in_a_dm_and_in_a_group(
    server: RunningServer, tmp_path: Path
) -> None:
    for name in ("alice", "bob"):
        await register(server.host, server.port, name, PASSWORD)
    cli = CLI(server.host, server.port, tmp_path / "home", LIAOTIAN_PASSWORD=PASSWORD)
    argv0 = [sys.executable, str(ROOT / "examples" / "assistant.py")]
    proc = await cli.start("--owner", "alice", "--compose", "0.05", "-v", argv0=argv0)
    try:
        await proc.wait_for("connected to", stderr=True)
        async with client(server, "alice") as alice, client(server, "bob") as bob:
            assert [b.name for b in await alice.bots.list()] == ["xiaobot"]
            assert (await alice.profile("xiaobot")).bot
            names = [c.name for c in await alice.bots.commands("xiaobot")]
            assert {"start", "help", "balance", "tasks"} <= set(names)

            await alice.send("xiaobot", "hello")
            typing = await next_event(alice, TypingEvent, lambda e: e.user == "xiaobot")
            assert typing.typing and typing.group is None
            got = (await answer(alice, "Hello alice")).message
            assert got.meta["buttons"]
            await alice.send("xiaobot", "what is a red packet?")
            m = (await answer(alice, "红包")).message
            assert m.meta["buttons"][0][0] == {"text": "Tell me more", "data": "more:red packets"}
            await alice.bots.press(m.conv, m.pos, "more:red packets")
            assert (await next_event(alice, CallbackAnswered)).bot == "xiaobot"
            await answer(alice, "expires")
            await alice.send("xiaobot", "what were we talking about?")
            await answer(alice, "We were talking about red packets")
            await alice.wallet.check_in()
            await alice.send("xiaobot", "/balance")
            await answer(alice, "You have 10 coins")
            await alice.send("xiaobot", "/tasks")
            await answer(alice, "All your tasks are done")

            await bob.contacts.request("alice")
            await alice.contacts.accept("bob")
            group = (await alice.groups.create("tea club", ["bob", "xiaobot"])).group
            await bob.groups.send(group, "anyone for tea?")  # not for the bot: no answer
            await bob.groups.send(group, "@xiaobot do you like tea?")
            got = (await answer(bob, "龙井")).message
            assert got.group == group and got.meta["buttons"]
            page = await bob.groups.history(group)
            from_bot = [x.text for x in page.messages if x.sender == "xiaobot"]
            assert len(from_bot) == 1  # the plain message got no answer
    finally:
        await proc.kill()
