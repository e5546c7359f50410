"""`liaotian chat` (client/tui) driven headless through Textual's Pilot against a real
server (port 0, its own database): the chat list with unread counts, opening a chat marks it
read, Enter sends, messages and typing arrive live, peer text shows literally, history pages
back, groups open by name, and the app reconnects after a server restart.

Waits poll a condition on the screen or the model with a deadline (`until`); nothing sleeps
for luck.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from cliproc import CLI
from liaotian.client import (
    Backoff,
    Client,
    ErrorCode,
    MessageReceived,
    ReadReceipt,
    RequestError,
    register,
)
from liaotian.client.tui import ChatApp, Target, TargetError, resolve_target
from liaotian.server.testing import RunningServer, run_server
from textual.pilot import Pilot
from textual.widgets import Input, OptionList

PASSWORD = "correct horse battery"
WAIT = 10.0
ATTACK = "hi\x1b[2J\x1b[31m [bold]not bold[/bold] [link=x]y[/link]\u202e"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with run_server(tmp_path) as srv:
        yield srv


def client(srv: RunningServer, user: str, device: str = "t") -> Client:
    return Client(
        srv.host,
        srv.port,
        username=user,
        password=PASSWORD,
        device=device,
        backoff=Backoff(base=0.05, cap=0.2),
    )


async def users(srv: RunningServer, *names: str) -> None:
    """Register `names`, give them display names, make every pair contacts (so presence,
    receipts and group invitations are visible to each other)."""
    for name in names:
        await register(srv.host, srv.port, name, PASSWORD)
    for i, a in enumerate(names):
        async with client(srv, a, "setup") as ca:
            await ca.set_profile(display_name=a.capitalize())
            for b in names[i + 1 :]:
                await ca.contact_request(b)
    for i, b in enumerate(names):
        async with client(srv, b, "setup") as cb:
            for a in names[:i]:
                await cb.contact_accept(a)


def screen(app: ChatApp) -> str:
    """The screen as plain text, line by line (what a terminal would show)."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


async def until(
    pilot: Pilot[int], cond: Callable[[], object], what: str, timeout: float = WAIT
) -> None:
    """Let the app run until `cond()` holds (bounded)."""
    try:
        async with asyncio.timeout(timeout):
            while not cond():
                await pilot.pause(0.01)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}:\n{screen(pilot.app)}") from None


async def shown(pilot: Pilot[int], text: str) -> None:
    app = pilot.app
    assert isinstance(app, ChatApp)
    await until(pilot, lambda: text in screen(app), repr(text))


async def next_event(c: Client, kind: type, match: Callable[[object], bool]) -> object:
    async with asyncio.timeout(WAIT):
        async for event in c:
            if isinstance(event, kind) and match(event):
                return event
    raise AssertionError("the client ended")


async def open_chat(pilot: Pilot[int], conv: int) -> None:
    chats = pilot.app.query_one("#chats", OptionList)
    chats.focus()
    chats.highlighted = chats.get_option_index(str(conv))
    await pilot.press("enter")


async def type_and_send(pilot: Pilot[int], text: str) -> None:
    assert isinstance(pilot.app.focused, Input)
    await pilot.press(*text, "enter")


async def test_two_users_chat(server: RunningServer) -> None:
    await users(server, "alice", "bob", "carol")
    async with client(server, "bob") as bob, client(server, "carol") as carol:
        hi = await bob.send("alice", "hi there")
        trip = await carol.create_group("trip", ["alice", "bob"])
        await carol.send_group(trip.group, "first")
        async with client(server, "alice", "tui") as alice:
            app = ChatApp(alice)
            async with app.run_test(size=(110, 32)) as pilot:
                # the chat list: newest first, unread counts, last messages, display names
                await shown(pilot, "trip  (1)")
                await shown(pilot, "Bob  (1)")
                text = screen(app)
                assert text.index("trip") < text.index("Bob  (1)")
                assert "Bob: hi there" in text and "Carol: first" in text
                assert "alice" in text and "connected" in text

                # opening the chat shows it and marks it read (bob learns it)
                read = asyncio.ensure_future(
                    next_event(bob, ReadReceipt, lambda e: e.user == "alice" and e.pos == hi.pos)
                )
                await open_chat(pilot, hi.conv)
                await shown(pilot, "Bob (bob) · online")
                await shown(pilot, "──── Today ────")
                await shown(pilot, "Bob: hi there")
                await asyncio.wait_for(read, WAIT)
                await until(
                    pilot, lambda: app.ctl.chats.entries[hi.conv].unread == 0, "bob's chat read"
                )
                assert "Bob  (1)" not in screen(app)

                # Enter sends; bob receives it; bob's read marker shows as "read"
                got = asyncio.ensure_future(
                    next_event(bob, MessageReceived, lambda e: e.message.sender == "alice")
                )
                await type_and_send(pilot, "hello bob")
                event = await asyncio.wait_for(got, WAIT)
                assert event.message.text == "hello bob"
                await shown(pilot, "Alice: hello bob  (")
                await bob.mark_read(hi.conv, event.message.pos)
                await shown(pilot, "Alice: hello bob  (read)")

                # bob types and writes: both show up live, peer text literally
                await bob.typing(to="alice")
                await shown(pilot, "Bob is typing…")
                await bob.typing(to="alice", typing=False)
                await until(pilot, lambda: "is typing" not in screen(app), "typing ended")
                await bob.send("alice", ATTACK)
                await shown(
                    pilot, "Bob: hi\\x1b[2J\\x1b[31m [bold]not bold[/bold] [link=x]y[/link]\\u202e"
                )
                assert "\x1b" not in screen(app) and "\u202e" not in screen(app)
                assert app.ctl.chats.entries[hi.conv].unread == 0  # read as it came

                # a message in another chat raises that chat's unread count live
                await carol.send_group(trip.group, "second")
                await shown(pilot, "trip  (2)")
                await shown(pilot, "Carol: second")
                await pilot.press("ctrl+q")
            assert app.return_code == 0


async def test_group_by_name_and_history_pages(server: RunningServer) -> None:
    await users(server, "alice", "bob", "carol")
    async with client(server, "bob") as bob, client(server, "carol") as carol:
        trip = await carol.create_group("trip", ["alice", "bob"])
        for i in range(1, 61):
            await bob.send_group(trip.group, f"m{i}")
        async with client(server, "alice", "tui") as alice:
            # names, not numbers: a number only where names are ambiguous
            target = await resolve_target(alice, group="trip")
            assert target == Target(group=trip.group)
            assert await resolve_target(alice, group="TRIP") == target
            other = await alice.create_group("trip", [])
            with pytest.raises(TargetError) as exc:
                await resolve_target(alice, group="trip")
            assert f"#{trip.group}" in str(exc.value) and f"#{other.group}" in str(exc.value)
            assert await resolve_target(alice, group=f"#{trip.group}") == target
            with pytest.raises(TargetError):
                await resolve_target(alice, group="nowhere")
            with pytest.raises(RequestError) as refused:
                await resolve_target(alice, with_user="nobody")
            assert refused.value.code == ErrorCode.UNKNOWN_USER

            app = ChatApp(alice, target)
            async with app.run_test(size=(110, 32)) as pilot:
                await shown(pilot, "Bob: m60")
                assert app.focused is app.query_one("#compose", Input)
                await shown(pilot, "trip #")  # two groups named trip: numbers in the list
                await shown(pilot, "group, 3 members")
                assert "m10" not in screen(app) and app.ctl.conv is not None
                assert app.ctl.conv.more_before and app.ctl.conv.oldest == 12
                # PageUp at the top loads the page before; the membership event shows
                for _ in range(20):
                    if app.ctl.conv.oldest == 1:
                        break
                    await pilot.press("pageup")
                    await pilot.pause()
                await until(
                    pilot,
                    lambda: app.ctl.conv is not None and app.ctl.conv.oldest == 1,
                    "the first page",
                )
                assert not app.ctl.conv.more_before
                content = app.query_one("#messages").render()
                assert 'Carol created the group "trip" with Alice, Bob' in str(content)
                assert "Bob: m1\n" in str(content)

                got = asyncio.ensure_future(
                    next_event(carol, MessageReceived, lambda e: e.message.sender == "alice")
                )
                app.query_one("#compose", Input).focus()
                await type_and_send(pilot, "who is driving?")
                assert (await asyncio.wait_for(got, WAIT)).message.text == "who is driving?"
                await bob.typing(group=trip.group)
                await shown(pilot, "Bob is typing…")
                # a change of the group arrives live (a GroupChanged event) as a sentence
                await carol.groups.update(trip.group, name="road trip")
                await shown(pilot, 'Carol renamed the group to "road trip"')


async def test_reconnects_after_server_restart(server: RunningServer) -> None:
    await users(server, "alice", "bob")
    async with client(server, "bob") as bob:
        await bob.send("alice", "before")
        async with client(server, "alice", "tui") as alice:
            app = ChatApp(alice, Target(peer="bob"))
            async with app.run_test(size=(100, 24)) as pilot:
                await shown(pilot, "Bob: before")
                await server.stop()
                await shown(pilot, "reconnecting")
                await server.start()
                await shown(pilot, "· connected")
                await bob.send("alice", "after the restart")
                await shown(pilot, "Bob: after the restart")
                await type_and_send(pilot, "welcome back")
                await shown(pilot, "Alice: welcome back  (")


async def test_chat_needs_a_terminal(server: RunningServer, tmp_path: Path) -> None:
    await register(server.host, server.port, "alice", PASSWORD)
    cli = CLI(server.host, server.port, tmp_path / "home", LIAOTIAN_PASSWORD=PASSWORD)
    code, _, err = await cli.run("login", "alice")
    assert code == 0, err
    code, _, err = await cli.run("chat", "--group", "trip")
    assert code == 2 and "chat needs a terminal" in err


async def test_exits_when_the_session_is_revoked(server: RunningServer) -> None:
    await users(server, "alice")
    async with client(server, "alice", "tui") as alice, client(server, "alice", "phone") as phone:
        app = ChatApp(alice)
        async with app.run_test(size=(100, 24)) as pilot:
            await shown(pilot, "· connected")
            await phone.revoke_device("tui")
            await until(pilot, lambda: app.return_code is not None, "the app to end")
        assert app.return_code == 1


async def test_media_messages_show_readably_and_download(
    server: RunningServer, tmp_path: Path
) -> None:
    """A photo, a voice note, a file and a clipped track show as one line each (kind, name,
    size, dimensions or duration, title and artist; what the server read, peer text made
    safe); Ctrl+S saves the newest into the download directory, `/download DIR` into DIR."""
    import hashlib
    import io

    from liaotian.client import MediaRef
    from mediaclient import content, png, wav

    await users(server, "alice", "bob")
    photo, memo, notes, song = (
        png(640, 480),
        wav(3.0, rate=4000),
        content(5000, 3),
        wav(100.0, 2000),
    )
    async with client(server, "bob") as bob:
        await bob.media.send_image("alice", io.BytesIO(photo), name="beach.png", text=ATTACK)
        await bob.media.send_voice("alice", io.BytesIO(memo))
        await bob.media.send_file("alice", io.BytesIO(notes), name="../[bold]x[/bold].txt")
        done = await bob.media.upload(io.BytesIO(song), media_type="audio/wav")
        await bob.media.send(
            "alice",
            MediaRef.track(done, title="Moon [red]River", artist="Audrey", clip=(30_000, 60_000)),
        )
        hi = await bob.send("alice", "that's all")
        saved = tmp_path / "saved"
        saved.mkdir()
        async with client(server, "alice", "tui") as alice:
            app = ChatApp(alice, download_dir=str(saved))
            async with app.run_test(size=(120, 32)) as pilot:
                await shown(pilot, "Bob  (5)")
                await open_chat(pilot, hi.conv)
                await shown(pilot, "Bob: [image beach.png · 640x480 · ")
                text = screen(app)
                assert "KiB] hi\\x1b[2J\\x1b[31m [bold]not" in text  # caption, literally
                assert "Bob: [voice 0:03 · 23.5 KiB]" in text
                assert "Bob: [file ../[bold]x[/bold].txt · 4.9 KiB]" in text  # literally
                assert "Bob: [track Moon [red]River – Audrey · 0:30-1:00 of 1:40 · " in text
                assert "\x1b" not in text

                # Ctrl+S: the newest media message (the track) into the download directory
                await pilot.press("ctrl+s")
                await until(
                    pilot,
                    lambda: (
                        (saved / "download").exists()
                        or any(p.suffix != ".part" for p in saved.iterdir())
                    ),
                    "the track saved",
                )
                (got,) = [p for p in saved.iterdir()]
                assert got.read_bytes() == song
                assert got.name == hashlib.sha256(song).hexdigest()  # no name: its blob id
                # /download DIR; the file's name keeps only its last part, and a second
                # download of the same name does not overwrite the first
                other = tmp_path / "other"
                other.mkdir()
                await bob.media.send_file("alice", io.BytesIO(notes), name="notes.txt")
                await shown(pilot, "Bob: [file notes.txt · 4.9 KiB]")
                for n in (1, 2):
                    await type_and_send(pilot, f"/download {other}")
                    await until(
                        pilot,
                        lambda n=n: len([p for p in other.iterdir() if p.suffix == ".txt"]) == n,
                        "notes saved",
                    )
                assert sorted(p.name for p in other.iterdir()) == ["notes-1.txt", "notes.txt"]
                assert (other / "notes-1.txt").read_bytes() == notes
                assert "/download" not in screen(app)  # a command, not a message sent
                await pilot.press("ctrl+q")
            assert app.return_code == 0
