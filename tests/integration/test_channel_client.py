"""Channels through the client library (`client.channels`) and the `liaotian channel` CLI,
against a real server: the issue's "done when" (a user creates a channel from the CLI, three
users join, post, comment, like and search), the news events, the chat list's unread
counts, and peer text printed safely."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cliproc import CLI
from liaotian.client import (
    CaughtUp,
    ChannelChanged,
    ChannelNewsEvent,
    Client,
    register,
)
from liaotian.client.channels import invite_link, parse_link
from liaotian.protocol import ErrorCode, RequestError
from liaotian.server.testing import RunningServer, run_server

PASSWORD = "correct horse battery"
WAIT = 30.0


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    (tmp_path / "db").mkdir()
    async with run_server(tmp_path / "db") as srv:
        yield srv


def client(srv: RunningServer, user: str, device: str) -> Client:
    return Client(srv.host, srv.port, username=user, password=PASSWORD, device=device)


async def caught_up(c: Client) -> None:
    async with asyncio.timeout(WAIT):
        async for event in c:
            if isinstance(event, CaughtUp):
                return


async def test_cli_create_join_post_comment_like_search(
    server: RunningServer, tmp_path: Path
) -> None:
    users = ("alice", "bob", "carol", "dave")
    for name in users:
        await register(server.host, server.port, name, PASSWORD)
    cli = {
        name: CLI(server.host, server.port, tmp_path / name, LIAOTIAN_PASSWORD=PASSWORD)
        for name in users
    }

    async def run(name: str, *args: str) -> str:
        code, out, err = await cli[name].run(*args)
        assert code == 0, (name, args, out, err)
        return out

    for name in users:
        await run(name, "login", name, "--device", "cli")
    out = await run(
        "alice", "channel", "create", "forum", "--members-post", "--closed", "--rules", "be kind"
    )
    link = re.search(r"link: (\S+)", out).group(1)  # type: ignore[union-attr]
    parsed = parse_link(link)
    assert parsed is not None and parsed[1], link
    for name in ("bob", "carol", "dave"):
        out = await run(name, "channel", "join", link)
        assert "joined channel #" in out and '"forum"' in out and "rules: be kind" in out, out
    out = await run("alice", "channel", "info", "forum")
    assert "4 members" in out and "invite: liaotian:channel/" in out, out
    out = await run("alice", "channel", "post", "forum", "welcome to the forum")
    assert "posted #1" in out, out
    for i, name in enumerate(("bob", "carol", "dave"), start=2):
        out = await run(name, "channel", "post", "forum", f"hello from {name}")
        assert f"posted #{i}" in out, out
    out = await run("bob", "channel", "comment", "forum", "1", "thanks alice, great forum")
    assert "commented #1.1" in out, out
    for name in ("bob", "carol", "dave"):
        out = await run(name, "channel", "like", "forum", "1")
    assert "post #1: 3 likes" in out, out
    out = await run("dave", "channel", "like", "forum", "1", "--undo")
    assert "post #1: 2 likes" in out, out
    out = await run("carol", "channel", "search", "forum", "forum")
    lines = out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("#1.1 ") and "bob: thanks" in lines[0], out
    assert lines[1].startswith("#1 ") and "alice: welcome" in lines[1], out
    out = await run("carol", "channel", "posts", "forum")
    assert "[2 likes, 1 comments, liked]" in out and "hello from dave" in out, out
    # alice has read her own post only: three unread, shown beside her chats
    out = await run("alice", "channel", "list")
    assert re.search(r"forum\s+3 unread", out), out
    out = await run("alice", "chats")
    assert "forum (channel)" in out and "3 unread" in out, out
    out = await run("alice", "channel", "read", "forum")
    assert "hello from bob" in out and "read up to #4" in out, out
    out = await run("alice", "channel", "list")
    assert re.search(r"forum\s+read", out), out
    # moderation from the CLI
    await run("alice", "channel", "ban", "forum", "dave")
    code, _out, err = await cli["dave"].run("channel", "post", "forum", "still here?")
    assert code != 0 and "no channel named" in err, err
    await run("alice", "channel", "delete", "forum", "2")
    out = await run("carol", "channel", "search", "forum", "hello")
    assert "bob" not in out and "carol" in out, out


async def test_cli_prints_peer_text_safely(server: RunningServer, tmp_path: Path) -> None:
    for name in ("alice", "bob"):
        await register(server.host, server.port, name, PASSWORD)
    async with client(server, "alice", "lib") as alice:
        info = await alice.channels.create("news", members_post=True)
        await alice.channels.post(info.channel, "evil \x1b[2J\u202e text\nsecond line")
    cli = CLI(server.host, server.port, tmp_path / "bob", LIAOTIAN_PASSWORD=PASSWORD)
    assert (await cli.run("login", "bob", "--device", "cli"))[0] == 0
    code, out, err = await cli.run("channel", "join", "NEWS")  # open: found by its name
    assert code == 0 and f"joined channel #{info.channel}" in out, (out, err)
    code, out, err = await cli.run("channel", "posts", "news")
    assert code == 0, err
    assert "\x1b" not in out and "\u202e" not in out and "\\x1b[2J" in out, out
    assert "\n    | second line" in out, out


async def test_library_news_events_changes_and_chat_list(server: RunningServer) -> None:
    for name in ("alice", "bob"):
        await register(server.host, server.port, name, PASSWORD)
    async with client(server, "alice", "a1") as alice, client(server, "bob", "b1") as bob:
        await caught_up(alice)
        await caught_up(bob)
        info = await alice.channels.create("news", open=False, rules="no spam")
        assert info.invite and info.role == "owner"
        with pytest.raises(RequestError) as exc:
            await bob.channels.join(info.channel)
        assert exc.value.code == ErrorCode.INVALID_INVITE
        assert await bob.channels.find("news") == []  # not open: never listed
        joined = await bob.channels.join(invite_link(info.channel, info.invite))
        assert joined.rules == "no spam" and joined.members == 2 and joined.invite is None
        assert await bob.channels.resolve("news") == info.channel
        with pytest.raises(RequestError) as exc:
            await bob.channels.post(info.channel, "members may not post")
        assert exc.value.code == ErrorCode.FORBIDDEN
        posted = [await alice.channels.post(info.channel, f"post {i}") for i in range(1, 4)]
        assert [p.pos for p in posted] == [1, 2, 3]
        again = await alice.channels.post(info.channel, "post 3", cmid="fixed")
        dup = await alice.channels.post(info.channel, "post 3", cmid="fixed")
        assert dup.duplicate and dup.pos == again.pos == 4
        # bob: joined as a log event, news as a push, then the posts by catching up
        news_pos = 0
        changed: list[ChannelChanged] = []
        async with asyncio.timeout(WAIT):
            async for event in bob:
                if isinstance(event, ChannelChanged):
                    changed.append(event)
                elif isinstance(event, ChannelNewsEvent):
                    assert event.channel == info.channel
                    news_pos = event.pos
                if news_pos == 4 and changed:
                    break
        assert changed[0].event and changed[0].channel == info.channel
        texts = [p.text async for p in bob.channels.catch_up(info.channel, 0, page_size=2)]
        assert texts == ["post 1", "post 2", "post 3", "post 3"]
        mine = await bob.channels.list()
        assert [(c.name, c.unread) for c in mine] == [("news", 4)]
        page = await bob.conversations(channels=True)
        assert [c.kind for c in page.conversations] == ["channel"]
        await bob.channels.read(info.channel, 4)
        assert (await bob.channels()).pop().unread == 0
        assert await bob.channels.like(info.channel, 1) == 1
        assert await bob.channels.like(info.channel, 1) == 1
        c = await bob.channels.comment(info.channel, 1, "first comment")
        assert c.n == 1
        comments = await alice.channels.comments(info.channel, 1)
        assert [x.text for x in comments.comments] == ["first comment"]
        await alice.channels.pin(info.channel, 1)
        assert (await bob.channels.info(info.channel)).pins == (1,)
        await alice.channels.set_role(info.channel, "bob", "admin")
        await bob.channels.delete(info.channel, 2)
        assert [h.post for h in await alice.channels.search(info.channel, "post")] == [4, 3, 1]
        await bob.channels.leave(info.channel)
        assert await bob.channels.list() == []
