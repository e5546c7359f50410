"""The wallet against a real server (port 0, its own database): check-in rewards, payments
with memos in the direct conversation, idempotency keys, red packets in a group claimed by
the others, expiry of the unclaimed rest (also across a restart), the first-message task
paid with the SEND, items given and redeemed, every change pushed to every device as a
WALLET entry, and the write budget."""

from __future__ import annotations

import json
from typing import Any

from liaotian.protocol import Error, ErrorCode, UpdateKind
from liaotian.protocol.social import GetPrivacy, Privacy, SetPrivacy
from liaotian.protocol.wallet import (
    CheckedIn,
    CheckIn,
    GetRedPacket,
    GetWallet,
    ItemDone,
    ItemGift,
    ItemList,
    ItemRedeem,
    ListItems,
    ListTasks,
    ListTransfers,
    Paid,
    Pay,
    RedPacket,
    RedPacketClaim,
    RedPacketClaimed,
    RedPacketSend,
    RedPacketSent,
    TaskList,
    TransferList,
    Wallet,
)
from liaotian.server.chat.audit import audit
from rawclient import messages_of
from socialclient import Net, SocialClient, make_contacts, social_server

TASKS = json.dumps(
    [
        {"name": "checkin", "trigger": "checkin", "reward": 100, "item": "fcode"},
        {"name": "first_message", "trigger": "message", "reward": 5},
    ]
)


async def wallet_entry(c: SocialClient) -> dict[str, Any]:
    upd = await c.entry(UpdateKind.WALLET)
    return upd.data


async def balance(c: SocialClient) -> int:
    w = await c.get(GetWallet, Wallet)
    return int(w.balance)


async def check_in(c: SocialClient) -> CheckedIn:
    ans = await c.get(CheckIn, CheckedIn, key=f"ci-{c.user}")
    for _ in range(len(ans.tasks) + sum(1 for t in ans.tasks if t.item)):
        await wallet_entry(c)  # the reward, and the item it grants
    return ans


async def sound(net: Net) -> None:
    assert net.srv.server is not None
    store = net.srv.server.store
    await store.drain()
    assert audit(await store.ledger_dump(), net.srv.server.policy.wallet.tasks) == []


async def test_check_in_then_pay_a_contact_seen_on_every_device(tmp_path) -> None:
    async with social_server(tmp_path, wallet_tasks=TASKS) as net:
        alice, bob = await net.users("alice", "bob")
        phone = await net.user("alice", "phone")
        ans = await alice.get(CheckIn, CheckedIn, key="day-1")
        assert [(t.task, t.reward) for t in ans.tasks] == [("checkin", 100)]
        assert ans.balance == 100 and ans.tasks[0].transfer and ans.tasks[0].item
        for c in (alice, phone):  # the reward, and the F code the task grants
            e = await wallet_entry(c)
            assert e["event"] == "transfer" and e["balance"] == 100
            assert e["transfer"]["from"] == "*rewards" and e["transfer"]["memo"] == "checkin"
            assert (await wallet_entry(c))["change"] == "granted"
        again = await alice.get(CheckIn, CheckedIn, key="day-1")
        assert again.duplicate and again.tasks == ans.tasks
        await alice.fail(CheckIn, ErrorCode.TASK_DONE, key="day-1-again")
        # bob takes coins from contacts only (the default)
        await alice.fail(Pay, ErrorCode.NOT_ALLOWED, to="bob", amount=10, key="p1")
        await make_contacts(alice, bob)
        for _ in range(2):
            await phone.entry(UpdateKind.CONTACT)
        paid = await alice.get(Pay, Paid, to="bob", amount=30, key="p1", memo="lunch")
        assert (paid.balance, paid.transfer.amount, paid.transfer.memo) == (70, 30, "lunch")
        # bob: his WALLET entry, then the event in the direct conversation
        assert (await wallet_entry(bob))["balance"] == 30
        ev = await bob.event("coins")
        assert (
            ev.event
            == {"type": "coins", "transfer": paid.transfer.id, "amount": 30, "memo": "lunch"}
            and ev.conv == paid.conv
            and ev.pos == paid.pos
        )
        # alice's phone sees the same two
        assert (await wallet_entry(phone))["balance"] == 70
        assert (await phone.event("coins")).pos == paid.pos
        retry = await alice.get(Pay, Paid, to="bob", amount=30, key="p1", memo="lunch")
        assert retry.duplicate and retry.transfer == paid.transfer
        await alice.fail(Pay, ErrorCode.IDEMPOTENCY_MISMATCH, to="bob", amount=31, key="p1")
        await alice.fail(Pay, ErrorCode.INSUFFICIENT_FUNDS, to="bob", amount=71, key="p2")
        assert await balance(alice) == 70 and await balance(bob) == 30
        page = await alice.get(ListTransfers, TransferList, limit=1)
        assert page.more and page.transfers[0].id == paid.transfer.id
        rest = await alice.get(ListTransfers, TransferList, before=paid.transfer.id)
        assert [t.code for t in rest.transfers] == ["reward"] and not rest.more
        await bob.assert_no_push()
        await sound(net)


async def test_a_red_packet_in_a_group_of_three(tmp_path) -> None:
    async with social_server(tmp_path, wallet_tasks=TASKS) as net:
        alice, bob, carol = await net.users("alice", "bob", "carol")
        await check_in(alice)
        g = (await alice.create_group("trip", ["bob", "carol"])).group
        for c in (alice, bob, carol):
            await c.event("created")
        sent = await alice.get(
            RedPacketSend,
            RedPacketSent,
            to="",
            group=g,
            amount=50,
            count=2,
            key="rp1",
            memo="gong xi",
        )
        assert (sent.balance, sent.pending_out, sent.transfer.phase) == (100, 50, "pending")
        for c in (bob, carol):
            ev = (await c.event("red_packet")).event
            assert ev is not None and ev["packet"] == sent.packet and ev["count"] == 2
        assert (await wallet_entry(alice))["pending_out"] == 50
        await alice.event("red_packet")
        outsider = await net.user("dave", register=True)
        await outsider.fail(RedPacketClaim, ErrorCode.NOT_MEMBER, packet=sent.packet)
        got_b = await bob.get(RedPacketClaim, RedPacketClaimed, packet=sent.packet)
        got_c = await carol.get(RedPacketClaim, RedPacketClaimed, packet=sent.packet)
        assert got_b.amount + got_c.amount == 50 and min(got_b.amount, got_c.amount) >= 1
        assert (got_b.left, got_c.left) == (1, 0)
        again = await bob.get(RedPacketClaim, RedPacketClaimed, packet=sent.packet)
        assert again.duplicate and again.amount == got_b.amount
        await alice.fail(RedPacketClaim, ErrorCode.PACKET_EMPTY, packet=sent.packet)
        info = await carol.get(GetRedPacket, RedPacket, packet=sent.packet)
        assert info.state == "emptied" and [(x.user, x.amount) for x in info.claims] == [
            ("bob", got_b.amount),
            ("carol", got_c.amount),
        ]
        await outsider.fail(GetRedPacket, ErrorCode.NOT_MEMBER, packet=sent.packet)
        # every member saw both claims as events, each claimer their share, alice the
        # settlement of her reservation (posted for the 50 claimed)
        for c, own in ((alice, "post"), (bob, "posted"), (carol, "posted")):
            got = [
                u.data if u.kind == UpdateKind.WALLET else u.message.event
                for u in await c.entries(3)
                if u.kind == UpdateKind.WALLET or u.message
            ]
            claims = [e["amount"] for e in got if e.get("type") == "red_packet_claim"]
            assert claims == [got_b.amount, got_c.amount], (c.user, got)
            (mine,) = [e for e in got if e.get("event") == "transfer"]
            assert mine["transfer"]["phase"] == own
        assert await balance(alice) == 50
        assert (await balance(bob), await balance(carol)) == (got_b.amount, got_c.amount)
        await sound(net)


async def test_the_unclaimed_rest_returns_at_expiry_even_across_a_restart(tmp_path) -> None:
    async with social_server(tmp_path, wallet_tasks=TASKS, packet_ttl=1.0) as net:
        alice, bob = await net.users("alice", "bob")
        await check_in(alice)
        g = (await alice.create_group("g", ["bob"])).group
        sent = await alice.get(
            RedPacketSend,
            RedPacketSent,
            to="",
            group=g,
            amount=60,
            count=3,
            split="equal",
            key="rp",
        )
        got = await bob.get(RedPacketClaim, RedPacketClaimed, packet=sent.packet)
        assert got.amount == 20
        await alice.close()
        await bob.close()
        await net.srv.restart()  # the expiry is due in the database, not in memory
        alice = await net.user("alice", sync=False)

        def settled(u: Any) -> bool:
            t = u.data.get("transfer", {}) if u.kind == UpdateKind.WALLET else {}
            return bool(t.get("ref") == sent.packet and t.get("phase") == "post")

        # the settlement is in the log already (synced), or comes as a push when due
        if not any(settled(u) for u in messages_of(await alice.sync_all())):
            assert settled(await alice.entry(UpdateKind.WALLET))
        assert await balance(alice) == 80
        info = await alice.get(GetRedPacket, RedPacket, packet=sent.packet)
        assert info.state == "expired"
        await alice.fail(RedPacketClaim, ErrorCode.PACKET_EXPIRED, packet=sent.packet)
        await sound(net)


async def test_the_first_message_of_the_day_pays_with_the_send(tmp_path) -> None:
    async with social_server(tmp_path, wallet_tasks=TASKS) as net:
        alice, _bob = await net.users("alice", "bob")
        await alice.send("bob", "hello", cmid="m1")
        e = await wallet_entry(alice)  # pushed with the SENT of that send
        assert e["transfer"]["memo"] == "first_message" and e["balance"] == 5
        await alice.send("bob", "again", cmid="m2")
        await alice.send("bob", "hello", cmid="m1")  # a retry: no second reward
        await alice.assert_no_push()
        assert await balance(alice) == 5
        tasks = await alice.get(ListTasks, TaskList)
        assert [(t.name, t.done) for t in tasks.tasks] == [("checkin", 0), ("first_message", 1)]
        await sound(net)


async def test_items_are_given_to_contacts_and_redeemed_once(tmp_path) -> None:
    async with social_server(tmp_path, wallet_tasks=TASKS) as net:
        alice, bob = await net.users("alice", "bob")
        code = (await check_in(alice)).tasks[0].item
        assert code is not None
        (item,) = (await alice.get(ListItems, ItemList)).items
        assert (item.code, item.kind, item.source) == (code, "fcode", "task:checkin")
        await alice.expect_error(
            ItemGift(rid=alice.rid(), code=code, to="bob"), ErrorCode.NOT_ALLOWED
        )
        await make_contacts(alice, bob)
        done = await alice.get(ItemGift, ItemDone, code=code, to="bob", key="g1")
        assert done.item.code == code
        assert (await wallet_entry(bob))["change"] == "received"
        assert (await bob.event("item")).event == {"type": "item", "kind": "fcode"}
        await alice.expect_error(ItemRedeem(rid=alice.rid(), code=code), ErrorCode.ITEM_UNAVAILABLE)
        used = await bob.get(ItemRedeem, ItemDone, code=code)
        assert used.item.redeemed
        await bob.expect_error(ItemRedeem(rid=bob.rid(), code=code), ErrorCode.ITEM_UNAVAILABLE)
        assert (await alice.get(ListItems, ItemList)).items == ()


async def test_privacy_coins_and_the_write_budget(tmp_path) -> None:
    async with social_server(
        tmp_path, wallet_tasks=TASKS, write_burst=3.0, write_rate=0.001
    ) as net:
        alice, bob = await net.users("alice", "bob")
        assert (await bob.get(GetPrivacy, Privacy)).coins == "contacts"
        await bob.ok(SetPrivacy, coins="everyone")
        assert (await bob.get(GetPrivacy, Privacy)).coins == "everyone"
        await check_in(alice)  # 1 write
        await alice.get(Pay, Paid, to="bob", amount=1, key="a")  # 2
        await alice.get(Pay, Paid, to="bob", amount=1, key="b")  # 3
        refused = await alice.fail(Pay, ErrorCode.RATE_LIMITED, to="bob", amount=1, key="c")
        assert isinstance(refused, Error) and refused.retry_after
        assert await balance(alice) == 98


async def test_registering_with_an_invitation_code_pays_its_owner(tmp_path) -> None:
    tasks = json.dumps(
        [
            {"name": "checkin", "trigger": "checkin", "reward": 1, "item": "invite"},
            {"name": "invite", "trigger": "invite", "reward": 50, "cap": 2, "period": "ever"},
        ]
    )
    async with social_server(tmp_path, wallet_tasks=tasks) as net:
        alice = (await net.users("alice"))[0]
        code = (await check_in(alice)).tasks[0].item
        assert code is not None
        c = await net.anonymous()
        from liaotian.protocol import Register, Registered

        assert isinstance(
            await c.request(
                Register(rid=c.rid(), username="carol", password="pw-carol-123", invite=code)
            ),
            Registered,
        )
        assert (await wallet_entry(alice))["change"] == "redeemed"
        e = await wallet_entry(alice)  # the reward for the invitation
        assert e["transfer"]["memo"] == "invite" and e["balance"] == 51
        # a used code does not stop a registration, and pays nothing more
        assert isinstance(
            await c.request(
                Register(rid=c.rid(), username="dave", password="pw-dave-1234", invite=code)
            ),
            Registered,
        )
        await sound(net)  # every write so far committed (the refused invitation too)
        await alice.assert_no_push()
        assert await balance(alice) == 51
