"""The bots' part of the store contract (SPEC.md 26), one suite for SQLite and memory:
bot rows and their token device, commands, open groups, edits, and the two things the
rules do with a store: a group send that skips bots in privacy mode, and BotNotice."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import msgpack
import pytest
from liaotian.protocol import UpdateKind
from liaotian.server.chat.model import BotView
from liaotian.server.chat.ops import BotNotice, SetPrivacy
from liaotian.server.store import Store, UsernameTaken
from liaotian.server.store.contract import BOT_DEVICE, BOT_PASSWORD_HASH
from test_contract import Driver, make_store


@pytest.fixture(params=["sqlite", "memory", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async with AsyncExitStack() as stack:
        s = await make_store(request.param, tmp_path / "bots.db", stack)
        await s.open()
        try:
            yield s
        finally:
            await s.close()


async def test_a_bot_is_a_user_with_a_token_device_and_an_owner(store: Store) -> None:
    d = Driver(store)
    (ann,) = await d.users("ann")
    uid = await store.create_bot("helpbot", ann, b"h" * 32)
    user = await store.user_by_name("helpbot")
    assert user is not None and user.id == uid and user.password_hash == BOT_PASSWORD_HASH
    found = await store.device_by_token(b"h" * 32)
    assert found is not None and found[1].device == BOT_DEVICE and found[0].id == uid
    bot = await store.bot_by_id(uid)
    assert bot is not None and (bot.name, bot.owner, bot.commands) == ("helpbot", ann, ())
    assert [b.name for b in await store.bots_of(ann)] == ["helpbot"]
    assert [b.id for b in await store.all_bots()] == [uid]
    with pytest.raises(UsernameTaken):
        await store.create_bot("helpbot", ann, b"x" * 32)
    with pytest.raises(UsernameTaken):
        await store.create_bot("ann", ann, b"y" * 32)
    assert await store.bot_by_id(ann) is None


async def test_commands_rotation_and_deletion(store: Store) -> None:
    d = Driver(store)
    (ann,) = await d.users("ann")
    uid = await store.create_bot("helpbot", ann, b"1" * 32)
    await store.set_bot_commands(uid, (("help", "what I do"), ("ask", "")))
    bot = await store.bot_by_id(uid)
    assert bot is not None and bot.commands == (("help", "what I do"), ("ask", ""))
    await store.set_device_token(uid, BOT_DEVICE, b"2" * 32)  # rotation
    assert await store.device_by_token(b"1" * 32) is None
    assert await store.device_by_token(b"2" * 32) is not None
    assert await store.delete_bot(uid)
    assert not await store.delete_bot(uid)
    assert await store.device_by_token(b"2" * 32) is None
    assert await store.bot_by_id(uid) is None and await store.bots_of(ann) == []
    assert await store.user_id("helpbot") == uid  # the name stays taken


async def test_open_groups_and_edits(store: Store) -> None:
    await store.set_group_bots(7, True)
    await store.set_group_bots(8, True)
    await store.set_group_bots(8, False)
    assert await store.bot_open_groups() == {7}
    assert await store.bot_edit(7, 1) is None
    await store.set_bot_edit(7, 1, "v1", b"\x80")
    await store.set_bot_edit(7, 1, "v2", b"\x81\xa1a\x01")
    assert await store.bot_edit(7, 1) == ("v2", b"\x81\xa1a\x01")


async def test_a_group_send_skips_bots_in_privacy_mode(store: Store) -> None:
    d = Driver(store)
    ann, _bob = await d.users("ann", "bob")
    bot = await store.create_bot("helpbot", ann, b"t" * 32)
    d.ids["helpbot"] = bot
    await d.one(SetPrivacy(actor=bot, groups="everyone"))  # as the handler does
    g = await d.group("ann", "bob", "helpbot")
    view = BotView(names={bot: "helpbot"})
    for text in ("hello all", "/help", "hi @helpbot", "/start@otherbot", "/ask@helpbot x"):
        s = d.send("ann", group=g, text=text)
        s.bots = view
        assert (await d.one(s)).error is None
    assert (await d.texts("bob"))[-5:] == [
        "hello all",
        "/help",
        "hi @helpbot",
        "/start@otherbot",
        "/ask@helpbot x",
    ]
    seen = [t for t in await d.texts("helpbot") if not t.startswith("group")]
    assert seen[-3:] == ["/help", "hi @helpbot", "/ask@helpbot x"]
    assert "hello all" not in seen
    view.open_groups.add(g)
    s = d.send("ann", group=g, text="now everything")
    s.bots = view
    await d.one(s)
    assert (await d.texts("helpbot"))[-1] == "now everything"


async def test_a_bot_notice_is_one_log_entry_per_user(store: Store) -> None:
    d = Driver(store)
    ann, bob = await d.users("ann", "bob")
    data = msgpack.packb({"callback": 1, "data": "x"})
    op = await d.one(BotNotice(actor=ann, users=(ann, bob), kind=UpdateKind.CALLBACK, data=data))
    assert op.error is None and len(op.seqs) == 2
    for name in ("ann", "bob"):
        entries = [e for e in await d.log(name) if e[1] == UpdateKind.CALLBACK]
        assert [e[2] for e in entries] == [{"callback": 1, "data": "x"}]
