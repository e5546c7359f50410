"""The wallet's part of the store contract, one suite for SQLite and memory.

Each test drives a store through the wallet operations (chat/ops.py) and checks what the
ledger promises (chat/ledger.py): double entry, no negative balance, checked in the batch
that moves the money, immutable transfers, two-phase transfers, idempotency keys, red
packets that pay exactly their shares, tasks that pay at most their cap per period. After
every test, the invariant report (chat/audit.py) over the store's whole ledger is empty.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import msgpack
import pytest
from liaotian.protocol import ErrorCode, UpdateKind
from liaotian.server.chat.audit import audit
from liaotian.server.chat.ledger import (
    ESCROW,
    ISSUANCE,
    REWARDS,
    WALLET_UPDATE,
    Account,
    Task,
    WalletPolicy,
    shares,
)
from liaotian.server.chat.ops import (
    AcceptContact,
    BlockUser,
    CheckIn,
    ClaimPacket,
    ExpirePending,
    GiftItem,
    GrantItem,
    Hold,
    Mint,
    Pay,
    PostPending,
    RedeemItem,
    Register,
    RequestContact,
    SendPacket,
    SetPrivacy,
    UseInvite,
    VoidPending,
)
from liaotian.server.chat.policy import Policy
from liaotian.server.store import Store
from liaotian.server.store.memory import MemoryStore
from liaotian.server.store.sqlite import SQLiteStore
from liaotian.server.store.sqlite import sql as sql_module
from test_contract import Driver, make_store

TASKS = (
    Task("checkin", "checkin", 10),
    Task("first_message", "message", 5),
    Task("invite", "invite", 50, period_ms=0, cap=3, item="fcode"),
)
POLICY = Policy(wallet=WalletPolicy(tasks=TASKS, item_secret=b"s3cret"))


@pytest.fixture(params=["sqlite", "memory", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async with AsyncExitStack() as stack:
        s = await make_store(request.param, tmp_path / "wallet.db", stack)
        await s.open()
        try:
            yield s
            assert audit(await s.ledger_dump(), TASKS) == []
        finally:
            await s.close()


class Wallet(Driver):
    async def coins(self, *names: str, amount: int = 1000) -> None:
        """Mint `amount` to each user, and let anyone send them coins."""
        await self.run(*[SetPrivacy(actor=self.ids[n], coins="everyone") for n in names])
        for op in await self.run(*[Mint(actor=0, to=n, amount=amount) for n in names]):
            assert op.error is None, op.error_message

    async def balance(self, who: str | int) -> Account:
        acct = self.ids[who] if isinstance(who, str) else who
        return await self.store.account_of(acct)

    async def wallet_log(self, name: str) -> list[dict[str, Any]]:
        return [data for _s, kind, data in await self.log(name) if kind == WALLET_UPDATE]

    async def events(self, name: str) -> list[dict[str, Any]]:
        return [
            data["event"]
            for _s, kind, data in await self.log(name)
            if kind == UpdateKind.MESSAGE and "event" in data
        ]


@pytest.fixture
async def w(store: Store) -> Wallet:
    return Wallet(store)


def pay(w: Wallet, frm: str, to: str, amount: int, **kw: Any) -> Pay:
    return Pay(actor=w.ids[frm], to=to, amount=amount, **kw)


# ---------------------------------------------------------------------------- transfers


async def test_mint_and_pay_move_coins_by_double_entry(w: Wallet) -> None:
    await w.users("alice", "bob")
    await w.coins("alice", "bob", amount=100)
    op = await w.one(pay(w, "alice", "bob", 30, memo="lunch"))
    assert op.error is None and op.result["balance"] == 70
    t = op.result["transfer"]
    assert (t["from"], t["to"], t["amount"], t["code"], t["memo"]) == (
        "alice",
        "bob",
        30,
        "pay",
        "lunch",
    )
    assert (await w.balance("alice"), await w.balance("bob")) == (Account(70), Account(130))
    assert await w.balance(ISSUANCE) == Account(-200)
    # each side has a WALLET entry with its new balance, and the event in the conversation
    assert (await w.wallet_log("bob"))[-1]["balance"] == 130
    assert (await w.wallet_log("alice"))[-1]["transfer"]["id"] == t["id"]
    ev = (await w.events("bob"))[-1]
    assert ev == {"type": "coins", "transfer": t["id"], "amount": 30, "memo": "lunch"}
    assert (await w.events("alice"))[-1] == ev
    history = await w.store.transfers_of(w.ids["bob"], None, 10)
    assert [(h.debit, h.amount) for h in history] == [(w.ids["alice"], 30), (ISSUANCE, 100)]
    older = await w.store.transfers_of(w.ids["bob"], history[0].id, 10)
    assert [h.id for h in older] == [history[1].id]


async def test_no_balance_goes_negative_checked_in_the_batch(w: Wallet) -> None:
    await w.users("alice", "bob", "carol")
    await w.coins("alice", "bob", "carol", amount=50)
    # two payments racing for the same coins in one batch: the first in order wins
    first, second, third = await w.run(
        pay(w, "alice", "bob", 40), pay(w, "alice", "carol", 40), pay(w, "alice", "carol", 10)
    )
    assert first.error is None and second.error == ErrorCode.INSUFFICIENT_FUNDS
    assert third.error is None and third.result["balance"] == 0
    # coins received earlier in the same batch can be spent later in it
    a, b = await w.run(pay(w, "bob", "alice", 90), pay(w, "alice", "carol", 90))
    assert a.error is None and b.error is None
    assert await w.balance("alice") == Account(0)
    for bad in (0, -5, 10**16):
        assert (await w.one(pay(w, "bob", "carol", bad))).error == ErrorCode.INVALID_FIELD
    assert (await w.one(pay(w, "bob", "bob", 1))).error == ErrorCode.CONFLICT
    assert (await w.one(pay(w, "bob", "nobody", 1))).error == ErrorCode.UNKNOWN_USER


async def test_an_idempotency_key_makes_one_transfer(w: Wallet) -> None:
    await w.users("alice", "bob")
    await w.coins("alice", "bob", amount=100)
    first, same_batch = await w.run(
        pay(w, "alice", "bob", 10, key="k"), pay(w, "alice", "bob", 10, key="k")
    )
    await w.run(pay(w, "alice", "bob", 5))
    later = await w.one(pay(w, "alice", "bob", 10, key="k"))
    for retry in (same_batch, later):
        assert retry.error is None and retry.duplicate and retry.result == first.result
    assert not first.duplicate and (await w.balance("alice")).balance == 85
    # the same key with other parameters is an error; another user's key is theirs
    assert (
        await w.one(pay(w, "alice", "bob", 11, key="k"))
    ).error == ErrorCode.IDEMPOTENCY_MISMATCH
    assert (await w.one(pay(w, "bob", "alice", 10, key="k"))).duplicate is False
    # a refused request keeps no key: its retry is planned afresh
    poor = await w.one(pay(w, "alice", "bob", 500, key="big"))
    assert poor.error == ErrorCode.INSUFFICIENT_FUNDS
    await w.run(Mint(actor=0, to="alice", amount=1000))
    rich = await w.one(pay(w, "alice", "bob", 500, key="big"))
    assert rich.error is None and not rich.duplicate


async def test_privacy_coins_decides_who_may_pay(w: Wallet) -> None:
    await w.users("alice", "bob")
    await w.run(Mint(actor=0, to="alice", amount=100))
    # the default: contacts only
    assert (await w.one(pay(w, "alice", "bob", 1))).error == ErrorCode.NOT_ALLOWED
    await w.run(
        RequestContact(actor=w.ids["alice"], user="bob"),
        AcceptContact(actor=w.ids["bob"], user="alice"),
    )
    assert (await w.one(pay(w, "alice", "bob", 1))).error is None
    await w.run(SetPrivacy(actor=w.ids["bob"], coins="nobody"))
    assert (await w.one(pay(w, "alice", "bob", 1))).error == ErrorCode.NOT_ALLOWED
    await w.run(
        SetPrivacy(actor=w.ids["bob"], coins="everyone"),
        BlockUser(actor=w.ids["bob"], user="alice"),
    )
    assert (await w.one(pay(w, "alice", "bob", 1))).error == ErrorCode.NOT_ALLOWED
    assert (await w.store.social_of(w.ids["bob"])).coins == 0


# ---------------------------------------------------------------------------- two phases


async def test_two_phase_transfers_post_void_and_expire(w: Wallet) -> None:
    await w.users("alice", "bob")
    await w.coins("alice", amount=100)
    a, b = w.ids["alice"], w.ids["bob"]
    h = await w.one(Hold(actor=a, debit=a, credit=b, amount=60, key="h"))
    tid = h.result["transfer"]["id"]
    assert await w.balance("alice") == Account(100, 60, 0)
    assert await w.balance("bob") == Account(0, 0, 60)
    # the reservation counts: only 40 left to spend
    assert (
        await w.one(Hold(actor=a, debit=a, credit=b, amount=41))
    ).error == ErrorCode.INSUFFICIENT_FUNDS
    assert (await w.one(PostPending(actor=b, pending=tid))).error == ErrorCode.FORBIDDEN
    post = await w.one(PostPending(actor=a, pending=tid, amount=25))
    assert post.error is None and post.result["transfer"]["phase"] == "post"
    assert (await w.balance("alice"), await w.balance("bob")) == (Account(75), Account(25))
    assert (await w.one(VoidPending(actor=a, pending=tid))).error == ErrorCode.CONFLICT
    # void releases all
    h2 = await w.one(Hold(actor=a, debit=a, credit=b, amount=70))
    await w.run(VoidPending(actor=a, pending=h2.result["transfer"]["id"]))
    assert await w.balance("alice") == Account(75)
    # expiry: early does nothing; due, it voids, however often it is submitted
    h3 = await w.one(Hold(actor=a, debit=a, credit=b, amount=5, timeout_ms=50))
    t3 = h3.result["transfer"]
    early = await w.one(ExpirePending(actor=0, pending=t3["id"]))
    assert early.result == {"expired": False}
    assert await w.store.next_expiry() == t3["expires"]
    await asyncio.sleep(max(0, t3["expires"] - time.time() * 1000 + 2) / 1000)
    assert await w.store.pendings_due(int(time.time() * 1000) + 1, 10) == [t3["id"]]
    due, again = await w.run(
        ExpirePending(actor=0, pending=t3["id"]), ExpirePending(actor=0, pending=t3["id"])
    )
    assert due.result == {"expired": True} and again.result == {"expired": False}
    assert await w.balance("alice") == Account(75) and await w.store.next_expiry() is None
    assert [e["transfer"]["code"] for e in await w.wallet_log("alice")][-1] == "expired"


async def test_a_refused_op_leaves_nothing_of_its_ledger_changes(w: Wallet) -> None:
    """Rate limiting refuses after the rule staged everything: all of it is undone."""

    class NoRows:
        def take_rows(self, uid: int, rows: int) -> float | None:
            return 1.0

        def refund_rows(self, uid: int, rows: int) -> None:
            pass

    await w.users("alice", "bob")
    await w.coins("alice", "bob", amount=10)
    op = await w.one(
        Pay(actor=w.ids["alice"], to="bob", amount=4, key="x", policy=Policy(budget=NoRows()))
    )
    assert op.error == ErrorCode.RATE_LIMITED
    ok = await w.one(pay(w, "alice", "bob", 4, key="x"))
    assert ok.error is None and not ok.duplicate
    assert ok.result["transfer"]["id"] == (await w.store.transfers_of(w.ids["bob"], None, 1))[0].id
    assert (await w.balance("alice"), await w.balance("bob")) == (Account(6), Account(14))


# ---------------------------------------------------------------------------- red packets


async def test_a_red_packet_in_a_group_pays_its_shares_once_each(w: Wallet) -> None:
    names = ("alice", "bob", "carol", "dave")
    await w.users(*names, "eve")
    await w.coins("alice", amount=1000)
    g = await w.group("alice", "bob", "carol", "dave")
    send = await w.one(
        SendPacket(
            actor=w.ids["alice"], group=g, amount=100, count=3, seed=1234, memo="gong xi", key="rp"
        )
    )
    assert send.error is None
    pid = send.result["packet"]
    assert await w.balance("alice") == Account(1000, 100, 0)
    assert await w.balance(ESCROW) == Account(0, 0, 100)
    assert (await w.events("dave"))[-1]["type"] == "red_packet"
    want = shares(100, 3, 1, 1234)
    claims = await w.run(
        *[
            ClaimPacket(actor=w.ids[n], packet=pid)
            for n in ("bob", "carol", "bob", "eve", "dave", "alice")
        ]
    )
    bob, carol, bob2, eve, dave, alice = claims
    assert [bob.result["amount"], carol.result["amount"], dave.result["amount"]] == want
    assert bob2.duplicate and bob2.result["amount"] == want[0]
    assert eve.error == ErrorCode.NOT_MEMBER and alice.error == ErrorCode.PACKET_EMPTY
    assert dave.result["left"] == 0
    # settled: ESCROW back to nothing, the sender paid exactly the packet
    assert await w.balance(ESCROW) == Account()
    assert await w.balance("alice") == Account(900)
    assert [(await w.balance(n)).balance for n in ("bob", "carol", "dave")] == want
    types = [e["type"] for e in await w.events("carol")]
    assert types[-4:] == ["red_packet", "red_packet_claim", "red_packet_claim", "red_packet_claim"]
    p = await w.store.packet_of(pid)
    assert p is not None and p.state == 1 and [a for a, _t in p.claims.values()] == want


async def test_an_expired_packet_returns_its_rest_to_the_sender(
    w: Wallet, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the stores' clock, moved by the test: a packet of 60 ms no longer expires before
    # bob's claim on a loaded machine (it did, once), nor waits for the wall clock after
    from liaotian.server.store import memory as memory_store
    from liaotian.server.store.sqlite import writer as sqlite_writer

    now = [int(time.time() * 1000)]
    monkeypatch.setattr(sqlite_writer, "now_ms", lambda: now[0])
    if isinstance(w.store, memory_store.MemoryStore):
        monkeypatch.setattr(w.store, "clock", lambda: now[0])
    await w.users("alice", "bob", "carol")
    await w.coins("alice", amount=100)
    g = await w.group("alice", "bob", "carol")
    quick = Policy(wallet=WalletPolicy(packet_ttl_ms=60))
    send = await w.one(
        SendPacket(
            actor=w.ids["alice"], group=g, amount=10, count=5, split="equal", seed=1, policy=quick
        )
    )
    pid, pending = send.result["packet"], send.result["transfer"]["id"]
    got = await w.one(ClaimPacket(actor=w.ids["bob"], packet=pid))
    assert got.result["amount"] == 2
    now[0] = send.result["expires"] + 1
    late, expire = await w.run(
        ClaimPacket(actor=w.ids["carol"], packet=pid), ExpirePending(actor=0, pending=pending)
    )
    assert late.error == ErrorCode.PACKET_EXPIRED and expire.result == {"expired": True}
    assert (await w.balance("alice"), await w.balance("bob")) == (Account(98), Account(2))
    assert await w.balance(ESCROW) == Account()
    ev = (await w.events("carol"))[-1]
    assert ev == {"type": "red_packet_expired", "packet": pid, "refund": 8, "claimed": 1}
    assert (
        await w.one(ClaimPacket(actor=w.ids["carol"], packet=pid))
    ).error == ErrorCode.PACKET_EXPIRED


async def test_a_direct_red_packet_is_for_the_other_participant(w: Wallet) -> None:
    await w.users("alice", "bob", "carol")
    await w.coins("alice", "bob", amount=100)
    a = w.ids["alice"]
    assert (
        await w.one(SendPacket(actor=a, to="bob", amount=10, count=2))
    ).error == ErrorCode.INVALID_FIELD
    assert (
        await w.one(SendPacket(actor=a, to="bob", amount=0, count=1))
    ).error == ErrorCode.INVALID_FIELD
    assert (
        await w.one(SendPacket(actor=a, to="bob", amount=10**6, count=1))
    ).error == ErrorCode.INSUFFICIENT_FUNDS
    send = await w.one(SendPacket(actor=a, to="bob", amount=10, count=1))
    pid = send.result["packet"]
    mine, other, bob = await w.run(
        ClaimPacket(actor=a, packet=pid),
        ClaimPacket(actor=w.ids["carol"], packet=pid),
        ClaimPacket(actor=w.ids["bob"], packet=pid),
    )
    assert mine.error == other.error == ErrorCode.NOT_MEMBER
    assert bob.result["amount"] == 10 and (await w.balance("bob")).balance == 110
    assert [e["type"] for e in await w.events("alice")] == ["red_packet", "red_packet_claim"]


async def test_non_members_cannot_send_packets_and_shares_are_never_zero(w: Wallet) -> None:
    await w.users("alice", "bob", "carol")
    await w.coins("alice", "carol", amount=1000)
    g = await w.group("alice", "bob")
    assert (
        await w.one(SendPacket(actor=w.ids["carol"], group=g, amount=10, count=1))
    ).error == ErrorCode.NOT_MEMBER
    send = await w.one(SendPacket(actor=w.ids["alice"], group=g, amount=2, count=2, seed=9))
    claims = await w.run(
        *[ClaimPacket(actor=w.ids[n], packet=send.result["packet"]) for n in ("bob", "alice")]
    )
    assert [c.result["amount"] for c in claims] == [1, 1]


# ---------------------------------------------------------------------------- tasks, items


async def test_check_in_pays_once_per_period(w: Wallet) -> None:
    await w.users("alice")
    first, second = await w.run(
        CheckIn(actor=w.ids["alice"], policy=POLICY, key="d1"),
        CheckIn(actor=w.ids["alice"], policy=POLICY),
    )
    assert first.result["tasks"][0]["task"] == "checkin" and first.result["balance"] == 10
    assert second.error == ErrorCode.TASK_DONE
    retry = await w.one(CheckIn(actor=w.ids["alice"], policy=POLICY, key="d1"))
    assert retry.duplicate and (await w.balance("alice")).balance == 10
    assert await w.balance(REWARDS) == Account(-10)
    (reward,) = await w.store.transfers_of(w.ids["alice"], None, 5)
    assert reward.id == first.result["tasks"][0]["transfer"] and reward.memo == "checkin"
    assert await w.store.task_progress_of(w.ids["alice"]) == {
        "checkin": (TASKS[0].period(reward.ts), 1)
    }
    assert (await w.one(CheckIn(actor=w.ids["alice"]))).error == ErrorCode.CONFLICT


async def test_the_first_message_of_the_day_pays_in_its_own_batch(w: Wallet) -> None:
    await w.users("alice", "bob")
    rewarded = POLICY.wallet

    def send(text: str, cmid: str) -> Any:
        s = w.send("alice", "bob", text, cmid=cmid)
        s.rewards = rewarded
        return s

    first, second = await w.run(send("one", "c1"), send("two", "c2"))
    retry = await w.one(send("one", "c1"))
    assert retry.result.duplicate
    assert (await w.balance("alice")).balance == 5
    assert [e["transfer"]["memo"] for e in await w.wallet_log("alice")] == ["first_message"]
    # the reward's entry follows the message in the sender's log, pushed with the send
    log = await w.log("alice")
    assert [k for _s, k, _d in log] == [UpdateKind.MESSAGE, WALLET_UPDATE, UpdateKind.MESSAGE]
    assert [p.kind for p in first.pushes] == [WALLET_UPDATE] and second.pushes == []


async def test_items_are_granted_given_to_contacts_and_redeemed_once(w: Wallet) -> None:
    await w.users("alice", "bob", "carol")
    a, b = w.ids["alice"], w.ids["bob"]
    grant = await w.one(GrantItem(actor=0, to="alice", kind="fcode", policy=POLICY))
    code = grant.result["item"]["code"]
    assert len(code) == 16 and (await w.store.items_of(a))[0].code == code
    assert (await w.one(GiftItem(actor=a, code=code, to="bob"))).error == ErrorCode.NOT_ALLOWED
    await w.run(RequestContact(actor=a, user="bob"), AcceptContact(actor=b, user="alice"))
    gift = await w.one(GiftItem(actor=a, code=code, to="bob", key="g"))
    assert gift.error is None and (await w.events("bob"))[-1] == {"type": "item", "kind": "fcode"}
    assert await w.store.items_of(a) == [] and (await w.store.items_of(b))[0].code == code
    assert (await w.one(RedeemItem(actor=a, code=code))).error == ErrorCode.ITEM_UNAVAILABLE
    redeemed = await w.one(RedeemItem(actor=b, code=code))
    assert redeemed.result["item"]["redeemed"] > 0
    assert (await w.one(RedeemItem(actor=b, code=code))).error == ErrorCode.ITEM_UNAVAILABLE
    changes = [e["change"] for e in await w.wallet_log("bob")]
    assert changes == ["received", "redeemed"]


async def test_an_invitation_pays_its_owner_up_to_the_cap(w: Wallet) -> None:
    names = ("alice", "n1", "n2", "n3", "n4")
    await w.users(*names)
    codes = []
    for _ in range(4):
        op = await w.one(GrantItem(actor=0, to="alice", kind="invite", policy=POLICY))
        codes.append(op.result["item"]["code"])
    used = await w.run(
        *[
            UseInvite(actor=w.ids[n], code=c, policy=POLICY, key="invite")
            for n, c in zip(names[1:], codes, strict=True)
        ]
    )
    assert [len(u.result["tasks"]) for u in used] == [1, 1, 1, 0]  # cap 3, for ever
    assert (await w.balance("alice")).balance == 150
    assert len([i for i in await w.store.items_of(w.ids["alice"]) if i.kind == "fcode"]) == 3
    again = await w.one(UseInvite(actor=w.ids["n1"], code=codes[0], policy=POLICY, key="invite"))
    assert again.duplicate
    assert (
        await w.one(UseInvite(actor=w.ids["n2"], code=codes[0]))
    ).error == ErrorCode.ITEM_UNAVAILABLE


async def test_registering_with_a_code_pays_the_inviter_in_the_same_commit(w: Wallet) -> None:
    """REGISTER with an invitation code is one operation (ops.Register): the account, the
    code redeemed and the inviter's reward land in one batch; a taken name stages none
    of it, and a used code registers without paying again."""
    await w.users("alice")
    grant = await w.one(GrantItem(actor=0, to="alice", kind="invite", policy=POLICY))
    code = grant.result["item"]["code"]
    batches = w.store.batches
    carol, twin, dave = await w.run(
        Register(actor=0, username="carol", password_hash="h", code=code, policy=POLICY),
        Register(actor=0, username="carol", password_hash="h", code=code, policy=POLICY),
        Register(actor=0, username="dave", password_hash="h", code=code, policy=POLICY),
    )
    assert w.store.batches == batches + 1  # one commit for all three
    assert carol.error is None and carol.result["inviter"] == "alice"
    assert [t["task"] for t in carol.result["tasks"]] == ["invite"]
    assert twin.error == ErrorCode.USERNAME_TAKEN
    assert dave.error is None and dave.result["inviter"] is None  # the code is used
    assert (await w.balance("alice")).balance == 50
    user = await w.store.user_by_name("carol")
    assert user is not None and user.password_hash == "h"
    assert await w.store.user_by_name("dave") is not None
    again = await w.one(
        Register(actor=0, username="carol", password_hash="h", code=code, policy=POLICY)
    )
    assert again.error == ErrorCode.USERNAME_TAKEN
    (item,) = [i for i in await w.store.items_of(w.ids["alice"]) if i.kind == "invite"]
    assert item.redeemed
    assert (await w.balance("alice")).balance == 50


async def test_a_registration_that_fails_to_commit_keeps_neither_account_nor_reward(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash before COMMIT (the transaction rolled back, then the store reopened): no
    account, no reward, the code unused; registering again pays once."""
    path = tmp_path / "crash.db"
    s = SQLiteStore(str(path))
    await s.open()
    w = Wallet(s)
    await w.users("alice")
    grant = await w.one(GrantItem(actor=0, to="alice", kind="invite", policy=POLICY))
    code = grant.result["item"]["code"]
    real = sql_module.write_batch

    def crash(db: Any, *args: Any, **kw: Any) -> Any:
        db.execute("SELECT 1")  # the statements would run here; COMMIT never does
        raise OSError("power cut before COMMIT")

    monkeypatch.setattr(sql_module, "write_batch", crash)
    op = await w.one(
        Register(actor=0, username="carol", password_hash="h", code=code, policy=POLICY)
    )
    assert op.error == ErrorCode.INTERNAL_ERROR
    monkeypatch.setattr(sql_module, "write_batch", real)
    await s.close()
    s = SQLiteStore(str(path))
    await s.open()
    try:
        w2 = Wallet(s)
        w2.ids = w.ids
        assert await s.user_by_name("carol") is None
        assert (await w2.balance("alice")).balance == 0
        (item,) = await s.items_of(w.ids["alice"])
        assert not item.redeemed
        ok = await w2.one(
            Register(actor=0, username="carol", password_hash="h", code=code, policy=POLICY)
        )
        assert ok.error is None and ok.result["inviter"] == "alice"
        assert (await w2.balance("alice")).balance == 50
        assert audit(await s.ledger_dump(), TASKS) == []
    finally:
        await s.close()


# ---------------------------------------------------------------------------- invariants


async def test_a_random_workload_keeps_every_invariant(w: Wallet) -> None:
    """Many users paying, holding, sending and claiming packets at random, in batches:
    the audit (run by the fixture) finds nothing, and the sum of user balances plus
    ESCROW's equals what was minted (the rest is in open reservations)."""
    rnd = random.Random(7)
    names = [f"u{i}" for i in range(8)]
    await w.users(*names)
    await w.coins(*names, amount=200)
    g = await w.group(names[0], *names[1:])
    packets: list[int] = []
    pendings: list[tuple[int, int]] = []
    for _round in range(12):
        ops: list[Any] = []
        for _ in range(25):
            who = rnd.choice(names)
            uid = w.ids[who]
            r = rnd.random()
            if r < 0.4:
                ops.append(
                    pay(w, who, rnd.choice(names), rnd.randint(1, 80), key=f"k{rnd.randint(0, 60)}")
                )
            elif r < 0.55:
                ops.append(
                    SendPacket(
                        actor=uid,
                        group=g,
                        amount=rnd.randint(5, 60),
                        count=rnd.randint(1, 5),
                        seed=rnd.getrandbits(60),
                    )
                )
            elif r < 0.8 and packets:
                ops.append(ClaimPacket(actor=uid, packet=rnd.choice(packets)))
            elif r < 0.9:
                other = w.ids[rnd.choice(names)]
                ops.append(Hold(actor=uid, debit=uid, credit=other, amount=rnd.randint(1, 50)))
            elif pendings:
                tid, owner = rnd.choice(pendings)
                ops.append(
                    PostPending(actor=owner, pending=tid, amount=rnd.randint(1, 3))
                    if rnd.random() < 0.5
                    else VoidPending(actor=owner, pending=tid)
                )
        for op in await w.run(*ops):
            if op.error is not None:
                continue
            if isinstance(op, SendPacket) and not op.duplicate:
                packets.append(op.result["packet"])
            if isinstance(op, Hold):
                pendings.append((op.result["transfer"]["id"], op.actor))
    dump = await w.store.ledger_dump()
    assert audit(dump) == []
    total = sum(a.balance for acct, a in dump.accounts.items() if acct > 0 or acct == ESCROW)
    assert total == 200 * len(names) == -dump.accounts[ISSUANCE].balance
    assert all(a.balance - a.pending_out >= 0 for acct, a in dump.accounts.items() if acct > 0)


async def test_both_stores_agree(tmp_path: Path) -> None:
    """The same operations give the same answers and balances on SQLite and in memory."""
    outcomes = []
    for s in (SQLiteStore(str(tmp_path / "a.db")), MemoryStore()):
        await s.open()
        try:
            w = Wallet(s)
            await w.users("a", "b", "c")
            await w.coins("a", "b", "c", amount=50)
            g = await w.group("a", "b", "c")
            rp = await w.one(SendPacket(actor=w.ids["a"], group=g, amount=40, count=3, seed=5))
            ops = [
                pay(w, "b", "c", 30),
                pay(w, "b", "a", 30),
                ClaimPacket(actor=w.ids["c"], packet=rp.result["packet"]),
                ClaimPacket(actor=w.ids["b"], packet=rp.result["packet"]),
                pay(w, "c", "a", 60, key="z"),
                pay(w, "c", "a", 60, key="z"),
            ]
            answers = [
                (
                    op.error,
                    op.duplicate,
                    msgpack.packb(op.result, use_bin_type=True) if op.result is not None else None,
                )
                for op in await w.run(*ops)
            ]
            balances = [await w.balance(n) for n in ("a", "b", "c")]
            outcomes.append((_no_ts(answers), balances))
        finally:
            await s.close()
    assert outcomes[0] == outcomes[1]


def _no_ts(answers: list[Any]) -> list[Any]:
    out = []
    for err, dup, packed in answers:
        m = msgpack.unpackb(packed) if packed is not None else None
        if m is not None and "transfer" in m and isinstance(m["transfer"], dict):
            m["transfer"].pop("ts")
        out.append((err, dup, m))
    return out


async def test_pending_expiry_and_keys_survive_a_restart(tmp_path: Path) -> None:
    path = str(tmp_path / "r.db")
    s = SQLiteStore(path)
    await s.open()
    w = Wallet(s)
    await w.users("alice", "bob")
    await w.coins("alice", amount=100)
    a, b = w.ids["alice"], w.ids["bob"]
    await w.run(SetPrivacy(actor=b, coins="everyone"))
    h = await w.one(Hold(actor=a, debit=a, credit=b, amount=30, timeout_ms=40))
    first = await w.one(pay(w, "alice", "bob", 7, key="once"))
    assert first.error is None
    await s.close()
    s = SQLiteStore(path)
    await s.open()
    try:
        w2 = Wallet(s)
        w2.ids = w.ids
        t = h.result["transfer"]
        assert await s.next_expiry() == t["expires"]
        assert await w2.balance("alice") == Account(93, 30, 0)
        retry = await w2.one(pay(w2, "alice", "bob", 7, key="once"))
        assert retry.duplicate and retry.result == first.result
        await asyncio.sleep(max(0, t["expires"] - time.time() * 1000 + 2) / 1000)
        (due,) = await s.pendings_due(int(time.time() * 1000) + 1, 5)
        assert (await w2.one(ExpirePending(actor=0, pending=due))).result == {"expired": True}
        assert await w2.balance("alice") == Account(93)
        assert audit(await s.ledger_dump()) == []
    finally:
        await s.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_a_stored_key_the_caches_forgot_answers_its_retry(tmp_path: Path, kind: str) -> None:
    """Keys the writer does not hold are planned as absent and looked up in the commit
    (store/ledger.py): a stored one sends the batch back to be planned with its keys
    loaded, so its retry gets the first answer even where planning it afresh would be
    refused (no funds left), the other ops of the batch commit once, and other
    parameters are refused."""
    async with AsyncExitStack() as stack:
        s = await make_store(kind, tmp_path / "k.db", stack)
        await s.open()
        try:
            w = Wallet(s)
            await w.users("alice", "bob", "carol")
            await w.coins("alice", "bob", "carol", amount=10)
            first = await w.one(pay(w, "alice", "bob", 10, key="all"))
            assert first.error is None and first.result["balance"] == 0
            forget = getattr(s, "writer", None)
            assert forget is not None
            forget.cache.ledger.keys.clear()  # as if it were long ago, or before a restart
            lookups = s.stats.lookups
            retry, other, again, wrong = await w.run(
                pay(w, "alice", "bob", 10, key="all"),
                pay(w, "carol", "bob", 4, key="new"),
                pay(w, "carol", "bob", 4, key="new"),
                pay(w, "alice", "bob", 9, key="all"),
            )
            assert retry.duplicate and retry.result == first.result and retry.error is None
            assert other.error is None and not other.duplicate
            assert again.duplicate and again.result == other.result
            assert wrong.error == ErrorCode.IDEMPOTENCY_MISMATCH
            assert s.stats.lookups > lookups  # planned again once the key was found
            assert (await w.balance("alice"), await w.balance("carol")) == (Account(0), Account(6))
            assert await w.balance("bob") == Account(24)
        finally:
            await s.close()
