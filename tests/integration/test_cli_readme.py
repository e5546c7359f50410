"""README.md's "Chat from two terminals" section, run as written (issue 11, items 8 and 10).

Every line of the section's ```sh blocks that starts with `liaotian ` is parsed from
README.md (commands joined by ` ; ` are split) and run, in order, as a real process
against a real server (port 0, its own database), with a temporary HOME (so sessions live
in the default place, one machine for both "terminals") and the password in
LIAOTIAN_PASSWORD. Each must exit 0; `listen` runs until its expected line appears and is
then stopped with SIGINT, as Ctrl-C would. What the walkthrough promises is checked too:
bob's `listen` shows "hello bob" (which arrived before bob's device first logged in).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cliproc import CLI
from liaotian.server.testing import RunningServer, run_server

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## Chat from two terminals"


def readme_commands(text: str) -> list[list[str]]:
    """The `liaotian` command lines of the section's shell blocks, as argument lists."""
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    section = text[start : end if end >= 0 else len(text)]
    commands: list[list[str]] = []
    for block in re.findall(r"```sh\n(.*?)```", section, flags=re.S):
        for line in block.splitlines():
            if not line.startswith("liaotian "):
                continue
            lexer = shlex.shlex(line, posix=True, punctuation_chars=";")
            lexer.whitespace_split = True
            lexer.commenters = "#"
            current: list[str] = []
            for token in lexer:
                if token == ";":
                    commands.append(current)
                    current = []
                else:
                    current.append(token)
            if current:
                commands.append(current)
    return commands


def test_readme_commands_are_parsed() -> None:
    commands = readme_commands(README.read_text(encoding="utf-8"))
    assert ["liaotian", "login", "bob"] in commands
    assert ["liaotian", "listen"] in commands
    assert ["liaotian", "profile", "set", "--name", "Alice", "--status", "on a train"] in commands
    assert all(c[0] == "liaotian" for c in commands)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with run_server(tmp_path) as srv:
        yield srv


# What a command's output must show (a substring of stdout), by its arguments.
EXPECTED = {
    ("history", "alice"): "alice -> bob: hello bob",
    ("group", "create"): 'created group #2 "trip"',
    ("chats",): "trip (group)",
    ("contacts",): "contacts: bob, carol",
    ("privacy",): "presence: contacts",
    ("switch", "alice"): "alice is now the current session",
    ("channel", "create"): 'created channel #3 "forum"',
    ("channel", "join"): "rules: be kind",
    ("channel", "search"): "#1 ",
    ("channel", "list"): "1 unread",
    ("channel", "read"): "alice: welcome all",
}


async def test_readme_walkthrough_runs_as_written(server: RunningServer, tmp_path: Path) -> None:
    commands = readme_commands(README.read_text(encoding="utf-8"))
    assert len(commands) >= 10
    cli = CLI(
        server.host, server.port, tmp_path / "home", LIAOTIAN_PASSWORD="correct horse battery"
    )
    listened = False
    for command in commands:
        args = command[1:]
        if args[0] == "listen":
            proc = await cli.start(*args)
            try:
                line = await proc.wait_for("hello bob")
                assert line.endswith("] alice -> bob: hello bob"), line
                assert await proc.interrupt() == 0, (proc.out, proc.err)
            finally:
                await proc.kill()
            assert any("listening as bob" in e for e in proc.err), proc.err
            listened = True
            continue
        code, out, err = await cli.run(*args)
        assert code == 0, f"{' '.join(command)} exited {code}: {out} {err}"
        for key, text in EXPECTED.items():
            if tuple(args[: len(key)]) == key:
                assert text in out, f"{' '.join(command)}: {text!r} not in {out!r}"
    assert listened
    # The commands after `switch alice` ran as alice: her profile and block list say so.
    code, out, err = await cli.run("profile")
    assert code == 0 and "user:   alice" in out and "name:   Alice" in out, (out, err)
    code, out, err = await cli.run("contacts")
    assert code == 0 and "blocked: mallory" in out, (out, err)
