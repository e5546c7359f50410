"""`liaotian listen` and the session file against a real server (issue 11, items 10, 11, 13).

* item 10: listen first shows what is unread, per conversation, including messages that
  arrived before the device ever logged in; each message once (the unread listing and the
  log overlap); `--mark-read` marks what it printed as read, without it nothing changes;
* item 11: a running listen never overwrites a newer login in the session file;
* item 13: with the server down listen waits and retries instead of exiting; refusals name
  the user they are about and THROTTLED shows its wait.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cliproc import CLI
from liaotian.client import Client, register
from liaotian.server.testing import RunningServer, run_server

PASSWORD = "correct horse battery"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    (tmp_path / "srv").mkdir()
    async with run_server(tmp_path / "srv") as srv:
        yield srv


def client(srv: RunningServer, user: str, device: str = "t") -> Client:
    return Client(srv.host, srv.port, username=user, password=PASSWORD, device=device)


async def users(srv: RunningServer, *names: str) -> None:
    """Register the names, each allowing anyone to add them to groups (the default is
    contacts only), from a device of its own that the tests do not use otherwise."""
    for name in names:
        await register(srv.host, srv.port, name, PASSWORD)
        async with client(srv, name, device="setup") as c:
            await c.set_privacy(groups="everyone")


def cli_for(srv: RunningServer, tmp_path: Path) -> CLI:
    return CLI(srv.host, srv.port, tmp_path / "home", LIAOTIAN_PASSWORD=PASSWORD)


@pytest.mark.parametrize("mark_read", [False, True])
async def test_listen_shows_unread_from_before_the_first_login(
    server: RunningServer, tmp_path: Path, mark_read: bool
) -> None:
    await users(server, "alice", "bob", "carol")
    async with client(server, "alice") as alice:
        for i in range(3):
            await alice.send("bob", f"early {i}")
        g = (await alice.create_group("team", ["bob"])).group
        await alice.send_group(g, "group early")
    cli = cli_for(server, tmp_path)
    code, _, err = await cli.run("login", "bob")
    assert code == 0, err
    async with client(server, "carol") as carol:
        await carol.send("bob", "after login, before listen")  # unread AND in bob's log
    proc = await cli.start("listen", *(["--mark-read"] if mark_read else []))
    try:
        await proc.wait_for("carol -> bob: after login, before listen")
        async with client(server, "alice") as alice:
            await alice.send("bob", "live")
        await proc.wait_for("alice -> bob: live")
        assert await proc.interrupt() == 0
    finally:
        await proc.kill()
    lines = [line.split("] ", 1)[1] for line in proc.out]
    assert lines == [
        "alice -> bob: early 0",
        "alice -> bob: early 1",
        "alice -> bob: early 2",
        f"alice -> #{g} team: group early",
        "carol -> bob: after login, before listen",
        "alice -> bob: live",
    ], proc.out
    code, chats, err = await cli.run("chats")
    assert code == 0, err
    if mark_read:
        assert "unread" not in chats, chats
    else:
        assert [line.split("unread")[0].split()[-1] for line in chats.splitlines()] == [
            "4",
            "1",
            "1",
        ], chats


async def test_listen_points_at_older_unread(server: RunningServer, tmp_path: Path) -> None:
    await users(server, "alice", "bob")
    async with client(server, "alice") as alice:
        for i in range(5):
            await alice.send("bob", f"m{i}")
    cli = cli_for(server, tmp_path)
    assert (await cli.run("login", "bob"))[0] == 0
    proc = await cli.start("listen", "--unread", "2")
    try:
        await proc.wait_for("alice -> bob: m4")
        note = await proc.wait_for("3 earlier unread", stderr=True)
        assert "liaotian history alice --before 4" in note
        assert await proc.interrupt() == 0
    finally:
        await proc.kill()
    assert [line.split(": ", 1)[1] for line in proc.out] == ["m3", "m4"]


async def test_running_listen_does_not_overwrite_a_newer_login(
    server: RunningServer, tmp_path: Path
) -> None:
    await users(server, "alice", "bob")
    cli = cli_for(server, tmp_path)
    assert (await cli.run("login", "alice"))[0] == 0
    session = cli.config_dir / "session-alice.json"
    proc = await cli.start("listen")
    try:
        await proc.wait_for("listening as alice", stderr=True)
        code, out, err = await cli.run("login", "alice", "--device", "laptop")
        assert code == 0, err
        newer = json.loads(session.read_text())
        assert newer["device"] == "laptop"
        async with client(server, "bob") as bob:
            await bob.send("alice", "moves the listener's cursor")
        await proc.wait_for("bob -> alice: moves the listener's cursor")
        assert await proc.interrupt() == 0  # close() ACKs and saves the cursor
    finally:
        await proc.kill()
    assert json.loads(session.read_text()) == newer
    assert any("holds a newer login" in line for line in proc.err), proc.err
    code, out, err = await cli.run("devices")  # the saved session is the laptop's
    assert code == 0 and "* laptop" in out, (out, err)


async def test_listen_waits_for_the_server(server: RunningServer, tmp_path: Path) -> None:
    await users(server, "alice", "bob")
    cli = cli_for(server, tmp_path)
    assert (await cli.run("login", "bob"))[0] == 0
    await server.stop()
    proc = await cli.start("listen")
    try:
        await proc.wait_for(f"cannot connect to {server.host}:{server.port}", stderr=True)
        assert proc.proc.returncode is None
        await server.start()  # same port and database
        await proc.wait_for("listening as bob", stderr=True)
        async with client(server, "alice") as alice:
            await alice.send("bob", "you are back")
        await proc.wait_for("alice -> bob: you are back")
        assert await proc.interrupt() == 0
    finally:
        await proc.kill()
    assert any("retrying in" in line for line in proc.err), proc.err


async def test_refusals_name_their_subject_and_wait(server: RunningServer, tmp_path: Path) -> None:
    await users(server, "alice")
    cli = cli_for(server, tmp_path)
    assert (await cli.run("login", "alice"))[0] == 0
    code, _, err = await cli.run("block", "mallory")
    assert code == 1 and "UNKNOWN_USER" in err and "mallory" in err, err
    code, _, err = await cli.run("send", "mallory", "hi")
    assert code == 1 and "mallory" in err, err
    code, _, err = await cli.run("group", "info", "4242")
    assert code == 1 and "#4242" in err, err
    for _ in range(40):  # wrong passwords until the server throttles (limits may change)
        code, _, err = await cli.run("login", "alice", "--password", "wrong password")
        assert code == 1, err
        if "THROTTLED" in err:
            break
    assert "THROTTLED" in err and "try again in" in err, err


async def test_rate_limited_send_shows_its_wait(tmp_path: Path) -> None:
    """A send refused for longer than the command's timeout says how long to wait, instead
    of retrying silently until "timed out"."""
    async with run_server(tmp_path, send_rate=0.01, send_burst=1.0) as srv:
        await users(srv, "alice", "bob")
        cli = cli_for(srv, tmp_path)
        assert (await cli.run("login", "alice"))[0] == 0
        code, _, err = await cli.run("send", "bob", "first")
        assert code == 0, err
        code, _, err = await cli.run("send", "--timeout", "5", "bob", "second")
        assert code == 1 and "RATE_LIMITED" in err, err
        wait = re.search(r"try again in (\d+) s", err)
        assert wait is not None and 90 <= int(wait.group(1)) <= 100, err
