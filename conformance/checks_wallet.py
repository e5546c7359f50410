"""The wallet: SPEC section 25 (balance, payments, idempotency keys, check-in, red packets)
and privacy `coins` (23.2).

A fresh account holds no coins; the checks that move coins earn them first with CHECK_IN
(25.6), and are skipped against a server whose catalogue has no check-in task (3008)."""

from __future__ import annotations

import secrets
from typing import Any

from . import wire
from .checks_social import befriend
from .registry import Context, Fail, Session, Skip, check, expect, expect_error, expect_type


def _key() -> str:
    return "k" + secrets.token_hex(8)


async def _earn(s: Session) -> int:
    """Check in for coins; the new balance (Skip when the server has no check-in task)."""
    f = await s.req(wire.CHECK_IN, {"key": _key()})
    if f.type == wire.ERROR and f.code == wire.E_CONFLICT:
        raise Skip("the server has no check-in task (CHECK_IN answered 3008)")
    expect_type(f, wire.CHECKED_IN, "CHECK_IN")
    balance = f.payload.get("balance")
    expect(type(balance) is int and balance > 0, f"CHECKED_IN paid nothing: {f}")
    assert isinstance(balance, int)
    return balance


async def _wallet(s: Session) -> dict[str, Any]:
    f = expect_type(await s.req(wire.GET_WALLET, {}), wire.WALLET, "GET_WALLET")
    return f.payload


async def _pushed(s: Session, n: int, what: str) -> list[list[Any]]:
    """The next `n` message and WALLET entries pushed to s (UPDATES with rid 0; entries of
    other kinds, such as the contact changes of befriend, are passed over)."""
    got: list[list[Any]] = []
    while len(got) < n:
        f = await s.conn.next(lambda f: f.type == wire.UPDATES and f.rid == 0, what)
        updates = f.payload.get("updates")
        if not isinstance(updates, list) or not updates:
            raise Fail(f"{what}: {f}")
        got.extend(u for u in updates if u[1] in (1, wire.U_WALLET))
    return got


@check(
    section="25.3",
    title="a new account's GET_WALLET is WALLET with balance, pending_out and pending_in 0",
)
async def wallet_empty(ctx: Context) -> None:
    w = await _wallet(await ctx.user())
    expect(
        {k: w.get(k) for k in ("balance", "pending_out", "pending_in")}
        == {"balance": 0, "pending_out": 0, "pending_in": 0},
        f"WALLET {w}",
    )


@check(section="25.1", title="PAY above the balance is 3201 and moves nothing")
async def pay_insufficient(ctx: Context) -> None:
    a, b = await ctx.user(), await ctx.user()
    await befriend(a, b)
    f = await a.req(wire.PAY, {"to": b.user, "amount": 5, "key": _key()})
    expect_error(f, wire.E_INSUFFICIENT_FUNDS, "PAY with no coins")
    expect((await _wallet(a)).get("balance") == 0, "the balance moved")


@check(section="23.2", title="privacy coins defaults to contacts: PAY to a stranger is 3004")
async def pay_privacy(ctx: Context) -> None:
    a, b = await ctx.user(), await ctx.user()
    f = expect_type(await b.req(wire.GET_PRIVACY, {}), wire.PRIVACY, "GET_PRIVACY")
    expect(f.payload.get("coins") == "contacts", f"PRIVACY {f}")
    await _earn(a)
    expect_error(
        await a.req(wire.PAY, {"to": b.user, "amount": 1, "key": _key()}),
        wire.E_NOT_ALLOWED,
        "PAY to a stranger",
    )


@check(
    section="25.6",
    title="CHECK_IN pays once per period: again with another key is 3206, "
    "with the same key the first answer with duplicate true",
)
async def check_in_once(ctx: Context) -> None:
    s = await ctx.user()
    key = _key()
    f = await s.req(wire.CHECK_IN, {"key": key})
    if f.type == wire.ERROR and f.code == wire.E_CONFLICT:
        raise Skip("the server has no check-in task (CHECK_IN answered 3008)")
    first = expect_type(f, wire.CHECKED_IN, "CHECK_IN").payload
    expect_error(await s.req(wire.CHECK_IN, {"key": _key()}), wire.E_TASK_DONE, "a second CHECK_IN")
    again = expect_type(
        await s.req(wire.CHECK_IN, {"key": key}), wire.CHECKED_IN, "CHECK_IN retried"
    ).payload
    expect(
        again.get("duplicate") is True and again.get("tasks") == first.get("tasks"),
        f"retry answered {again}, first {first}",
    )
    expect((await _wallet(s)).get("balance") == first.get("balance"), "paid twice")


@check(
    section="25.4",
    title="PAY moves coins to a contact: PAID, a WALLET entry and a coins event for the payee",
)
async def pay_contact(ctx: Context) -> None:
    a, b = await ctx.user(), await ctx.user()
    await befriend(a, b)
    have = await _earn(a)
    paid = expect_type(
        await a.req(wire.PAY, {"to": b.user, "amount": 1, "key": _key(), "memo": "thanks"}),
        wire.PAID,
        "PAY",
    ).payload
    t = paid.get("transfer", {})
    expect(
        paid.get("balance") == have - 1
        and t.get("amount") == 1
        and t.get("from") == a.user
        and t.get("to") == b.user
        and t.get("code") == "pay",
        f"PAID {paid}",
    )
    entries = await _pushed(b, 2, "the payee's WALLET entry and coins event")
    wallet = [e[2] for e in entries if e[1] == wire.U_WALLET]
    events = [e[2].get("event") for e in entries if e[1] == 1 and isinstance(e[2], dict)]
    expect(
        len(wallet) == 1
        and wallet[0].get("balance") == 1
        and wallet[0].get("transfer", {}).get("id") == t.get("id"),
        f"the payee's entries {entries}",
    )
    expect(
        len(events) == 1
        and isinstance(events[0], dict)
        and events[0].get("type") == "coins"
        and events[0].get("amount") == 1,
        f"the payee's entries {entries}",
    )
    expect((await _wallet(b)).get("balance") == 1, "the payee's balance")


@check(
    section="25.2",
    title="a PAY retried with its key is answered again (duplicate true) and "
    "pays once; the key with another amount is 3202",
)
async def pay_idempotent(ctx: Context) -> None:
    a, b = await ctx.user(), await ctx.user()
    await befriend(a, b)
    have = await _earn(a)
    key = _key()
    first = expect_type(
        await a.req(wire.PAY, {"to": b.user, "amount": 1, "key": key}), wire.PAID, "PAY"
    ).payload
    again = expect_type(
        await a.req(wire.PAY, {"to": b.user, "amount": 1, "key": key}), wire.PAID, "PAY retried"
    ).payload
    expect(
        again.get("duplicate") is True and again.get("transfer") == first.get("transfer"),
        f"retry answered {again}",
    )
    expect_error(
        await a.req(wire.PAY, {"to": b.user, "amount": 2, "key": key}),
        wire.E_IDEMPOTENCY_MISMATCH,
        "the key with another amount",
    )
    expect((await _wallet(a)).get("balance") == have - 1, "paid more than once")


@check(
    section="25.5",
    title="a red packet in a group: each member claims once, the shares sum "
    "to the amount, then 3203; a non-member is 3005",
)
async def red_packet_group(ctx: Context) -> None:
    owner = await ctx.user()
    members = [await ctx.user(), await ctx.user(), await ctx.user()]
    for m in members:
        await befriend(owner, m)
    have = await _earn(owner)
    amount = min(have, 10)
    if amount < 2:
        raise Skip(f"a check-in pays {have} coins: too few for a packet of two shares")
    f = await owner.req(
        wire.GROUP_CREATE, {"name": "Hongbao", "members": [m.user for m in members]}
    )
    gid = expect_type(f, wire.GROUP_INFO, "GROUP_CREATE").payload["group"]
    sent = expect_type(
        await owner.req(
            wire.RED_PACKET_SEND, {"group": gid, "amount": amount, "count": 2, "key": _key()}
        ),
        wire.RED_PACKET_SENT,
        "RED_PACKET_SEND",
    ).payload
    pid = sent.get("packet")
    expect(sent.get("pending_out") == amount, f"RED_PACKET_SENT {sent}")
    got: list[int] = []
    for m in members[:2]:
        c = expect_type(
            await m.req(wire.RED_PACKET_CLAIM, {"packet": pid}),
            wire.RED_PACKET_CLAIMED,
            "RED_PACKET_CLAIM",
        ).payload
        share = c.get("amount")
        expect(type(share) is int and share >= 1, f"RED_PACKET_CLAIMED {c}")
        got.append(int(share))  # type: ignore[arg-type]
    expect(sum(got) == amount, f"shares {got} of {amount}")
    again = expect_type(
        await members[0].req(wire.RED_PACKET_CLAIM, {"packet": pid}),
        wire.RED_PACKET_CLAIMED,
        "a second claim",
    ).payload
    expect(
        again.get("duplicate") is True and again.get("amount") == got[0], f"second claim {again}"
    )
    expect_error(
        await members[2].req(wire.RED_PACKET_CLAIM, {"packet": pid}),
        wire.E_PACKET_EMPTY,
        "a claim after the last share",
    )
    stranger = await ctx.user()
    expect_error(
        await stranger.req(wire.RED_PACKET_CLAIM, {"packet": pid}),
        wire.E_NOT_MEMBER,
        "a claim by a non-member",
    )
    w = await _wallet(owner)
    expect(
        w.get("balance") == have - amount and w.get("pending_out") == 0,
        f"the sender's WALLET after the last claim: {w}",
    )


@check(
    section="25.8",
    title="wallet requests are session requests: GET_WALLET before authentication is 2001",
)
async def wallet_needs_session(ctx: Context) -> None:
    conn = await ctx.anon()
    expect_error(
        await conn.request(wire.GET_WALLET, {}), wire.E_NOT_AUTHENTICATED, "GET_WALLET in CONNECTED"
    )
