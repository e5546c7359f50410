"""Shares and merchants (contract.NearbyStore), one suite for SQLite and memory: a share
replaces the last, expiry hides and the sweep removes, the finders read the searched
index cells only and leave out whoever hides from the viewer (privacy `nearby`, blocks);
merchants are found by kind, cell and category."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from liaotian.server.chat.ops import AcceptContact, BlockUser, RequestContact, SetPrivacy
from liaotian.server.chat.rules import nearby as rules
from liaotian.server.store.contract import KIND_MERCHANT, MerchantProfile
from liaotian.server.store.sqlite import SQLiteStore
from test_contract import Driver, make_store

HERE = (31_230_400, 121_473_700)
FAR = (39_904_200, 116_407_400)  # Beijing
NOW = 1_700_000_000_000


@pytest.fixture(params=["sqlite", "memory", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    async with AsyncExitStack() as stack:
        s: Any = await make_store(request.param, tmp_path / "nearby.db", stack)
        await s.open()
        try:
            yield s
        finally:
            await s.close()


def share(uid: int, point: tuple[int, int], expires: int = NOW + 3_600_000) -> rules.Share:
    spot = rules.snap(*point)
    return rules.Share(uid, spot.cell, spot.index, expires, NOW)


async def people(store: Any, viewer: int, point: tuple[int, int] = HERE) -> list[int]:
    cells = rules.search_cells(*point, 5000)
    return sorted(c.user for c in await store.nearby_people(viewer, cells, NOW))


async def test_shares_are_found_by_cell_replaced_stopped_and_swept(store: Any) -> None:
    d = Driver(store)
    a, b, c = await d.users("alice", "bob", "carol")
    await store.nearby_put(share(b, HERE))
    await store.nearby_put(share(c, FAR))
    assert await people(store, a) == [b]
    assert await people(store, a, FAR) == [c]
    got = await store.nearby_share_of(b)
    assert got == share(b, HERE)
    await store.nearby_put(share(b, FAR))  # replaced: filed under the new cell only
    assert await people(store, a) == []
    assert await people(store, a, FAR) == [b, c]
    assert await store.nearby_stop(b) is True
    assert await store.nearby_stop(b) is False
    assert await people(store, a, FAR) == [c]
    await store.nearby_put(share(b, HERE, expires=NOW - 1))  # expired: never found
    assert await people(store, a) == []
    assert await store.nearby_sweep(NOW, 100) == 1
    assert await store.nearby_share_of(b) is None
    assert await store.nearby_share_of(c) is not None


async def test_a_put_writes_what_changed_and_reads_see_puts_not_yet_committed(
    store: Any,
) -> None:
    """A new expiry in the same cell, a new cell with the same expiry, many users' reads
    at once (SQLite batches them into one SELECT), a read racing a put."""
    import asyncio

    d = Driver(store)
    a, b, c = await d.users("alice", "bob", "carol")
    await store.nearby_put(share(b, HERE))
    await store.nearby_put(share(b, HERE, expires=NOW + 7_200_000))
    assert await store.nearby_share_of(b) == share(b, HERE, expires=NOW + 7_200_000)
    moved = rules.Share(b, rules.snap(*FAR).cell, rules.snap(*FAR).index, NOW + 7_200_000, NOW + 5)
    await store.nearby_put(moved)
    assert await store.nearby_share_of(b) == moved
    assert await people(store, a, FAR) == [b] and await people(store, a) == []
    put = asyncio.ensure_future(store.nearby_put(share(c, HERE)))
    await asyncio.sleep(0)  # the put is queued, not committed: a read sees it already
    got = await asyncio.gather(*(store.nearby_share_of(u) for u in (a, b, c, b)))
    assert got == [None, moved, share(c, HERE), moved]
    await put
    assert await store.nearby_share_of(c) == share(c, HERE)


async def test_what_is_left_of_ended_shares_and_the_hellos_of_a_day(store: Any) -> None:
    d = Driver(store)
    a, b = await d.users("alice", "bob")
    assert await store.nearby_last(a) is None
    await store.nearby_put(share(a, HERE))
    await store.nearby_put(share(b, FAR, expires=NOW - 1))
    assert await store.nearby_last(a) is None  # a live share leaves nothing behind
    await store.nearby_stop(a)
    assert await store.nearby_last(a) == rules.last_seen(share(a, HERE))
    assert await store.nearby_sweep(NOW, 100) == 1
    assert await store.nearby_last(b) == rules.last_seen(share(b, FAR))
    # a day later the sweep forgets them
    assert await store.nearby_sweep(NOW + rules.LAST_KEEP_MS, 100) == 0
    assert await store.nearby_last(a) is None and await store.nearby_last(b) is None
    day = rules.hello_day(NOW)
    assert [await store.nearby_take_hello(a, day, 2) for _ in range(3)] == [True, True, False]
    assert await store.nearby_take_hello(b, day, 2) is True  # per user
    assert await store.nearby_take_hello(a, day + 1, 2) is True  # a new day starts over


async def test_sqlite_keeps_the_limits_across_a_restart(tmp_path: Path) -> None:
    path = str(tmp_path / "limits.db")
    s = SQLiteStore(path)
    await s.open()
    a, b = await Driver(s).users("alice", "bob")
    day = rules.hello_day(NOW)
    await s.nearby_put(share(a, HERE))
    await s.nearby_stop(a)
    assert await s.nearby_take_hello(b, day, 1) is True
    await s.close()
    s = SQLiteStore(path)
    await s.open()
    try:
        assert await s.nearby_last(a) == rules.last_seen(share(a, HERE))
        assert await s.nearby_take_hello(b, day, 1) is False
    finally:
        await s.close()


async def test_privacy_and_blocks_hide_a_share_from_the_viewer(store: Any) -> None:
    d = Driver(store)
    a, b, c, e = await d.users("alice", "bob", "carol", "erin")
    for uid in (b, c, e):
        await store.nearby_put(share(uid, HERE))
    await d.run(
        SetPrivacy(actor=b, nearby="nobody"),
        SetPrivacy(actor=c, nearby="contacts"),
        BlockUser(actor=e, user="alice"),
    )
    assert await people(store, a) == []
    assert await people(store, b) == [e]  # carol shows to contacts only
    await d.run(RequestContact(actor=a, user="carol"))
    await d.run(AcceptContact(actor=c, user="alice"))
    assert await people(store, a) == [c]  # carol shows to contacts; erin blocked alice
    assert e in await people(store, b)


async def test_merchants_are_found_by_kind_cell_and_category(store: Any) -> None:
    d = Driver(store)
    a, m, n = await d.users("alice", "shop", "cafe")
    spot = rules.snap(*HERE)
    for uid, cat in ((m, "books"), (n, "coffee")):
        profile = MerchantProfile(f"{cat} place", cat, "9-17", *HERE, spot.cell, spot.index)
        await store.merchant_put(uid, profile)
    assert await store.merchant_of(m) is None  # not a merchant account (yet)
    assert await store.nearby_merchants(a, rules.search_cells(*HERE, 5000), None) == []
    await store.set_account_kind(m, KIND_MERCHANT)
    await store.set_account_kind(n, KIND_MERCHANT)
    assert await store.account_kind(m) == KIND_MERCHANT and await store.account_kind(a) == 0
    got = await store.merchant_of(m)
    assert got is not None and got.lat == HERE[0] and got.category == "books"
    cells = rules.search_cells(*HERE, 5000)
    found = await store.nearby_merchants(a, cells, None)
    assert sorted(c.user for c in found) == [m, n]
    found = await store.nearby_merchants(a, cells, "coffee")
    assert [(c.user, c.name, c.lat, c.lon, c.hours) for c in found] == [
        (n, "coffee place", HERE[0], HERE[1], "9-17")
    ]
    assert await store.nearby_merchants(a, rules.search_cells(*FAR, 5000), None) == []
    await d.run(BlockUser(actor=n, user="alice"))
    assert [c.user for c in await store.nearby_merchants(a, cells, None)] == [m]


async def test_sqlite_finds_people_by_an_index_range_never_a_scan(tmp_path: Path) -> None:
    """The query's cost does not grow with the shares elsewhere: one covering-index range
    per searched cell, then primary-key lookups per candidate; no table is scanned."""
    import sqlite3

    from liaotian.server.store.sqlite.nearby import SELECT_MERCHANTS, SELECT_PEOPLE

    path = str(tmp_path / "plan.db")
    s = SQLiteStore(path)
    await s.open()
    await s.close()
    db = sqlite3.connect(path)
    try:
        people = [r[3] for r in db.execute("EXPLAIN QUERY PLAN " + SELECT_PEOPLE, (1, 2, 3, 3))]
        merchants = [
            r[3] for r in db.execute("EXPLAIN QUERY PLAN " + SELECT_MERCHANTS, (1, "c", "c", 3))
        ]
    finally:
        db.close()
    assert any("COVERING INDEX nearby_shares_by_idx (idx=? AND expires>?)" in p for p in people)
    assert any("merchants_by_idx" in p for p in merchants), merchants
    assert not [p for p in people + merchants if p.startswith("SCAN")], (people, merchants)


def test_the_admin_command_account_kind_parses() -> None:
    from liaotian.server.config import Config
    from liaotian.server.ops.admin_cli import build_parser, request_of

    ns = build_parser().parse_args(["account-kind", "beanery", "merchant"])
    assert request_of(ns, Config()) == ("account_kind", {"user": "beanery", "kind": "merchant"})
    with pytest.raises(SystemExit):
        build_parser().parse_args(["account-kind", "beanery", "shopkeeper"])
