"""README's library example and the example bots, each run twice in a row as documented
(issue 11, item 12): the first run creates the account, the second finds it taken and logs
in (or resumes with the saved token); neither may fail.

The README example is taken from README.md's "The client library" section as written; the
only change is the port (7420 becomes the test server's). It stops when it receives "bye".
The bots get the server's address from LIAOTIAN_HOST/LIAOTIAN_PORT as their docstrings say
and stop by themselves with `--exit-after 1`; `-v` logs the line that says they are
connected (so the test knows when to talk to them).
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cliproc import CLI
from liaotian.client import Client, ContactEvent, MessageReceived, register
from liaotian.server.testing import RunningServer, run_server

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"
WAIT = 30.0


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with run_server(tmp_path) as srv:
        yield srv


def client(srv: RunningServer, user: str, password: str = PASSWORD) -> Client:
    return Client(srv.host, srv.port, username=user, password=password, device="t")


async def next_text(c: Client, pred: str) -> MessageReceived:
    async with asyncio.timeout(WAIT):
        async for event in c:
            if isinstance(event, MessageReceived) and pred in event.message.text:
                return event
    raise AssertionError("event stream ended")


async def accepted_by(c: Client, user: str) -> None:
    async with asyncio.timeout(WAIT):
        async for event in c:
            if isinstance(event, ContactEvent) and (event.event, event.user) == ("accepted", user):
                return
    raise AssertionError("event stream ended")


def readme_library_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## The client library") :]
    found = re.search(r"```python\n(.*?)```", section, flags=re.S)
    assert found is not None
    return found.group(1)


async def test_readme_library_example_runs_twice(server: RunningServer, tmp_path: Path) -> None:
    code = readme_library_example()
    assert code.count("7420") == 2
    script = tmp_path / "home" / "example.py"
    cli = CLI(server.host, server.port, tmp_path / "home")
    script.write_text(code.replace("7420", str(server.port)), encoding="utf-8")
    await register(server.host, server.port, "bob", PASSWORD)
    async with client(server, "bob") as bob:
        for run in range(2):
            proc = await cli.start(str(script), argv0=[sys.executable])
            try:
                await proc.wait_for("stored as")
                got = await next_text(bob, "hello")
                assert got.message.sender == "alice"
                await bob.send("alice", f"run {run}")
                await bob.send("alice", "bye")
                assert await proc.finish() == 0, (proc.out, proc.err)
            finally:
                await proc.kill()
            # each message once: the earlier run's "bye" is not shown again
            assert proc.out[1:] == [f"bob : run {run}", "bob : bye"], proc.out
            assert not proc.err, proc.err


async def test_group_greeter_runs_twice_as_documented(
    server: RunningServer, tmp_path: Path
) -> None:
    for name in ("alice", "carol"):
        await register(server.host, server.port, name, PASSWORD)
    cli = CLI(server.host, server.port, tmp_path / "home", LIAOTIAN_PASSWORD="greeter pass")
    argv0 = [sys.executable, str(ROOT / "examples" / "group_greeter.py")]
    async with client(server, "carol") as carol:  # carol lets anyone add her to groups
        await carol.set_privacy(groups="everyone")
    async with client(server, "alice") as alice:
        # as the docstring says: a contact request (the bot accepts it), then the group
        proc = await cli.start("--user", "greeter", "--exit-after", "2", "-v", argv0=argv0)
        try:
            await proc.wait_for("connected to", stderr=True)
            await alice.contact_request("greeter")
            await accepted_by(alice, "greeter")
            g = (await alice.create_group("team", ["greeter"])).group
            await alice.add_members(g, ["carol"])
            await next_text(alice, "welcome, carol!")
            assert await proc.finish() == 0, (proc.out, proc.err)
        finally:
            await proc.kill()
        proc = await cli.start("--user", "greeter", "--exit-after", "1", "-v", argv0=argv0)
        try:
            await proc.wait_for("connected to", stderr=True)
            await alice.send_group(g, "/who")
            got = await next_text(alice, "members: ")
            assert "greeter (member)" in got.message.text
            assert await proc.finish() == 0, (proc.out, proc.err)
        finally:
            await proc.kill()


async def test_echo_bot_runs_twice_as_documented(server: RunningServer, tmp_path: Path) -> None:
    await register(server.host, server.port, "alice", PASSWORD)
    cli = CLI(server.host, server.port, tmp_path / "home", LIAOTIAN_PASSWORD="echo pass 1")
    argv0 = [sys.executable, str(ROOT / "examples" / "echo_bot.py")]
    async with client(server, "alice") as alice:
        for run in range(2):
            proc = await cli.start(
                "--user", "echo", "--register", "--exit-after", "1", "-v", argv0=argv0
            )
            try:
                await proc.wait_for("connected to", stderr=True)
                await alice.send("echo", f"hello {run}")
                await next_text(alice, f"echo: hello {run}")
                assert await proc.finish() == 0, (proc.out, proc.err)
            finally:
                await proc.kill()
