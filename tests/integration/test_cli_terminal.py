"""Terminal injection (issue 11, item 9), over a real socket.

The server refuses control characters in display names, statuses, group names and topics
(ERROR 1003 naming the field); message text may hold them, and the CLI prints it escaped,
with the further lines of a multi-line message indented, in `listen`, `history` and `chats`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cliproc import CLI
from liaotian.client import Client, ErrorCode, RequestError, register
from liaotian.server.testing import RunningServer, run_server

PASSWORD = "correct horse battery"
ATTACK = "hi\x1b[2J\x1b[31m\n[2026-12-03 07:34:00] carol -> bob: fake\u202e"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with run_server(tmp_path) as srv:
        yield srv


def client(srv: RunningServer, user: str) -> Client:
    return Client(srv.host, srv.port, username=user, password=PASSWORD, device="t")


@pytest.mark.parametrize(
    "bad", ["\x1b[2J", "a\nb", "\x9b", "\u202e", "\u200b", "\ufeff", "\x7f", "\u2028"]
)
async def test_server_refuses_control_characters_in_names(server: RunningServer, bad: str) -> None:
    for name in ("alice",):
        await register(server.host, server.port, name, PASSWORD)
    async with client(server, "alice") as alice:
        attempts = [
            ("display_name", alice.set_profile(display_name=f"Al{bad}ice")),
            ("status", alice.set_profile(status=f"on a {bad}train")),
            ("name", alice.create_group(f"te{bad}am", [])),
            ("topic", alice.create_group("team", [], topic=f"x{bad}")),
        ]
        for field, attempt in attempts:
            with pytest.raises(RequestError) as exc:
                await attempt
            assert exc.value.code == ErrorCode.INVALID_FIELD, field
            assert field in exc.value.message and "U+" in exc.value.message
        g = await alice.create_group("team", [], topic="fine topic é 😀")
        for change in ({"name": f"cr{bad}ew"}, {"topic": f"t{bad}"}):
            with pytest.raises(RequestError) as exc:
                await alice.update_group(g.group, **change)
            assert exc.value.code == ErrorCode.INVALID_FIELD
        # nothing was stored: the profile and the group are as they were
        assert (await alice.profile()).display_name == ""
        info = await alice.group_info(g.group)
        assert (info.name, info.topic) == ("team", "fine topic é 😀")
        await alice.set_profile(display_name="Alice 聊天", status="ok")


async def test_cli_prints_peer_text_escaped(server: RunningServer, tmp_path: Path) -> None:
    for name in ("alice", "bob"):
        await register(server.host, server.port, name, PASSWORD)
    cli = CLI(server.host, server.port, tmp_path / "home", LIAOTIAN_PASSWORD=PASSWORD)
    code, _, err = await cli.run("login", "bob")
    assert code == 0, err
    proc = await cli.start("listen")
    try:
        await proc.wait_for("listening as bob", stderr=True)
        async with client(server, "alice") as alice:
            await alice.send("bob", "before")
            await alice.send("bob", ATTACK)
        await proc.wait_for("carol -> bob: fake")
        assert await proc.interrupt() == 0
    finally:
        await proc.kill()
    code, history, err = await cli.run("history", "alice")
    assert code == 0, err
    code, chats, err = await cli.run("chats")
    assert code == 0, err
    for out in ("\n".join(proc.out), history, chats):
        assert "\x1b" not in out and "\u202e" not in out, out
        assert "\\x1b[2J\\x1b[31m" in out
        # the forged line is a continuation of alice's message, never a line of its own
        assert not any(
            line.startswith("[2026-12-03 07:34:00] carol") for line in out.splitlines()
        ), out
    assert any(line.endswith("] alice -> bob: hi\\x1b[2J\\x1b[31m") for line in proc.out)
    assert "    | [2026-12-03 07:34:00] carol -> bob: fake\\u202e" in proc.out
    assert "\\n[2026-12-03" in chats  # the one-line preview shows the line break
