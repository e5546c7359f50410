"""`liaotian chat` with channels and bot buttons, through Textual's Pilot against a real
server: channels in the chat list with unread counts, reading and posting (where allowed),
news arriving live; a bot message's buttons pressed by keys and by a click, the bot's
answer and edit shown; peer text (posts, button labels) shown literally."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from liaotian.client import CallbackQuery, Client, register
from liaotian.client.cursor import MemoryStore
from liaotian.client.tui import ChatApp
from liaotian.server.testing import RunningServer, run_server
from test_tui import ATTACK, PASSWORD, WAIT, client, open_chat, screen, shown, type_and_send, until
from textual.widgets import Button

SAFE_ATTACK = "hi\\x1b[2J\\x1b[31m [bold]not bold[/bold] [link=x]y[/link]\\u202e"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with run_server(tmp_path) as srv:
        yield srv


async def test_channels_in_the_chat_list_read_and_post(server: RunningServer) -> None:
    for name in ("alice", "bob"):
        await register(server.host, server.port, name, PASSWORD)
    async with client(server, "alice") as alice, client(server, "bob", "setup") as setup:
        forum = await alice.channels.create("forum", members_post=True)
        news = await alice.channels.create("news")  # only admins post
        for ch in (forum, news):
            await setup.channels.join(ch.channel)
        await alice.channels.post(forum.channel, "welcome all")
        await alice.channels.post(forum.channel, ATTACK)
        await alice.channels.post(news.channel, "launch today")
        async with client(server, "bob", "tui") as bob:
            app = ChatApp(bob)
            async with app.run_test(size=(120, 34)) as pilot:
                await shown(pilot, "≡ forum  (2)")
                await shown(pilot, "≡ news  (1)")
                await shown(pilot, "channel, 2 posts")

                await open_chat(pilot, forum.channel)
                await shown(pilot, "forum · channel, 2 members")
                await shown(pilot, "alice: welcome all")
                await shown(pilot, f"alice: {SAFE_ATTACK}")
                assert "\x1b" not in screen(app) and "\u202e" not in screen(app)
                await until(
                    pilot,
                    lambda: app.ctl.chats.entries[forum.channel].unread == 0,
                    "the forum read",
                )
                info = await alice.channels.info(forum.channel)
                assert info.pos == 2
                # the server has bob's position: the list from scratch says 0 unread
                async with asyncio.timeout(WAIT):
                    while [c.unread for c in await setup.channels.list() if c.name == "forum"] != [
                        0
                    ]:
                        await pilot.pause(0.02)

                # a member posts where members may
                await type_and_send(pilot, "thanks!")
                await shown(pilot, "bob: thanks!")
                page = await alice.channels.fetch(forum.channel)
                assert [p.text for p in page.posts][-1] == "thanks!"

                # news arrives live while the channel is open, and elsewhere as a count
                await alice.channels.post(forum.channel, "live one")
                await shown(pilot, "alice: live one")
                await alice.channels.post(news.channel, "second launch")
                await shown(pilot, "≡ news  (2)")

                # where only admins post, a member is told so and nothing is sent
                await open_chat(pilot, news.channel)
                await shown(pilot, "alice: second launch")
                await until(
                    pilot,
                    lambda: (
                        app.query_one("#compose").placeholder
                        == "Only the channel's admins post here"
                    ),
                    "the read-only placeholder",
                )
                await type_and_send(pilot, "me too")
                await shown(pilot, "(not sent: only the channel's admins post here)")
                assert len((await alice.channels.fetch(news.channel)).posts) == 2
                await pilot.press("ctrl+q")
            assert app.return_code == 0


async def test_bot_buttons_are_shown_and_pressed(server: RunningServer) -> None:
    for name in ("alice", "bob"):
        await register(server.host, server.port, name, PASSWORD)
    async with client(server, "alice") as alice:
        made = await alice.bots.create("menubot")
    bot = Client(
        server.host,
        server.port,
        username="menubot",
        token=made.token,
        store=MemoryStore(),
        state_events=False,
    )
    async with bot:
        menu = [[{"text": "Tea", "data": "tea"}, {"text": ATTACK[:60], "data": "x"}]]
        sent = await bot.send("bob", "tea or coffee?", {"buttons": menu})
        async with client(server, "bob", "tui") as bob:
            app = ChatApp(bob)
            async with app.run_test(size=(120, 34)) as pilot:
                await shown(pilot, "menubot  (1)")
                await open_chat(pilot, sent.conv)
                await shown(pilot, "menubot: tea or coffee?")
                await shown(pilot, "[Tea]  [hi\\x1b[2J")  # the buttons under the message
                await until(pilot, lambda: len(app.query("#buttons Button")) == 2, "the bar")
                labels = [str(b.label) for b in app.query("#buttons Button").results(Button)]
                assert labels[0] == "Tea" and "\x1b" not in labels[1]

                # keys: Ctrl+B to the first button, Enter presses it
                await pilot.press("ctrl+b")
                assert isinstance(app.focused, Button)
                await pilot.press("enter")
                async with asyncio.timeout(WAIT):
                    async for event in bot:
                        if isinstance(event, CallbackQuery):
                            break
                assert (event.data, event.sender, event.pos) == ("tea", "bob", sent.pos)
                await bot.bots.answer(event.callback, "one tea coming")
                await until(
                    pilot,
                    lambda: any("menubot: one tea coming" in n.message for n in app._notifications),
                    "the bot's answer",
                )
                # the bot's edit replaces the message and its buttons
                again = [[{"text": "Again", "data": "again"}]]
                await bot.bots.edit(sent.conv, sent.pos, "bob chose tea", meta={"buttons": again})
                await shown(pilot, "menubot: bob chose tea  (edited)")
                await until(pilot, lambda: len(app.query("#buttons Button")) == 1, "new buttons")
                assert "tea or coffee?" not in screen(app)

                # a click presses too
                (button,) = app.query("#buttons Button").results(Button)
                await until(pilot, lambda: button.region.width > 0, "the button laid out")
                assert await pilot.click(f"#{button.id}")
                async with asyncio.timeout(WAIT):
                    async for event in bot:
                        if isinstance(event, CallbackQuery):
                            break
                assert event.data == "again"
                # a later bot message without buttons leaves the newest buttons shown
                await bot.send("bob", "anything else?")
                await shown(pilot, "menubot: anything else?")
                assert len(app.query("#buttons Button")) == 1
                await pilot.press("ctrl+q")
            assert app.return_code == 0
