"""Channel administration against a real server: `max_channel_members` (GROUP_FULL with
its limit), ownership transfer, the paged member list (admins only), and posts and
comments completing the wallet's "forum" tasks."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from liaotian.client import ChannelChanged, Client, WalletChanged, register
from liaotian.protocol import ErrorCode, RequestError
from liaotian.server.testing import RunningServer, run_server

PASSWORD = "correct horse battery"
WAIT = 30.0
FORUM_TASKS = json.dumps(
    [{"name": "forum_day", "trigger": "forum", "reward": 7, "period": 86_400, "cap": 2}]
)


def client(srv: RunningServer, user: str, device: str = "d") -> Client:
    return Client(srv.host, srv.port, username=user, password=PASSWORD, device=device)


async def test_full_channel_transfer_and_member_pages(tmp_path: Path) -> None:
    names = ("alice", "bob", "carol", "dave")
    async with run_server(tmp_path, max_channel_members=3) as srv:
        for name in names:
            await register(srv.host, srv.port, name, PASSWORD)
        async with (
            client(srv, "alice") as alice,
            client(srv, "bob") as bob,
            client(srv, "carol") as carol,
            client(srv, "dave") as dave,
        ):
            ch = (await alice.channels.create("club")).channel
            await bob.channels.join(ch)
            await carol.channels.join(ch)
            with pytest.raises(RequestError) as exc:
                await dave.channels.join(ch)
            assert exc.value.code == ErrorCode.GROUP_FULL
            assert exc.value.data == {"limit": "max_channel_members", "max": 3}
            # the member list: admins only, paged
            with pytest.raises(RequestError) as exc:
                await bob.channels.members_page(ch)
            assert exc.value.code == ErrorCode.FORBIDDEN
            first = await alice.channels.members_page(ch, limit=2)
            assert len(first.members) == 2 and first.next is not None
            rest = await alice.channels.members_page(ch, after=first.next, limit=2)
            assert len(rest.members) == 1 and rest.next is None
            everyone = {(m.user, m.role) async for m in alice.channels.members(ch, page_size=1)}
            assert everyone == {("alice", "owner"), ("bob", "member"), ("carol", "member")}
            # ownership: only the owner hands it over, to a member
            with pytest.raises(RequestError) as exc:
                await bob.channels.transfer(ch, "carol")
            assert exc.value.code == ErrorCode.FORBIDDEN
            with pytest.raises(RequestError) as exc:
                await alice.channels.transfer(ch, "dave")
            assert exc.value.code == ErrorCode.CONFLICT
            await alice.channels.transfer(ch, "bob")
            info = await bob.channels.info(ch)
            assert info.owner == "bob" and info.role == "owner"
            assert (await alice.channels.info(ch)).role == "admin"
            async with asyncio.timeout(WAIT):
                async for event in bob:
                    if isinstance(event, ChannelChanged) and event.event == "owner":
                        assert event.channel == ch
                        break
            await alice.channels.leave(ch)  # no longer the owner: she may leave
            await dave.channels.join(ch)  # and there is room again
            assert (await bob.channels.info(ch)).members == 3


async def test_posts_and_comments_complete_forum_tasks(tmp_path: Path) -> None:
    async with run_server(tmp_path, wallet_tasks=FORUM_TASKS) as srv:
        for name in ("alice", "bob"):
            await register(srv.host, srv.port, name, PASSWORD)
        async with client(srv, "alice") as alice, client(srv, "bob") as bob:
            ch = (await alice.channels.create("forum", members_post=True)).channel
            await bob.channels.join(ch)
            post = await bob.channels.post(ch, "first", cmid="p1")
            again = await bob.channels.post(ch, "first", cmid="p1")  # a retry pays nothing
            assert again.duplicate
            await bob.channels.comment(ch, post.pos, "and a comment")
            await bob.channels.comment(ch, post.pos, "beyond the cap")
            assert (await bob.wallet()).balance == 14  # two completions of 7, cap 2
            tasks = {t.name: t for t in await bob.wallet.tasks()}
            assert tasks["forum_day"].trigger == "forum" and tasks["forum_day"].done == 2
            got = []
            async with asyncio.timeout(WAIT):
                async for event in bob:
                    if isinstance(event, WalletChanged):
                        got.append(event.balance)
                        if len(got) == 2:
                            break
            assert got == [7, 14]
            assert (await alice.wallet()).balance == 0


async def test_the_writer_forgets_channel_rows_beyond_its_bound(tmp_path: Path) -> None:
    """With the channel cache bounded at a few rows, every batch finds it trimmed and loads
    the rows it needs again: the outcome is the same (positions, counts, roles, slow mode)."""
    async with run_server(tmp_path) as srv:
        assert srv.server is not None
        cache = srv.server.store.cache  # type: ignore[attr-defined]
        cache.channel_max = 4
        for name in ("alice", "bob", "carol"):
            await register(srv.host, srv.port, name, PASSWORD)
        async with (
            client(srv, "alice") as alice,
            client(srv, "bob") as bob,
            client(srv, "carol") as carol,
        ):
            ch = (await alice.channels.create("big", members_post=True)).channel
            await bob.channels.join(ch)
            await carol.channels.join(ch)
            for i in range(1, 6):
                who = (alice, bob, carol)[i % 3]
                assert (await who.channels.post(ch, f"post {i}", cmid=f"c{i}")).pos == i
                assert await bob.channels.like(ch, i) == 1
                assert await carol.channels.like(ch, i) == 2
                assert (await carol.channels.comment(ch, i, "yes")).n == 1
            dup = await alice.channels.post(ch, "post 1", cmid="c1")
            assert not dup.duplicate and dup.pos == 6  # c1 was bob's, not alice's
            again = await alice.channels.post(ch, "post 3", cmid="c3")
            assert again.duplicate and again.pos == 3
            page = await alice.channels.fetch(ch, after=0)
            assert [(p.likes, p.comments) for p in page.posts[:5]] == [(2, 1)] * 5
            info = await alice.channels.info(ch)
            assert info.members == 3 and info.pos == 6
            assert cache.channel_trims > 5
