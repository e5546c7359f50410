"""Bots against a real server (SPEC.md 26), the issue's "done when": a bot created from the
CLI answers a command with buttons (through the `Bot` framework) and handles a press; a
bot in privacy mode in a group sees only commands and mentions; bots have their own rate
limits; rotating the token logs the old one out; deleting the bot."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from cliproc import CLI
from liaotian.client import (
    Bot,
    CallbackAnswered,
    CallbackQuery,
    Client,
    Context,
    GroupChanged,
    MessageEdited,
    MessageReceived,
    TypingEvent,
    register,
)
from liaotian.client.bot import CallbackContext
from liaotian.client.cursor import MemoryStore
from liaotian.protocol import ConnectionClosed, ErrorCode, LiaotianError, RequestError
from liaotian.server.testing import RunningServer, run_server

PASSWORD = "correct horse battery"
WAIT = 30.0
E = TypeVar("E")


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    (tmp_path / "db").mkdir()
    async with run_server(tmp_path / "db", bot_send_rate=2.0, bot_send_burst=3.0) as srv:
        yield srv


def client(srv: RunningServer, user: str, device: str = "phone") -> Client:
    return Client(
        srv.host, srv.port, username=user, password=PASSWORD, device=device, state_events=False
    )


def bot_client(srv: RunningServer, name: str, token: str) -> Client:
    return Client(
        srv.host, srv.port, username=name, token=token, store=MemoryStore(), state_events=False
    )


async def next_event(c: Client, kind: type[E], pred: Any = None) -> E:
    """The next event of a type (and passing `pred`), passing over the others."""
    async with asyncio.timeout(WAIT):
        async for event in c:
            if isinstance(event, kind) and (pred is None or pred(event)):
                return event
    raise AssertionError("event stream ended")


async def test_a_cli_bot_answers_a_command_with_buttons_and_handles_a_press(
    server: RunningServer, tmp_path: Path
) -> None:
    await register(server.host, server.port, "alice", PASSWORD)
    cli = CLI(server.host, server.port, tmp_path / "alice", LIAOTIAN_PASSWORD=PASSWORD)

    async def run(*args: str) -> str:
        code, out, err = await cli.run(*args)
        assert code == 0, (args, out, err)
        return out

    await run("login", "alice", "--device", "cli")
    out = await run("bot", "create", "menubot")
    token = out.strip().splitlines()[-1]
    assert "menubot created" in out and len(token) > 20

    bot = Bot("menubot", token=token, host=server.host, port=server.port, store=MemoryStore())

    @bot.command("menu", "choose something")
    async def menu(ctx: Context) -> None:
        await asyncio.sleep(0.05)  # "working": the bot shows typing meanwhile
        await ctx.reply("tea or coffee?", buttons=[[("Tea", "tea"), ("Coffee", "coffee")]])

    @bot.on_callback
    async def chosen(cb: CallbackContext) -> None:
        await cb.answer(f"one {cb.data} for {cb.sender}")
        await cb.edit(f"{cb.sender} chose {cb.data}", buttons=[[("Again", "again")]])

    running = asyncio.create_task(bot.run_async())
    try:
        async with client(server, "alice") as alice:
            async with asyncio.timeout(WAIT):  # the commands are declared when it starts
                while not await alice.bots.commands("menubot"):
                    await asyncio.sleep(0.02)
            out = await run("bot", "commands", "menubot")
            assert "/menu" in out and "choose something" in out
            assert "menubot" in await run("bot", "list")
            assert "bot:    yes" in await run("profile", "menubot")

            await alice.send("menubot", "/menu")
            typing = await next_event(alice, TypingEvent, lambda e: e.user == "menubot")
            assert typing.typing
            got = await next_event(alice, MessageReceived, lambda e: e.message.sender == "menubot")
            m = got.message
            assert m.text == "tea or coffee?"
            assert [b["data"] for b in m.meta["buttons"][0]] == ["tea", "coffee"]
            out = await run("history", "menubot")
            assert "buttons: [Tea] tea  [Coffee] coffee" in out, out
            assert f"liaotian press {m.conv} {m.pos} DATA" in out

            out = await run("press", str(m.conv), str(m.pos), "coffee")
            assert "pressed coffee" in out
            answered = await next_event(alice, CallbackAnswered)
            assert answered.text == "one coffee for alice" and answered.bot == "menubot"
            edited = await next_event(alice, MessageEdited)
            assert (edited.conv, edited.pos, edited.text) == (m.conv, m.pos, "alice chose coffee")
            assert edited.buttons == [[{"text": "Again", "data": "again"}]]
            out = await run("history", "menubot")  # the stored message is the edited one
            assert "alice chose coffee (edited " in out and "[Again] again" in out, out
            assert "tea or coffee?" not in out
            # after the edit, the new button presses and the old ones are gone
            await alice.bots.press(m.conv, m.pos, "again")
            assert (await next_event(alice, CallbackAnswered)).text == "one again for alice"
            with pytest.raises(RequestError) as refused:
                await alice.bots.press(m.conv, m.pos, "tea")
            assert refused.value.code == ErrorCode.NO_SUCH_BUTTON
            # only a bot's messages carry buttons, and only its own are pressed or edited
            with pytest.raises(RequestError) as refused:
                await alice.send("menubot", "x", {"buttons": [[{"text": "a", "data": "b"}]]})
            assert refused.value.code == ErrorCode.BOTS_ONLY
            with pytest.raises(RequestError) as refused:
                await alice.bots.edit(m.conv, m.pos, "mine now")
            assert refused.value.code == ErrorCode.BOTS_ONLY
    finally:
        await bot.stop()
        await asyncio.wait_for(running, WAIT)


async def test_a_bot_in_privacy_mode_sees_only_commands_and_mentions(
    server: RunningServer,
) -> None:
    for name in ("alice", "bob"):
        await register(server.host, server.port, name, PASSWORD)
    async with client(server, "alice") as alice, client(server, "bob") as bob:
        made = await alice.bots.create("quietbot")
        await bob.contacts.request("alice")
        await alice.contacts.accept("bob")
        group = (await alice.groups.create("team", ["bob", "quietbot"])).group
        async with bot_client(server, "quietbot", made.token or "") as qb:
            for text in ("plain talk", "/help", "hey @quietbot", "/start@otherbot", "@quietbotx"):
                await bob.groups.send(group, text)
            await alice.groups.send(group, "last")
            seen = []
            async with asyncio.timeout(WAIT):
                async for event in qb:
                    if isinstance(event, MessageReceived) and event.message.event is None:
                        seen.append(event.message.text)
                        if len(seen) == 2:
                            break
            assert seen == ["/help", "hey @quietbot"]
            # the group's admins let bots see everything
            with pytest.raises(RequestError) as refused:
                await bob.bots.group_privacy(group, see_all=True)
            assert refused.value.code == ErrorCode.FORBIDDEN
            await alice.bots.group_privacy(group, see_all=True)
            await bob.groups.send(group, "now plain talk too")
            got = await next_event(qb, MessageReceived, lambda e: e.message.event is None)
            assert got.message.text == "now plain talk too"
            # and bob, a member, sees everything throughout
            page = await bob.groups.history(group)
            assert [x.text for x in page.messages if x.event is None][:6] == [
                "plain talk",
                "/help",
                "hey @quietbot",
                "/start@otherbot",
                "@quietbotx",
                "last",
            ]


async def test_bots_have_their_own_rate_limits(server: RunningServer) -> None:
    await register(server.host, server.port, "alice", PASSWORD)
    async with client(server, "alice") as alice:
        made = await alice.bots.create("chattybot")
        for i in range(5):  # a person's limits are far above 3 at once
            await alice.send("chattybot", f"hi {i}")
        async with bot_client(server, "chattybot", made.token or "") as cb:
            refused = None
            for i in range(6):
                try:
                    await cb.send("alice", f"reply {i}", timeout=0.2)
                except (RequestError, TimeoutError) as exc:
                    refused = exc
                    break
            assert refused is not None, "a bot's burst is 3 in this server"


async def test_rotating_the_token_logs_the_old_one_out_and_deleting_ends_the_bot(
    server: RunningServer,
) -> None:
    await register(server.host, server.port, "alice", PASSWORD)
    async with client(server, "alice") as alice:
        made = await alice.bots.create("rotbot")
        old = made.token or ""
        async with bot_client(server, "rotbot", old) as rb:
            await rb.send("alice", "hello from the old token")
            fresh = (await alice.bots.rotate("rotbot")).token or ""
            assert fresh and fresh != old
            with pytest.raises(LiaotianError):
                async with asyncio.timeout(WAIT):
                    async for _event in rb:
                        pass
        with pytest.raises((RequestError, ConnectionClosed, LiaotianError)):
            async with bot_client(server, "rotbot", old) as again:
                await again.send("alice", "must not arrive")
        async with bot_client(server, "rotbot", fresh) as rb2:
            await rb2.send("alice", "hello from the new token")
            await alice.bots.delete("rotbot")
            with pytest.raises(LiaotianError):
                async with asyncio.timeout(WAIT):
                    async for _event in rb2:
                        pass
        with pytest.raises((RequestError, ConnectionClosed, LiaotianError)):
            async with bot_client(server, "rotbot", fresh) as again:
                await again.send("alice", "must not arrive")
        assert await alice.bots.list() == []
        with pytest.raises(RequestError) as refused:
            await alice.bots.rotate("rotbot")
        assert refused.value.code == ErrorCode.UNKNOWN_BOT
        page = await alice.history("rotbot")
        assert [m.text for m in page.messages] == [
            "hello from the old token",
            "hello from the new token",
        ]


async def test_a_bot_gets_a_press_as_a_callback_and_answers_once(server: RunningServer) -> None:
    """The raw facade: the press reaches the bot's log as a CallbackQuery; a second answer
    of the same callback, or an answer by anyone else, is UNKNOWN_CALLBACK."""
    await register(server.host, server.port, "alice", PASSWORD)
    async with client(server, "alice") as alice:
        made = await alice.bots.create("rawbot")
        async with bot_client(server, "rawbot", made.token or "") as rb:
            sent = await rb.send("alice", "pick", {"buttons": [[{"text": "A", "data": "a"}]]})
            cb = await alice.bots.press(sent.conv, sent.pos, "a")
            q = await next_event(rb, CallbackQuery)
            assert (q.callback, q.sender, q.data, q.pos) == (cb, "alice", "a", sent.pos)
            with pytest.raises(RequestError) as refused:
                await alice.bots.answer(cb, "not yours")
            assert refused.value.code == ErrorCode.UNKNOWN_CALLBACK
            await rb.bots.answer(cb, "ok", alert=True)
            with pytest.raises(RequestError) as refused:
                await rb.bots.answer(cb, "twice")
            assert refused.value.code == ErrorCode.UNKNOWN_CALLBACK
            got = await next_event(alice, CallbackAnswered)
            assert (got.text, got.alert) == ("ok", True)


async def test_a_token_bot_resumes_exactly_once_across_restarts(
    server: RunningServer, tmp_path: Path
) -> None:
    """The framework keeps what it did for password accounts: a bot restarted with its
    state file answers what arrived while it was away, each message once."""
    await register(server.host, server.port, "alice", PASSWORD)
    async with client(server, "alice") as alice:
        token = (await alice.bots.create("pongbot")).token or ""
        answered: list[str] = []

        def make(stop_after: int) -> Bot:
            bot = Bot(
                "pongbot",
                token=token,
                host=server.host,
                port=server.port,
                state_file=tmp_path / "pongbot.json",
            )

            @bot.on_message
            async def pong(ctx: Context) -> None:
                answered.append(ctx.text)
                await ctx.reply("pong " + ctx.text)
                if len(answered) >= stop_after:
                    await bot.stop()

            return bot

        first = make(1)
        running = asyncio.create_task(first.run_async())
        await alice.send("pongbot", "a")
        await next_event(alice, MessageReceived, lambda e: e.message.text == "pong a")
        await asyncio.wait_for(running, WAIT)
        await alice.send("pongbot", "b")  # while the bot is away
        await alice.send("pongbot", "c")
        second = make(3)
        await asyncio.wait_for(second.run_async(), WAIT)
        assert answered == ["a", "b", "c"]
        page = await alice.history("pongbot")
        assert [m.text for m in page.messages if m.sender == "pongbot"] == [
            "pong a",
            "pong b",
            "pong c",
        ]


async def test_an_edit_is_stored_synced_and_pushed_once(server: RunningServer) -> None:
    """A bot's edit changes the stored message: history and a device syncing from scratch
    show the edited text, buttons and `edited`; each member's devices get it once."""
    await register(server.host, server.port, "alice", PASSWORD)
    await register(server.host, server.port, "bob", PASSWORD)
    async with client(server, "alice") as alice, client(server, "bob") as bob:
        made = await alice.bots.create("editbot")
        await bob.account.set_privacy(groups="everyone")
        async with bot_client(server, "editbot", made.token or "") as eb:
            g = await alice.groups.create("g", ["bob", "editbot"])
            buttons = [[{"text": "A", "data": "a"}]]
            sent = await eb.groups.send(g.group, "pick", {"buttons": buttons})
            await eb.bots.edit(sent.conv, sent.pos, "picked a", buttons=[[("Again", "again")]])
            for c in (alice, bob):
                e = await next_event(c, MessageEdited)
                assert (e.pos, e.text, e.group) == (sent.pos, "picked a", g.group) and e.edited
            page = await bob.groups.history(g.group)
            m = page.messages[-1]
            assert (m.pos, m.text, m.edited) == (sent.pos, "picked a", e.edited)
            assert m.meta["buttons"] == [[{"text": "Again", "data": "again"}]]
            # a second edit: the stored message follows; the old button is gone
            await eb.bots.edit(sent.conv, sent.pos, "final")
            e2 = await next_event(bob, MessageEdited)
            assert e2.text == "final" and e2.edited >= e.edited
            with pytest.raises(RequestError) as refused:
                await bob.bots.press(sent.conv, sent.pos, "again")
            assert refused.value.code == ErrorCode.NO_SUCH_BUTTON
        # a new device of bob's syncs the whole log: the message as stored now, then each
        # edit entry once
        async with client(server, "bob", device="tablet") as tablet:
            got: list[Any] = []
            async with asyncio.timeout(WAIT):
                async for event in tablet:
                    got.append(event)
                    if isinstance(event, MessageEdited) and event.text == "final":
                        break
            msgs = [
                e.message
                for e in got
                if isinstance(e, MessageReceived) and e.message.pos == sent.pos
            ]
            assert [(x.text, x.edited) for x in msgs] == [("final", e2.edited)]
            assert [x.text for x in got if isinstance(x, MessageEdited)] == ["picked a", "final"]


async def test_a_press_survives_a_restart_and_the_bot_finds_it_pending(
    server: RunningServer,
) -> None:
    await register(server.host, server.port, "alice", PASSWORD)
    async with client(server, "alice") as alice:
        made = await alice.bots.create("slowbot")
        async with bot_client(server, "slowbot", made.token or "") as sb:
            sent = await sb.send("alice", "pick", {"buttons": [[{"text": "A", "data": "a"}]]})
        cb = await alice.bots.press(sent.conv, sent.pos, "a")
    await server.restart()
    async with client(server, "alice") as alice:
        async with bot_client(server, "slowbot", made.token or "") as sb:
            (p,) = await sb.bots.pending()
            assert (p.callback, p.sender, p.pos, p.data, p.group) == (
                cb,
                "alice",
                sent.pos,
                "a",
                None,
            )
            await sb.bots.answer(cb, "sorry for the wait")
            assert await sb.bots.pending() == []
            with pytest.raises(RequestError) as refused:
                await sb.bots.answer(cb, "twice")
            assert refused.value.code == ErrorCode.UNKNOWN_CALLBACK
        got = await next_event(alice, CallbackAnswered)
        assert got.text == "sorry for the wait"
        with pytest.raises(RequestError) as refused:
            await alice.bots.pending()
        assert refused.value.code == ErrorCode.BOTS_ONLY


async def test_the_framework_handles_presses_left_pending_at_start(server: RunningServer) -> None:
    await register(server.host, server.port, "alice", PASSWORD)
    async with client(server, "alice") as alice:
        made = await alice.bots.create("latebot")
        async with bot_client(server, "latebot", made.token or "") as lb:
            sent = await lb.send("alice", "pick", {"buttons": [[{"text": "A", "data": "a"}]]})
            await alice.bots.press(sent.conv, sent.pos, "a")
            await next_event(lb, CallbackQuery)  # seen (and acknowledged), not answered
        bot = Bot("latebot", token=made.token, host=server.host, port=server.port)
        presses: list[str] = []

        @bot.on_callback
        async def late(cb: CallbackContext) -> None:
            presses.append(cb.data)
            await cb.edit("handled late")  # no answer: the framework answers ""

        running = asyncio.create_task(bot.run_async())
        try:
            edited = await next_event(alice, MessageEdited)
            assert edited.text == "handled late"
            answered = await next_event(alice, CallbackAnswered)
            assert answered.text == "" and presses == ["a"]
        finally:
            await bot.stop()
            await asyncio.wait_for(running, WAIT)
        async with bot_client(server, "latebot", made.token or "") as lb:
            assert await lb.bots.pending() == []


async def test_a_deleted_bot_leaves_its_groups_and_its_name_is_quarantined(
    server: RunningServer,
) -> None:
    await register(server.host, server.port, "alice", PASSWORD)
    await register(server.host, server.port, "bob", PASSWORD)
    async with client(server, "alice") as alice, client(server, "bob") as bob:
        await bob.account.set_privacy(groups="everyone")
        made = await alice.bots.create("gonebot")
        g = (await alice.groups.create("g", ["bob", "gonebot"])).group
        await alice.bots.delete("gonebot")
        for c in (alice, bob):
            ev = await next_event(c, GroupChanged, lambda e: e.message.event.get("type") == "left")
            assert ev.message.event == {"type": "left", "users": ["gonebot"], "deleted": True}
            assert ev.group == g and ev.message.sender == "gonebot"
        info = await bob.groups.info(g)
        assert sorted(m.user for m in info.members) == ["alice", "bob"]
        # nobody can take the name while it is in quarantine
        with pytest.raises(RequestError) as refused:
            await register(server.host, server.port, "gonebot", PASSWORD)
        assert refused.value.code == ErrorCode.USERNAME_TAKEN
        with pytest.raises((RequestError, ConnectionClosed, LiaotianError)):
            async with bot_client(server, "gonebot", made.token or "") as again:
                await again.send("alice", "must not arrive")
        # once it is over, the sweep frees the name; old messages keep their sender name
        assert server.server is not None
        server.server.bots.name_quarantine_ms = 0
        await server.server.bots.sweep()
        await register(server.host, server.port, "gonebot", PASSWORD)
        page = await bob.groups.history(g)
        assert page.messages[-1].event == {"type": "left", "users": ["gonebot"], "deleted": True}
