"""Bots: SPEC section 26 (bot accounts and tokens, commands, privacy mode in groups,
buttons, callbacks and edits), over raw frames."""

from __future__ import annotations

from typing import Any

from . import wire
from .checks_social import befriend
from .registry import (
    Context,
    Fail,
    Session,
    check,
    expect,
    expect_closed,
    expect_error,
    expect_type,
    send,
    sync_all,
)

BUTTONS = {"buttons": [[{"text": "Yes", "data": "yes"}, {"text": "No", "data": "no"}]]}


def _bot_name(ctx: Context) -> str:
    return ctx.name("b")[:28] + "bot"


async def _bot(ctx: Context, owner: Session) -> tuple[str, str]:
    """A new bot of owner's: (name, token)."""
    name = _bot_name(ctx)
    f = expect_type(await owner.req(wire.BOT_CREATE, {"name": name}), wire.BOT_INFO, "BOT_CREATE")
    token = f.payload.get("token")
    expect(isinstance(token, str) and len(token) > 0, f"BOT_INFO without a token: {f}")
    expect(f.payload.get("owner") == owner.user, f"BOT_INFO owner: {f}")
    assert isinstance(token, str)
    return name, token


async def _as_bot(ctx: Context, name: str, token: str) -> Session:
    """A connection authenticated with the bot token (AUTH, 7.4), synced so it is live."""
    conn = await ctx.anon()
    f = expect_type(await conn.request(wire.AUTH, {"token": token}), wire.AUTHENTICATED, "AUTH")
    expect(f.payload.get("user") == name, f"AUTH with a bot token is another user: {f}")
    s = Session(conn, name, "", str(f.payload.get("device")), token, int(f.payload["head"]))
    await sync_all(s)
    return s


async def _entry(s: Session, kind: int, what: str) -> dict[str, Any]:
    """The data of the next pushed update-log entry of `kind`."""
    while True:
        f = await s.conn.next(lambda f: f.type == wire.UPDATES and f.rid == 0, what)
        for u in f.payload.get("updates") or []:
            if isinstance(u, list) and len(u) == 3 and u[1] == kind and isinstance(u[2], dict):
                return u[2]


@check(section="26.1", title="BOT_CREATE answers BOT_INFO with a token that AUTH accepts")
async def bot_create_and_auth(ctx: Context) -> None:
    owner = await ctx.user()
    name, token = await _bot(ctx, owner)
    await _as_bot(ctx, name, token)
    f = expect_type(await owner.req(wire.LIST_BOTS, {}), wire.BOT_LIST, "LIST_BOTS")
    names = [b.get("name") for b in f.payload.get("bots") or [] if isinstance(b, dict)]
    expect(names == [name], f"BOT_LIST {f}")
    f = expect_type(await owner.req(wire.GET_PROFILE, {"user": name}), wire.PROFILE, "GET_PROFILE")
    expect(f.payload.get("bot") is True, f"PROFILE of a bot without bot true: {f}")


@check(section="26.1", title="a bot's name ends in 'bot' (2004); LOGIN never succeeds for a bot")
async def bot_name_and_no_password(ctx: Context) -> None:
    owner = await ctx.user()
    f = await owner.req(wire.BOT_CREATE, {"name": ctx.name("nb")})
    expect_error(f, wire.E_INVALID_USERNAME, "BOT_CREATE with a name not ending in bot")
    name, token = await _bot(ctx, owner)
    conn = await ctx.anon()
    for password in ("", token):
        f = await conn.request(wire.LOGIN, {"username": name, "password": password, "device": "x"})
        expect_error(f, wire.E_BAD_CREDENTIALS, "LOGIN as a bot")


@check(
    section="26.1",
    title="BOT_TOKEN rotates: the old token's connection is closed 4002 and AUTH refuses it",
)
async def bot_token_rotation(ctx: Context) -> None:
    owner = await ctx.user()
    name, token = await _bot(ctx, owner)
    old = await _as_bot(ctx, name, token)
    f = expect_type(await owner.req(wire.BOT_TOKEN, {"name": name}), wire.BOT_INFO, "BOT_TOKEN")
    fresh = f.payload.get("token")
    expect(isinstance(fresh, str) and fresh != token, f"BOT_TOKEN gave no new token: {f}")
    await expect_closed(old.conn, wire.C_LOGGED_OUT, "the rotated token's connection")
    conn = await ctx.anon()
    f = await conn.request(wire.AUTH, {"token": token})
    expect_error(f, wire.E_INVALID_TOKEN, "AUTH with the rotated token")
    await _as_bot(ctx, name, str(fresh))
    f = await (await ctx.user()).req(wire.BOT_TOKEN, {"name": name})
    expect_error(f, wire.E_UNKNOWN_BOT, "BOT_TOKEN of someone else's bot")


@check(section="26.1", title="BOT_DELETE: OK, the token is refused and the bot is not listed")
async def bot_delete(ctx: Context) -> None:
    owner = await ctx.user()
    name, token = await _bot(ctx, owner)
    live = await _as_bot(ctx, name, token)
    expect_type(await owner.req(wire.BOT_DELETE, {"name": name}), wire.OK, "BOT_DELETE")
    await expect_closed(live.conn, wire.C_LOGGED_OUT, "the deleted bot's connection")
    f = await (await ctx.anon()).request(wire.AUTH, {"token": token})
    expect_error(f, wire.E_INVALID_TOKEN, "AUTH of a deleted bot")
    f = expect_type(await owner.req(wire.LIST_BOTS, {}), wire.BOT_LIST, "LIST_BOTS")
    expect(f.payload.get("bots") == [], f"BOT_LIST after BOT_DELETE: {f}")


@check(section="26.2", title="SET_COMMANDS by the bot; GET_COMMANDS shows them to anyone")
async def bot_commands(ctx: Context) -> None:
    owner = await ctx.user()
    name, token = await _bot(ctx, owner)
    bot = await _as_bot(ctx, name, token)
    commands = [{"name": "help", "description": "what I do"}, {"name": "menu", "description": ""}]
    f = await bot.req(wire.SET_COMMANDS, {"commands": commands})
    expect_type(f, wire.OK, "SET_COMMANDS")
    stranger = await ctx.user()
    f = await stranger.req(wire.GET_COMMANDS, {"bot": name})
    expect_type(f, wire.COMMAND_LIST, "GET_COMMANDS")
    expect(f.payload.get("commands") == commands, f"COMMAND_LIST {f}")
    f = await stranger.req(wire.SET_COMMANDS, {"commands": commands})
    expect_error(f, wire.E_BOTS_ONLY, "SET_COMMANDS by a user who is not a bot")


@check(
    section="26.2",
    title="privacy mode: a bot in a group gets commands and mentions only, until GROUP_BOTS",
)
async def bot_privacy_mode(ctx: Context) -> None:
    owner, member = await ctx.user(), await ctx.user()
    await befriend(owner, member)
    name, token = await _bot(ctx, owner)
    f = await owner.req(wire.GROUP_CREATE, {"name": "Bots", "members": [member.user, name]})
    group = int(expect_type(f, wire.GROUP_INFO, "GROUP_CREATE").payload["group"])
    bot = await _as_bot(ctx, name, token)
    for text in ("plain", "/help", f"hi @{name}", "/start@someotherbot"):
        f = await member.req(wire.SEND, {"group": group, "cmid": ctx.cmid(), "text": text})
        expect_type(f, wire.SENT, "SEND to the group")
    got: list[str] = []
    while len(got) < 2:
        data = await _entry(bot, 1, "the bot's group messages")
        if "event" not in data:
            got.append(str(data.get("text")))
    expect(got == ["/help", f"hi @{name}"], f"a bot in privacy mode got {got}")
    f = await member.req(wire.GROUP_BOTS, {"group": group, "see_all": True})
    expect_error(f, wire.E_FORBIDDEN, "GROUP_BOTS by a plain member")
    expect_type(await owner.req(wire.GROUP_BOTS, {"group": group, "see_all": True}), wire.OK, "GB")
    await member.req(wire.SEND, {"group": group, "cmid": ctx.cmid(), "text": "plain again"})
    data = await _entry(bot, 1, "a plain message once bots see all")
    expect(data.get("text") == "plain again", f"after GROUP_BOTS see_all the bot got {data}")


@check(
    section="26.3",
    title="PRESS: PRESSED, a CALLBACK entry to the bot, its answer a CALLBACK_ANSWER entry",
)
async def bot_press_and_answer(ctx: Context) -> None:
    user = await ctx.user()
    name, token = await _bot(ctx, user)
    bot = await _as_bot(ctx, name, token)
    f = await user.req(wire.SEND, {"to": name, "cmid": ctx.cmid(), "text": "x", "meta": BUTTONS})
    expect_error(f, wire.E_BOTS_ONLY, "SEND with buttons by a user")
    sent = (await send(bot, user.user, "yes or no?", meta=BUTTONS)).payload
    f = await user.req(wire.PRESS, {"conv": sent["conv"], "pos": sent["pos"], "data": "maybe"})
    expect_error(f, wire.E_NO_SUCH_BUTTON, "PRESS of a button that is not there")
    f = await user.req(wire.PRESS, {"conv": sent["conv"], "pos": sent["pos"], "data": "yes"})
    callback = expect_type(f, wire.PRESSED, "PRESS").payload.get("callback")
    data = await _entry(bot, wire.U_CALLBACK, "the CALLBACK entry")
    want = {"callback": callback, "from": user.user, "conv": sent["conv"], "pos": sent["pos"]}
    expect({k: data.get(k) for k in want} == want and data.get("data") == "yes", f"{data}")
    f = await bot.req(wire.ANSWER_CALLBACK, {"callback": callback, "text": "noted"})
    expect_type(f, wire.OK, "ANSWER_CALLBACK")
    f = await bot.req(wire.ANSWER_CALLBACK, {"callback": callback, "text": "again"})
    expect_error(f, wire.E_UNKNOWN_CALLBACK, "a second ANSWER_CALLBACK")
    data = await _entry(user, wire.U_CALLBACK_ANSWER, "the CALLBACK_ANSWER entry")
    expect(data.get("text") == "noted" and data.get("bot") == name, f"{data}")


@check(section="26.3", title="BOT_EDIT: OK and a MESSAGE_EDITED entry to the participants")
async def bot_edit(ctx: Context) -> None:
    user = await ctx.user()
    name, token = await _bot(ctx, user)
    bot = await _as_bot(ctx, name, token)
    sent = (await send(bot, user.user, "v1", meta=BUTTONS)).payload
    f = await user.req(wire.BOT_EDIT, {"conv": sent["conv"], "pos": sent["pos"], "text": "mine"})
    expect_error(f, wire.E_BOTS_ONLY, "BOT_EDIT by a user")
    new_meta = {"buttons": [[{"text": "Again", "data": "again"}]]}
    f = await bot.req(
        wire.BOT_EDIT, {"conv": sent["conv"], "pos": sent["pos"], "text": "v2", "meta": new_meta}
    )
    expect_type(f, wire.OK, "BOT_EDIT")
    edited = 0
    for who in (user, bot):
        data = await _entry(who, wire.U_MESSAGE_EDITED, "the MESSAGE_EDITED entry")
        if (data.get("text"), data.get("meta"), data.get("pos")) != ("v2", new_meta, sent["pos"]):
            raise Fail(f"MESSAGE_EDITED {data}")
        edited = int(data.get("edited") or 0)
    expect(edited > 0, "MESSAGE_EDITED without `edited`")
    f = await user.req(wire.PRESS, {"conv": sent["conv"], "pos": sent["pos"], "data": "again"})
    expect_type(f, wire.PRESSED, "PRESS of a button the edit added")


@check(section="26.3", title="BOT_EDIT replaces the stored message: HISTORY shows it with `edited`")
async def bot_edit_is_stored(ctx: Context) -> None:
    user = await ctx.user()
    name, token = await _bot(ctx, user)
    bot = await _as_bot(ctx, name, token)
    sent = (await send(bot, user.user, "v1", meta=BUTTONS)).payload
    f = await bot.req(wire.BOT_EDIT, {"conv": sent["conv"], "pos": sent["pos"], "text": "v2"})
    expect_type(f, wire.OK, "BOT_EDIT")
    data = await _entry(user, wire.U_MESSAGE_EDITED, "the MESSAGE_EDITED entry")
    f = expect_type(
        await user.req(wire.HISTORY, {"with": name}), wire.HISTORY_PAGE, "HISTORY after BOT_EDIT"
    )
    msgs = [m for m in f.payload.get("messages") or [] if m.get("pos") == sent["pos"]]
    expect(len(msgs) == 1, f"HISTORY has no message at {sent['pos']}: {f}")
    m = msgs[0]
    expect(
        m.get("text") == "v2" and "meta" not in m and m.get("edited") == data.get("edited"),
        f"the stored message after BOT_EDIT (no meta: no buttons): {m}, edit {data}",
    )
    expect(m.get("id") == sent.get("id") and m.get("ts") == sent.get("ts"), f"{m} vs {sent}")
    f = await user.req(wire.PRESS, {"conv": sent["conv"], "pos": sent["pos"], "data": "yes"})
    expect_error(f, wire.E_NO_SUCH_BUTTON, "PRESS of a button the edit removed")


@check(section="26.3", title="PENDING_CALLBACKS lists unanswered presses until they are answered")
async def bot_pending_callbacks(ctx: Context) -> None:
    user = await ctx.user()
    name, token = await _bot(ctx, user)
    bot = await _as_bot(ctx, name, token)
    f = await user.req(wire.PENDING_CALLBACKS, {"limit": 10})
    expect_error(f, wire.E_BOTS_ONLY, "PENDING_CALLBACKS by a user")
    sent = (await send(bot, user.user, "yes or no?", meta=BUTTONS)).payload
    callbacks = []
    for data in ("yes", "no"):
        f = await user.req(wire.PRESS, {"conv": sent["conv"], "pos": sent["pos"], "data": data})
        callbacks.append(expect_type(f, wire.PRESSED, "PRESS").payload.get("callback"))

    async def pending(limit: int) -> tuple[list[Any], bool]:
        f = await bot.req(wire.PENDING_CALLBACKS, {"limit": limit})
        p = expect_type(f, wire.CALLBACK_LIST, "PENDING_CALLBACKS").payload
        return [c.get("callback") for c in p.get("callbacks") or []], bool(p.get("more"))

    expect(await pending(10) == (callbacks, False), f"pending: {await pending(10)}")
    expect(await pending(1) == (callbacks[:1], True), f"pending, limit 1: {await pending(1)}")
    f = await bot.req(wire.ANSWER_CALLBACK, {"callback": callbacks[0], "text": ""})
    expect_type(f, wire.OK, "ANSWER_CALLBACK")
    expect(await pending(10) == (callbacks[1:], False), "an answered press is still pending")


@check(
    section="26.1",
    title="BOT_DELETE takes the bot out of its groups ('left', deleted) and keeps its name",
)
async def bot_delete_leaves_groups(ctx: Context) -> None:
    owner = await ctx.user()
    member = await ctx.user()
    await befriend(owner, member)
    name, _token = await _bot(ctx, owner)
    f = await owner.req(wire.GROUP_CREATE, {"name": "Bots", "members": [member.user, name]})
    group = int(expect_type(f, wire.GROUP_INFO, "GROUP_CREATE").payload["group"])
    expect_type(await owner.req(wire.BOT_DELETE, {"name": name}), wire.OK, "BOT_DELETE")
    want = {"type": "left", "users": [name], "deleted": True}
    while True:
        data = await _entry(member, 1, "the group event of the deleted bot")
        event = data.get("event")
        if data.get("group") == group and isinstance(event, dict) and event.get("type") == "left":
            break
    expect(data["event"] == want and data.get("from") == name, f"the event: {data}")
    f = expect_type(await member.req(wire.GET_GROUP, {"group": group}), wire.GROUP_INFO, "GG")
    users = [m.get("user") for m in f.payload.get("members") or []]
    expect(name not in users, f"the deleted bot is still a member: {users}")
    conn = await ctx.anon()
    f = await conn.request(wire.REGISTER, {"username": name, "password": "a long password 1"})
    expect_error(f, wire.E_USERNAME_TAKEN, "REGISTER with a deleted bot's name (quarantine)")
