"""People and merchants nearby (SPEC section 29) and the shop's refusals (section 30).

Each check shares positions at a random place of its own (a city-sized square far from the
others'), so checks running on one server do not find each other's users."""

from __future__ import annotations

import random
from typing import Any

from . import wire
from .registry import Context, Session, check, expect, expect_error, expect_type

BUCKETS = (500, 1000, 2000, 5000)


def _place() -> tuple[int, int]:
    """A random point (microdegrees) away from the poles."""
    return random.randint(-60_000_000, 60_000_000), random.randint(-170_000_000, 170_000_000)


async def _share(s: Session, lat: int, lon: int, ttl: int = 600) -> dict[str, Any]:
    f = await s.req(wire.NEARBY_SHARE, {"lat": lat, "lon": lon, "ttl": ttl})
    return expect_type(f, wire.NEARBY_SHARED, "NEARBY_SHARE").payload


async def _people(s: Session, lat: int, lon: int, radius: int = 5000) -> list[dict[str, Any]]:
    f = await s.req(wire.NEARBY_QUERY, {"lat": lat, "lon": lon, "radius": radius})
    entries = expect_type(f, wire.NEARBY_LIST, "NEARBY_QUERY").payload.get("entries")
    expect(isinstance(entries, list), f"NEARBY_LIST without entries: {f}")
    assert isinstance(entries, list)
    return entries


@check(
    section="29.2", title="NEARBY_SHARE keeps a cell, expiring within the ttl; over 24 h is 1003"
)
async def nearby_share(ctx: Context) -> None:
    a = await ctx.user()
    lat, lon = _place()
    shared = await _share(a, lat, lon, ttl=3600)
    cell, expires = shared.get("cell"), shared.get("expires")
    expect(isinstance(cell, str) and len(cell) == 15, f"NEARBY_SHARED cell {cell!r}")
    expect(type(expires) is int and expires > 0, f"NEARBY_SHARED expires {expires!r}")
    f = await a.req(wire.NEARBY_SHARE, {"lat": lat, "lon": lon, "ttl": 86_401})
    expect_error(f, wire.E_INVALID_FIELD, "NEARBY_SHARE for more than 24 h")
    expect_type(await a.req(wire.NEARBY_STOP, {}), wire.OK, "NEARBY_STOP")


@check(
    section="29.1",
    title="a nearby person is found with a distance bucket and no position; stopping hides",
)
async def nearby_found_bucketed(ctx: Context) -> None:
    a, b = await ctx.user(), await ctx.user()
    lat, lon = _place()
    await _share(a, lat, lon)
    await _share(b, lat + 3000, lon)  # ~330 m north
    found = [e for e in await _people(a, lat, lon) if e.get("user") == b.user]
    expect(len(found) == 1, f"{b.user} not found near {lat},{lon}")
    e = found[0]
    expect(e.get("within") in BUCKETS, f"within {e.get('within')!r} is not a bucket")
    expect("lat" not in e and "lon" not in e, f"a person's position was told: {e}")
    expect(e.get("hello") is True, f"hello {e.get('hello')!r} for a stranger")
    expect(all(x.get("user") != a.user for x in await _people(a, lat, lon)), "found yourself")
    expect_type(await b.req(wire.NEARBY_STOP, {}), wire.OK, "NEARBY_STOP")
    expect(all(x.get("user") != b.user for x in await _people(a, lat, lon)), "found after stop")


@check(section="29.1", title="two positions in one cell answer every query alike")
async def nearby_cell_only(ctx: Context) -> None:
    a, b, c = await ctx.user(), await ctx.user(), await ctx.user()
    lat, lon = _place()
    cell_b = (await _share(b, lat, lon)).get("cell")
    cell_c = (await _share(c, lat + 20, lon + 20)).get("cell")  # ~3 m away
    if cell_b != cell_c:
        cell_c = (await _share(c, lat, lon)).get("cell")
    for dlat, dlon in ((0, 0), (2500, 0), (0, -7000), (-9000, 4000), (15000, 15000)):
        got = {e["user"]: e.get("within") for e in await _people(a, lat + dlat, lon + dlon)}
        expect(got.get(b.user) == got.get(c.user), f"same cell, different answers: {got}")


@check(section="23.2", title='privacy nearby "nobody" hides a share')
async def nearby_privacy(ctx: Context) -> None:
    a, b = await ctx.user(), await ctx.user()
    lat, lon = _place()
    await _share(b, lat, lon)
    expect_type(await b.req(wire.SET_PRIVACY, {"nearby": "nobody"}), wire.OK, "SET_PRIVACY")
    expect(all(e.get("user") != b.user for e in await _people(a, lat, lon)), "found a hider")
    f = await a.req(wire.NEARBY_HELLO, {"user": b.user, "note": "hi"})
    expect_error(f, wire.E_NOT_NEARBY, "NEARBY_HELLO to a user not discoverable")


@check(section="29.2", title="a move of 1,000 km in a moment is 3301")
async def nearby_jump(ctx: Context) -> None:
    a = await ctx.user()
    lat, lon = _place()
    await _share(a, lat, lon)
    f = await a.req(wire.NEARBY_SHARE, {"lat": lat + 9_000_000, "lon": lon, "ttl": 600})
    expect_error(f, wire.E_IMPLAUSIBLE_MOVE, "NEARBY_SHARE 1,000 km away at once")


@check(section="29.2", title="stopping and sharing 1,000 km away at once is still 3301")
async def nearby_jump_after_stop(ctx: Context) -> None:
    a = await ctx.user()
    lat, lon = _place()
    await _share(a, lat, lon)
    expect_type(await a.req(wire.NEARBY_STOP, {}), wire.OK, "NEARBY_STOP")
    f = await a.req(wire.NEARBY_SHARE, {"lat": lat + 9_000_000, "lon": lon, "ttl": 600})
    expect_error(f, wire.E_IMPLAUSIBLE_MOVE, "NEARBY_SHARE 1,000 km from a stopped share")
    near = await _share(a, lat + 10_000, lon)  # ~1 km: within the district's slack
    expect(isinstance(near.get("cell"), str), f"NEARBY_SHARE nearby after a stop: {near}")


@check(
    section="29.2",
    title="a refresh keeps an expiry at most ttl/20 short of now + ttl, never later",
)
async def nearby_refresh_expiry(ctx: Context) -> None:
    a = await ctx.user()
    lat, lon = _place()
    first = await _share(a, lat, lon, ttl=3600)
    again = await _share(a, lat, lon, ttl=3600)
    expect(again.get("cell") == first.get("cell"), f"the cell changed: {first} {again}")
    expect(
        again.get("expires") == first.get("expires"),
        f"a refresh at once should keep the expiry: {first} {again}",
    )
    shorter = await _share(a, lat, lon, ttl=600)
    exp = shorter.get("expires")
    expect(
        type(exp) is int and exp <= first["expires"] - 2_900_000,
        f"a shorter ttl should shorten the share: {first} {shorter}",
    )


@check(section="30.1", title="PRODUCT_ADD from a person is 3302; a person's catalogue is empty")
async def shop_not_merchant(ctx: Context) -> None:
    a = await ctx.user()
    f = await a.req(wire.PRODUCT_ADD, {"title": "x", "price": 1, "stock": 1})
    expect_error(f, wire.E_NOT_MERCHANT, "PRODUCT_ADD by a person")
    f = await a.req(wire.LIST_PRODUCTS, {"merchant": a.user})
    expect(expect_type(f, wire.PRODUCT_LIST, "LIST_PRODUCTS").payload.get("products") == [], str(f))


@check(section="30.2", title="ORDER_PLACE of an unknown product is 3310, ORDER_STEP of one 3312")
async def shop_unknown(ctx: Context) -> None:
    a = await ctx.user()
    f = await a.req(wire.ORDER_PLACE, {"product": 2**40, "key": "k-unknown"})
    expect_error(f, wire.E_UNKNOWN_PRODUCT, "ORDER_PLACE of no product")
    f = await a.req(wire.ORDER_STEP, {"order": 2**40, "step": "cancel"})
    expect_error(f, wire.E_UNKNOWN_ORDER, "ORDER_STEP of no order")
    f = await a.req(wire.LIST_ORDERS, {})
    expect(expect_type(f, wire.ORDER_LIST, "LIST_ORDERS").payload.get("orders") == [], str(f))
