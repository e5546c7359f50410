"""The wallet (SPEC.md 25): PAY, RED_PACKET_SEND/CLAIM, CHECK_IN, ITEM_GIFT/REDEEM become
operations (chat/ops.py) planned by chat/rules/wallet.py, packets.py and tasks.py inside
the group commit, answered after it (`answers`, for the fan-out); GET_WALLET,
LIST_TRANSFERS, GET_RED_PACKET, LIST_TASKS and LIST_ITEMS are reads. Every request that
writes is charged to the user's write budget first (throttle.py), like any other write.

`Expiry` is the server's side of pending transfers that time out: it asks the store when
the next one is due (the database remembers them, so a restart loses none), submits an
ExpirePending for each one due, and sleeps until the next; the rules decide (the core
reads no clock: the batch's time is what counts).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

from liaotian.protocol import ErrorCode, MessageType, Register, Registered, RequestError
from liaotian.protocol.text import check_field
from liaotian.protocol.wallet import (
    CheckedIn,
    CheckIn,
    ClaimEntry,
    GetRedPacket,
    GetWallet,
    ItemDone,
    ItemEntry,
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
    TaskDone,
    TaskEntry,
    TaskList,
    TransferEntry,
    TransferList,
    Wallet,
)

from ..chat import ops
from ..chat.ledger import PACKET_STATES, SPLIT_NAMES, Account, Item, Transfer
from ..chat.policy import Policy
from ..chat.rules.tasks import item_map
from ..chat.rules.wallet import transfer_map
from ..net.peer import Peer
from ..net.router import Router
from ..store import Store, StoreClosed
from .throttle import WriteBudget

log = logging.getLogger("liaotian.wallet")
TRANSFERS_PAGE = 50  # LIST_TRANSFERS entries when the request gives no limit
EXPIRE_BATCH = 500  # ExpirePending submitted per round at most
EXPIRY_IDLE = 60.0  # seconds the expiry loop sleeps with nothing due sooner


def now_ms() -> int:
    return int(time.time() * 1000)


def _names(usernames: dict[int, str]) -> Callable[[int], str]:
    return lambda uid: usernames.get(uid, "")


def transfer_entry(t: Transfer, usernames: dict[int, str]) -> TransferEntry:
    return TransferEntry.from_wire(transfer_map(_names(usernames), t), 0)


def item_entry(item: Item) -> ItemEntry:
    return ItemEntry.from_wire(item_map(item), 0)


def _balances(r: dict[str, Any]) -> dict[str, int]:
    return {"balance": r["balance"], "pending_out": r["pending_out"], "pending_in": r["pending_in"]}


# ---------------------------------------------------------------------------- answers


def answer_paid(op: ops.Pay) -> tuple[bytes, int]:
    r = op.result
    assert r is not None
    return Paid(
        rid=op.rid,
        transfer=TransferEntry.from_wire(r["transfer"], op.rid),
        conv=r["conv"],
        pos=r["pos"],
        duplicate=op.duplicate,
        **_balances(r),
    ).encode(), int(MessageType.PAID)


def answer_packet_sent(op: ops.SendPacket) -> tuple[bytes, int]:
    r = op.result
    assert r is not None
    return RedPacketSent(
        rid=op.rid,
        packet=r["packet"],
        conv=r["conv"],
        pos=r["pos"],
        expires=r["expires"],
        transfer=TransferEntry.from_wire(r["transfer"], op.rid),
        duplicate=op.duplicate,
        **_balances(r),
    ).encode(), int(MessageType.RED_PACKET_SENT)


def answer_claimed(op: ops.ClaimPacket) -> tuple[bytes, int]:
    r = op.result
    assert r is not None
    return RedPacketClaimed(
        rid=op.rid,
        packet=r["packet"],
        amount=r["amount"],
        transfer=r["transfer"],
        left=r["left"],
        duplicate=op.duplicate,
    ).encode(), int(MessageType.RED_PACKET_CLAIMED)


def answer_checked_in(op: ops.CheckIn) -> tuple[bytes, int]:
    r = op.result
    assert r is not None
    tasks = tuple(TaskDone.from_wire(t, op.rid) for t in r["tasks"])
    return CheckedIn(rid=op.rid, tasks=tasks, duplicate=op.duplicate, **_balances(r)).encode(), int(
        MessageType.CHECKED_IN
    )


def answer_registered(op: ops.Register) -> tuple[bytes, int]:
    log.info(
        "registered %s with an invitation code (inviter %s)",
        op.username,
        (op.result or {}).get("inviter"),
    )
    return Registered(rid=op.rid, user=op.username).encode(), int(MessageType.REGISTERED)


def answer_item(op: ops.GiftItem | ops.RedeemItem) -> tuple[bytes, int]:
    r = op.result
    assert r is not None
    return ItemDone(
        rid=op.rid, item=ItemEntry.from_wire(r["item"], op.rid), duplicate=op.duplicate
    ).encode(), int(MessageType.ITEM_DONE)


def answers(expiry: Expiry) -> dict[type, Callable[[Any], tuple[bytes, int]]]:
    """Operation type -> the frame that answers it (for the fan-out's answer_with); a red
    packet's answer also tells `expiry` when it is due."""

    def packet_sent(op: ops.SendPacket) -> tuple[bytes, int]:
        if op.result is not None:
            expiry.soon(op.result["expires"])
        return answer_packet_sent(op)

    return {
        ops.Pay: answer_paid,
        ops.SendPacket: packet_sent,
        ops.ClaimPacket: answer_claimed,
        ops.CheckIn: answer_checked_in,
        ops.GiftItem: answer_item,
        ops.RedeemItem: answer_item,
        ops.Register: answer_registered,
    }


# ---------------------------------------------------------------------------- requests


class WalletHandlers:
    def __init__(
        self,
        store: Store,
        writes: WriteBudget,
        policy: Policy,
        clock: Callable[[], float],
        *,
        seed: Callable[[], int] = lambda: secrets.randbits(63),
    ) -> None:
        self.store = store
        self.writes = writes
        self.policy = policy
        self.clock = clock  # monotonic seconds (the loop's)
        self.seed = seed  # a red packet's draws (the core takes no randomness of its own)

    def route(self, r: Router) -> None:
        r.route(GetWallet, self.get_wallet)
        r.route(ListTransfers, self.list_transfers)
        r.route(Pay, self.pay)
        r.route(RedPacketSend, self.send_packet)
        r.route(RedPacketClaim, self.claim)
        r.route(GetRedPacket, self.get_packet)
        r.route(CheckIn, self.check_in)
        r.route(ListTasks, self.list_tasks)
        r.route(ListItems, self.list_items)
        r.route(ItemGift, self.gift)
        r.route(ItemRedeem, self.redeem)

    def _submit(self, conn: Peer, op: ops.WalletOp) -> None:
        """Charge the write budget, then queue the op (answered after its commit)."""
        self.writes.charge(conn.user_id, self.clock())
        self.store.submit(op)

    def _base(self, conn: Peer, msg: Any) -> dict[str, Any]:
        return {"actor": conn.user_id, "session": conn.id, "rid": msg.rid, "policy": self.policy}

    # ------------------------------------------------------------------ writes

    def pay(self, conn: Peer, msg: Pay) -> None:
        check_field("memo", msg.memo)  # shown to both users
        self._submit(
            conn,
            ops.Pay(
                **self._base(conn, msg), to=msg.to, amount=msg.amount, memo=msg.memo, key=msg.key
            ),
        )

    def send_packet(self, conn: Peer, msg: RedPacketSend) -> None:
        check_field("memo", msg.memo)
        self._submit(
            conn,
            ops.SendPacket(
                **self._base(conn, msg),
                amount=msg.amount,
                count=msg.count,
                split=msg.split,
                memo=msg.memo,
                group=msg.group,
                to=msg.to,
                key=msg.key,
                seed=self.seed(),
            ),
        )

    def claim(self, conn: Peer, msg: RedPacketClaim) -> None:
        self._submit(conn, ops.ClaimPacket(**self._base(conn, msg), packet=msg.packet))

    def check_in(self, conn: Peer, msg: CheckIn) -> None:
        self._submit(conn, ops.CheckIn(**self._base(conn, msg), key=msg.key or ""))

    def gift(self, conn: Peer, msg: ItemGift) -> None:
        self._submit(
            conn, ops.GiftItem(**self._base(conn, msg), code=msg.code, to=msg.to, key=msg.key or "")
        )

    def redeem(self, conn: Peer, msg: ItemRedeem) -> None:
        self._submit(
            conn, ops.RedeemItem(**self._base(conn, msg), code=msg.code, key=msg.key or "")
        )

    def register_invited(self, conn: Peer, msg: Register, password_hash: str) -> None:
        """REGISTER with an invitation code (the accounts handler's, the password hashed):
        the account, the code redeemed and its owner's "invite" rewards are one operation,
        so one commit (a crash loses all of it or none; an unknown or used code registers
        the user without a reward); REGISTERED or USERNAME_TAKEN answers after it."""
        op = ops.Register(
            actor=0,
            session=conn.id,
            rid=msg.rid,
            policy=self.policy,
            username=msg.username,
            password_hash=password_hash,
            code=msg.invite or "",
        )
        self.store.submit(op)

    # ------------------------------------------------------------------ reads

    async def get_wallet(self, conn: Peer, msg: GetWallet) -> None:
        a: Account = await self.store.account_of(conn.user_id)
        conn.send(
            Wallet(
                rid=msg.rid, balance=a.balance, pending_out=a.pending_out, pending_in=a.pending_in
            )
        )

    async def list_transfers(self, conn: Peer, msg: ListTransfers) -> None:
        limit = msg.limit or TRANSFERS_PAGE
        rows = await self.store.transfers_of(conn.user_id, msg.before, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        names = await self.store.usernames({a for t in rows for a in (t.debit, t.credit) if a > 0})
        conn.send(
            TransferList(
                rid=msg.rid, more=more, transfers=tuple(transfer_entry(t, names) for t in rows)
            )
        )

    async def get_packet(self, conn: Peer, msg: GetRedPacket) -> None:
        """Members of its conversation see a packet and who claimed what."""
        p = await self.store.packet_of(msg.packet)
        uid = conn.user_id
        member = False
        if p is not None and p.peer:
            member = uid in (p.sender, p.peer)
        elif p is not None:
            g = await self.store.group_state(p.conv)
            member = g is not None and uid in g.members
        if p is None or not member:
            raise RequestError(ErrorCode.NOT_MEMBER)
        names = await self.store.usernames([p.sender, *p.claims])
        conn.send(
            RedPacket(
                rid=msg.rid,
                packet=p.id,
                sender=names.get(p.sender, ""),
                conv=p.conv,
                amount=p.amount,
                count=p.count,
                split=SPLIT_NAMES[p.split],
                expires=p.expires,
                state=PACKET_STATES[p.state],
                memo=p.memo or None,
                claims=tuple(
                    ClaimEntry(user=names.get(u, ""), amount=a) for u, (a, _t) in p.claims.items()
                ),
            )
        )

    async def list_tasks(self, conn: Peer, msg: ListTasks) -> None:
        progress = await self.store.task_progress_of(conn.user_id)
        now = now_ms()
        out = []
        for t in self.policy.wallet.tasks:
            period, count = progress.get(t.name, (-1, 0))
            out.append(
                TaskEntry(
                    name=t.name,
                    trigger=t.trigger,
                    reward=t.reward,
                    period=t.period_ms,
                    cap=t.cap,
                    done=count if period == t.period(now) else 0,
                    item=t.item or None,
                )
            )
        conn.send(TaskList(rid=msg.rid, tasks=tuple(out)))

    async def list_items(self, conn: Peer, msg: ListItems) -> None:
        items = await self.store.items_of(conn.user_id)
        conn.send(ItemList(rid=msg.rid, items=tuple(item_entry(i) for i in items)))


# ---------------------------------------------------------------------------- expiry


class Expiry:
    """Submits ExpirePending for every pending transfer whose timeout has passed."""

    def __init__(self, store: Store, policy: Policy, clock_ms: Callable[[], int] = now_ms) -> None:
        self.store = store
        self.policy = policy
        self.clock_ms = clock_ms
        # longest sleep: a packet's answer wakes it (when its sender is still connected)
        self.idle = min(EXPIRY_IDLE, policy.wallet.packet_ttl_ms / 1000)
        self._wake = asyncio.Event()
        self._next: int | None = None  # the earliest timeout the loop sleeps until

    def soon(self, expires: int) -> None:
        """A pending transfer timing out at `expires` (ms) was committed."""
        if self._next is None or expires < self._next:
            self._wake.set()

    async def run_once(self) -> int:
        """Submit what is due now and wait for it to commit; how many were submitted."""
        due = await self.store.pendings_due(self.clock_ms() + 1, EXPIRE_BATCH)
        for tid in due:
            self.store.submit(ops.ExpirePending(actor=0, pending=tid, policy=self.policy))
        if due:
            await self.store.drain()
        return len(due)

    async def run(self) -> None:
        while True:
            try:
                if await self.run_once() == EXPIRE_BATCH:
                    continue
                self._next = await self.store.next_expiry()
            except StoreClosed:
                return
            except Exception:
                log.exception("expiring pending transfers failed")
                self._next = None
            wait = (
                self.idle
                if self._next is None
                else min(max(self._next - self.clock_ms(), 0) / 1000, self.idle)
            )
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)
