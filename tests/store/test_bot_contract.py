"""The bots' part of the store contract (SPEC.md 26), one suite for SQLite and memory:
bot rows and their token device, commands, open groups, edits, and the two things the
rules do with a store: a group send that skips bots in privacy mode, BotNotice with its
pending callbacks, and EditMessage replacing the stored message."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import msgpack
import pytest
from liaotian.protocol import UpdateKind
from liaotian.server.chat.bot_ops import BotNotice, EditMessage
from liaotian.server.chat.model import BotView
from liaotian.server.chat.ops import SetPrivacy
from liaotian.server.store import Store, UsernameTaken
from liaotian.server.store.contract import BOT_DEVICE, BOT_PASSWORD_HASH
from liaotian.server.store.sqlite import SQLiteStore
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
    assert await store.all_bots() == []
    assert await store.user_id("helpbot") == uid  # the name stays taken: quarantine
    with pytest.raises(UsernameTaken):
        await store.create_user("helpbot", "hash")
    assert await store.free_bot_names(0) == []  # deleted after 0: still in quarantine
    assert await store.free_bot_names(2**62) == ["helpbot"]
    assert await store.free_bot_names(2**62) == []  # once
    assert await store.user_id("helpbot") is None
    assert (await store.usernames([uid]))[uid] == f"#deleted{uid}"
    again = await store.create_user("helpbot", "hash")  # registered by someone else
    assert again != uid and await store.user_id("helpbot") == again
    assert await store.bot_by_id(uid) is None


async def test_open_groups(store: Store) -> None:
    await store.set_group_bots(7, True)
    await store.set_group_bots(8, True)
    await store.set_group_bots(8, False)
    assert await store.bot_open_groups() == {7}


async def test_an_edit_replaces_the_stored_message_for_history_and_sync(store: Store) -> None:
    d = Driver(store)
    ann, bob = await d.users("ann", "bob")
    bot = await store.create_bot("helpbot", ann, b"t" * 32)
    d.ids["helpbot"] = bot
    await d.one(SetPrivacy(actor=bot, groups="everyone"))
    g = await d.group("ann", "bob", "helpbot")
    sent = await d.one(d.send("helpbot", group=g, text="pick"))
    assert sent.error is None
    bodies, _ = await store.history(g, None, None, 10)
    original = msgpack.unpackb(bodies[-1])
    buttons = {"buttons": [[{"text": "B", "data": "b"}]]}
    op = await d.one(
        EditMessage(actor=bot, message=original, text="picked", meta=buttons, users=(ann, bob, bot))
    )
    assert op.error is None and len(op.seqs) == 3
    bodies, _ = await store.history(g, None, None, 10)
    m = msgpack.unpackb(bodies[-1])
    assert m["text"] == "picked" and m["meta"] == buttons and m["edited"] > 0
    assert (m["id"], m["pos"], m["ts"]) == (original["id"], original["pos"], original["ts"])
    # a device syncing from before the message sees the message as edited, then the edit
    for name in ("ann", "bob"):
        log = await d.log(name)
        msgs = [x for _s, k, x in log if k == UpdateKind.MESSAGE and x.get("id") == m["id"]]
        assert msgs == [m]
        edits = [x for _s, k, x in log if k == UpdateKind.MESSAGE_EDITED]
        assert [(e["pos"], e["text"], e["edited"]) for e in edits] == [
            (m["pos"], "picked", m["edited"])
        ]


async def test_callbacks_are_kept_until_answered_swept_and_bounded(store: Store) -> None:
    d = Driver(store)
    ann, bob = await d.users("ann", "bob")
    bot = await store.create_bot("helpbot", ann, b"t" * 32)

    async def press(cid: int, who: int) -> None:
        entry = msgpack.packb({"callback": cid, "from": "ann", "conv": 1, "pos": 2, "data": "x"})
        op = BotNotice(actor=who, users=(bot,), kind=UpdateKind.CALLBACK, data=entry, callback=cid)
        op.press_conv, op.press_pos = 1, 2
        assert (await d.one(op)).error is None

    for cid in (11, 12, 13):
        await press(cid, ann if cid != 12 else bob)
    cb = await store.bot_callback(12)
    assert cb is not None and (cb.bot, cb.presser, cb.conv) == (bot, bob, 1)
    assert msgpack.unpackb(cb.entry)["callback"] == 12
    assert [c.id for c in await store.bot_callbacks(bot, 10)] == [11, 12, 13]
    assert [c.id for c in await store.bot_callbacks(bot, 2)] == [11, 12]
    answer = BotNotice(
        actor=bot, users=(bob,), kind=UpdateKind.CALLBACK_ANSWER, data=b"\x80", answers=12
    )
    assert (await d.one(answer)).error is None
    assert await store.bot_callback(12) is None
    assert await store.sweep_callbacks(0, 1) == 1  # nothing expired; 11 is beyond the bound
    assert [c.id for c in await store.bot_callbacks(bot, 10)] == [13]
    assert await store.sweep_callbacks(cb.created + 10**9, 10) == 1  # expired
    assert await store.bot_callbacks(bot, 10) == []
    await press(14, ann)
    assert await store.delete_bot(bot)
    assert await store.bot_callback(14) is None  # a deleted bot's presses go with it


async def test_callbacks_and_edits_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "restart.db"
    store = SQLiteStore(str(path))
    await store.open()
    d = Driver(store)
    ann, bob = await d.users("ann", "bob")
    bot = await store.create_bot("helpbot", ann, b"t" * 32)
    d.ids["helpbot"] = bot
    sent = await d.one(d.send("helpbot", to="bob", text="menu"))
    bodies, _ = await store.history(sent.result.conv, None, None, 1)
    await d.one(
        EditMessage(
            actor=bot, message=msgpack.unpackb(bodies[0]), text="menu v2", meta={}, users=(bob,)
        )
    )
    entry = msgpack.packb({"callback": 5})
    await d.one(
        BotNotice(actor=bob, users=(bot,), kind=UpdateKind.CALLBACK, data=entry, callback=5)
    )
    await store.close()
    store = SQLiteStore(str(path))
    await store.open()
    try:
        bodies, _ = await store.history(sent.result.conv, None, None, 1)
        assert msgpack.unpackb(bodies[0])["text"] == "menu v2"
        cb = await store.bot_callback(5)
        assert cb is not None and cb.bot == bot and cb.presser == bob
    finally:
        await store.close()


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
