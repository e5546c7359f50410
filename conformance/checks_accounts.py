"""Accounts, devices and sessions: SPEC sections 7.7-7.17 and 9."""

from __future__ import annotations

import re
from typing import Any

from . import wire
from .registry import (
    PASSWORD,
    Context,
    check,
    expect,
    expect_closed,
    expect_error,
    expect_type,
    number,
    send,
)

TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{43}")


@check(section="7.8", title="REGISTER answers REGISTERED {user} with the new name")
async def register_ok(ctx: Context) -> None:
    conn = await ctx.anon()
    name = ctx.name()
    f = await conn.request(wire.REGISTER, {"username": name, "password": PASSWORD})
    expect_type(f, wire.REGISTERED, "REGISTER")
    expect(f.payload.get("user") == name, f"REGISTERED.user: {f}")


@check(section="9.1", title="a username outside [a-z0-9][a-z0-9_.-]{2,31} gets 2004")
async def invalid_usernames(ctx: Context) -> None:
    conn = await ctx.anon()
    base = ctx.name("x")[:12]
    for name in (
        "ab",
        "Upper" + base,
        "_" + base,
        "a" * 33,
        base + " x",
        base + "é",
        "-" + base,
        "",
        base + "!",
    ):
        f = await conn.request(wire.REGISTER, {"username": name, "password": PASSWORD})
        expect_error(f, wire.E_INVALID_USERNAME, f"REGISTER {name!r}")


@check(section="9.1", title="usernames of 3 and 32 characters with _ . - are valid")
async def valid_usernames(ctx: Context) -> None:
    conn = await ctx.anon()
    long = ctx.name("v")
    long = (long + "_.-" + "z" * 32)[:32]
    f = await conn.request(wire.REGISTER, {"username": long, "password": PASSWORD})
    expect_type(f, wire.REGISTERED, f"REGISTER {long!r}")


@check(section="9.1", title="an existing username gets 2003 USERNAME_TAKEN")
async def username_taken(ctx: Context) -> None:
    conn = await ctx.anon()
    name = await ctx.register(conn)
    f = await conn.request(wire.REGISTER, {"username": name, "password": PASSWORD})
    expect_error(f, wire.E_USERNAME_TAKEN, "REGISTER twice")


@check(
    section="9.2",
    title="a password below 8 or above 1024 characters gets 2005; length counts code points",
)
async def weak_password(ctx: Context) -> None:
    conn = await ctx.anon()
    for pw in ("1234567", "p" * 1025, "éééé"):  # "éééé" is 8 bytes but 4 characters
        f = await conn.request(wire.REGISTER, {"username": ctx.name(), "password": pw})
        expect_error(f, wire.E_WEAK_PASSWORD, f"password of {len(pw)} characters")
    for pw in ("12345678", "é" * 8, "p" * 1024):
        f = await conn.request(wire.REGISTER, {"username": ctx.name(), "password": pw})
        expect_type(f, wire.REGISTERED, f"password of {len(pw)} characters")


@check(section="7.7", title="REGISTER without password, or with a non-str username, is 1003")
async def register_fields(ctx: Context) -> None:
    conn = await ctx.anon()
    expect_error(
        await conn.request(wire.REGISTER, {"username": ctx.name()}),
        wire.E_INVALID_FIELD,
        "REGISTER without password",
    )
    expect_error(
        await conn.request(wire.REGISTER, {"username": 5, "password": PASSWORD}),
        wire.E_INVALID_FIELD,
        "REGISTER username=5",
    )


@check(section="9.4", title="LOGIN answers AUTHENTICATED {user, device, head, acked, token}")
async def login_fields(ctx: Context) -> None:
    name = await ctx.register()
    conn = await ctx.anon()
    f = await conn.request(
        wire.LOGIN, {"username": name, "password": PASSWORD, "device": "phone:1"}
    )
    expect_type(f, wire.AUTHENTICATED, "LOGIN")
    p = f.payload
    expect(p.get("user") == name and p.get("device") == "phone:1", f"user/device: {f}")
    expect(p.get("head") == 0 and p.get("acked") == 0, f"head/acked of a new account: {f}")
    expect(isinstance(p.get("token"), str) and len(p["token"]) > 0, f"token: {f}")


@check(section="9.4", level="SHOULD", title="tokens are 43 characters of base64url")
async def token_format(ctx: Context) -> None:
    s = await ctx.user(sync=False)
    expect(TOKEN_RE.fullmatch(s.token) is not None, f"token {s.token!r}")


@check(section="9.4", title="an unknown user and a wrong password both get 2002")
async def bad_credentials(ctx: Context) -> None:
    name = await ctx.register()
    conn = await ctx.anon()
    for user, pw in ((name, "wrong-password"), (ctx.name(), PASSWORD)):
        f = await conn.request(wire.LOGIN, {"username": user, "password": pw, "device": "d"})
        expect_error(f, wire.E_BAD_CREDENTIALS, f"LOGIN {user}")


@check(section="9.3", title="a device id outside [A-Za-z0-9][A-Za-z0-9_.:-]{0,63} gets 2009")
async def invalid_device(ctx: Context) -> None:
    name = await ctx.register()
    conn = await ctx.anon()
    for dev in ("", "-a", "a/b", "d" * 65, "é"):
        f = await conn.request(wire.LOGIN, {"username": name, "password": PASSWORD, "device": dev})
        expect_error(f, wire.E_INVALID_DEVICE, f"LOGIN device={dev!r}")
    f = await conn.request(
        wire.LOGIN, {"username": name, "password": PASSWORD, "device": "D" + "_.:-x" * 12 + "abc"}
    )
    expect_type(f, wire.AUTHENTICATED, "LOGIN with a 64-character device id")


@check(section="9.4", title="AUTH with the token answers AUTHENTICATED without token")
async def auth_token(ctx: Context) -> None:
    s = await ctx.user(device="tab", sync=False)
    conn = await ctx.anon()
    f = expect_type(await conn.request(wire.AUTH, {"token": s.token}), wire.AUTHENTICATED, "AUTH")
    expect(f.payload.get("user") == s.user and f.payload.get("device") == "tab", f"{f}")
    expect("token" not in f.payload, f"AUTHENTICATED to AUTH carries a token: {f}")


@check(section="9.4", title="AUTH with an unknown token gets 2006")
async def auth_bad_token(ctx: Context) -> None:
    conn = await ctx.anon()
    f = await conn.request(wire.AUTH, {"token": "A" * 43})
    expect_error(f, wire.E_INVALID_TOKEN, "AUTH with a made-up token")


@check(
    section="9.4", title="a LOGIN for an existing device replaces its token: the old one gets 2006"
)
async def relogin_replaces_token(ctx: Context) -> None:
    s = await ctx.user(sync=False)
    s2 = await ctx.login(s.user, s.device, sync=False)
    expect(s2.token != s.token, "the second LOGIN returned the same token")
    conn = await ctx.anon()
    expect_error(
        await conn.request(wire.AUTH, {"token": s.token}),
        wire.E_INVALID_TOKEN,
        "AUTH with the replaced token",
    )
    expect_type(
        await conn.request(wire.AUTH, {"token": s2.token}),
        wire.AUTHENTICATED,
        "AUTH with the new token",
    )


@check(
    section="9.4",
    small=True,
    title="after 5 failed logins for an account LOGIN gets 2007 with retry_after",
)
async def login_throttle(ctx: Context) -> None:
    # On the small-limits server: its failures count against this address too (20 per 15
    # minutes), and once that budget is spent every LOGIN from here is refused.
    ctx = ctx.small()
    name = await ctx.register()
    conn = await ctx.anon()
    for i in range(5):
        f = await conn.request(
            wire.LOGIN, {"username": name, "password": "wrong-pass", "device": "d"}
        )
        expect_error(f, wire.E_BAD_CREDENTIALS, f"failed LOGIN {i + 1}")
    f = await conn.request(wire.LOGIN, {"username": name, "password": "wrong-pass", "device": "d"})
    expect_error(f, wire.E_THROTTLED, "LOGIN after 5 failures")
    ra = f.payload.get("retry_after")
    expect(number(ra), f"retry_after: {f}")


@check(section="9.5", title="after LOGOUT the device's token is dead (AUTH gets 2006)")
async def logout_revokes_token(ctx: Context) -> None:
    s = await ctx.user(sync=False)
    expect_type(await s.req(wire.LOGOUT, {}), wire.LOGGED_OUT, "LOGOUT")
    conn = await ctx.anon()
    expect_error(
        await conn.request(wire.AUTH, {"token": s.token}), wire.E_INVALID_TOKEN, "AUTH after LOGOUT"
    )


@check(section="9.5", title="LOGOUT closes every connection of that device with 4002")
async def logout_closes_other_conns(ctx: Context) -> None:
    s = await ctx.user(sync=False)
    conn = await ctx.anon()
    expect_type(await conn.request(wire.AUTH, {"token": s.token}), wire.AUTHENTICATED, "AUTH")
    expect_type(await s.req(wire.LOGOUT, {}), wire.LOGGED_OUT, "LOGOUT")
    await expect_closed(conn, wire.C_LOGGED_OUT, "second connection of the logged-out device")


@check(
    section="9.5",
    title="LIST_DEVICES: one device info per device with device, created, last_seen, online, acked",
)
async def list_devices(ctx: Context) -> None:
    s = await ctx.user(device="one", sync=False)
    await ctx.login(s.user, "two", sync=False)
    f = expect_type(await s.req(wire.LIST_DEVICES, {}), wire.DEVICE_LIST, "LIST_DEVICES")
    devices: Any = f.payload.get("devices")
    expect(isinstance(devices, list) and len(devices) == 2, f"devices: {f}")
    by = {d.get("device"): d for d in devices}
    expect(set(by) == {"one", "two"}, f"device ids {sorted(map(str, by))}")
    for d in devices:
        for key in ("created", "last_seen", "acked"):
            expect(type(d.get(key)) is int, f"device {key}: {d}")
        expect(d.get("online", False) in (True, False), f"device online: {d}")
    expect(by["one"].get("online") is True, f"the connected device is not online: {by['one']}")


@check(
    section="9.5",
    title="REVOKE_DEVICE answers DEVICE_REVOKED, closes that device with 4002 and kills its token",
)
async def revoke_device(ctx: Context) -> None:
    s = await ctx.user(device="keep", sync=False)
    other = await ctx.login(s.user, "lost", sync=False)
    f = expect_type(
        await s.req(wire.REVOKE_DEVICE, {"device": "lost"}), wire.DEVICE_REVOKED, "REVOKE_DEVICE"
    )
    expect(f.payload.get("device") == "lost", f"DEVICE_REVOKED.device: {f}")
    await expect_closed(other.conn, wire.C_LOGGED_OUT, "the revoked device's connection")
    conn = await ctx.anon()
    expect_error(
        await conn.request(wire.AUTH, {"token": other.token}),
        wire.E_INVALID_TOKEN,
        "AUTH with the revoked token",
    )


@check(section="9.5", title="REVOKE_DEVICE of an unknown device gets 2010")
async def revoke_unknown(ctx: Context) -> None:
    s = await ctx.user(sync=False)
    expect_error(
        await s.req(wire.REVOKE_DEVICE, {"device": "nope"}),
        wire.E_UNKNOWN_DEVICE,
        "REVOKE_DEVICE nope",
    )


@check(section="9.3", title="device ids are case-sensitive: `Phone` and `phone` are two devices")
async def device_case(ctx: Context) -> None:
    s = await ctx.user(device="Phone", sync=False)
    await ctx.login(s.user, "phone", sync=False)
    f = expect_type(await s.req(wire.LIST_DEVICES, {}), wire.DEVICE_LIST, "LIST_DEVICES")
    ids = sorted(str(d.get("device")) for d in f.payload.get("devices") or [])
    expect(ids == ["Phone", "phone"], f"device ids {ids}")


@check(
    section="9.5",
    title="a revoked device leaves DEVICE_LIST; LOGIN with its id again starts afresh with acked 0",
)
async def revoked_device_removed(ctx: Context) -> None:
    s = await ctx.user(device="keep")
    other = await ctx.login(s.user, "gone", sync=False)
    sent = await send(s, s.user, "to myself")  # an entry in the log the device can store
    seq = sent.payload.get("seq")
    expect(isinstance(seq, int) and seq >= 1, f"SENT.seq: {sent}")
    # SYNC records `since` as the device's stored position (10.4)
    expect_type(await other.req(wire.SYNC, {"since": seq}), wire.UPDATES, "SYNC")
    expect_type(
        await s.req(wire.REVOKE_DEVICE, {"device": "gone"}), wire.DEVICE_REVOKED, "REVOKE_DEVICE"
    )
    f = expect_type(await s.req(wire.LIST_DEVICES, {}), wire.DEVICE_LIST, "LIST_DEVICES")
    ids = sorted(str(d.get("device")) for d in f.payload.get("devices") or [])
    expect(ids == ["keep"], f"devices after REVOKE_DEVICE: {ids}")
    conn = await ctx.anon()
    f = expect_type(
        await conn.request(
            wire.LOGIN, {"username": s.user, "password": s.password, "device": "gone"}
        ),
        wire.AUTHENTICATED,
        "LOGIN with the revoked device id",
    )
    expect(
        f.payload.get("acked") == 0, f"AUTHENTICATED.acked after re-LOGIN of a revoked device: {f}"
    )
