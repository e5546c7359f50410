"""`client.wallet`: Mi Coins (SPEC.md 25).

    w = await client.wallet()                        # balance, pending_out, pending_in
    await client.wallet.check_in()                   # the daily task's reward
    paid = await client.wallet.pay("bob", 30, memo="lunch")
    sent = await client.wallet.red_packet(100, 3, group=team)
    got = await client.wallet.claim(sent.packet)     # on bob's client
    async for t in client.wallet.history(): ...

Every request that moves coins carries an idempotency key: the facade makes one (or takes
the caller's `key`) and repeats the request with that same key until it has an answer: over
a reconnect, and after `5001 INTERNAL_ERROR` or `5002 UNAVAILABLE`, within the request
timeout. A retry of an answered key is answered again with `duplicate` true, so the coins
move once whatever happened to the connection. Changes on any of the user's devices arrive
as `WalletChanged` events; payments, red packets and gifts also as messages with an
`event` map in their conversation. Refusals raise RequestError: INSUFFICIENT_FUNDS,
NOT_ALLOWED, NOT_MEMBER, PACKET_EMPTY, PACKET_EXPIRED, ITEM_UNAVAILABLE, TASK_DONE, ...
"""

from __future__ import annotations

import asyncio
import builtins
import secrets
from collections.abc import AsyncIterator
from typing import TypeVar

from liaotian.protocol import ErrorCode, Message, RequestError
from liaotian.protocol.wallet import (
    CheckedIn,
    CheckIn,
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
    TaskEntry,
    TaskList,
    TransferEntry,
    TransferList,
)
from liaotian.protocol.wallet import Wallet as Balance

from .backoff import Backoff
from .facade import Facade
from .session import Session

__all__ = ["Balance", "Wallet", "keyed", "new_key"]

A = TypeVar("A", bound=Message)
_RETRIED = frozenset({ErrorCode.INTERNAL_ERROR, ErrorCode.UNAVAILABLE})


def new_key() -> str:
    """A fresh idempotency key: 22 random URL-safe characters."""
    return secrets.token_urlsafe(16)


async def keyed(session: Session, msg: Message, answer: type[A]) -> A:
    """A request with an idempotency key, repeated with that key until answered (the key
    makes every repetition safe); the shop's keyed requests use it too (shop.py)."""
    backoff = Backoff()
    async with asyncio.timeout(session.request_timeout):
        while True:
            try:
                return await session.request(msg, answer, retry=True, timeout=None)
            except RequestError as exc:
                if exc.code not in _RETRIED:
                    raise
            await asyncio.sleep(backoff.next_delay())


class Wallet(Facade):
    """Wallet requests of one client. Calling it (`await client.wallet()`) gets the
    balance."""

    __slots__ = ()

    async def __call__(self) -> Balance:
        return await self.balance()

    async def _keyed(self, msg: Message, answer: type[A]) -> A:
        return await keyed(self._session, msg, answer)

    # ------------------------------------------------------------------ reads

    async def balance(self) -> Balance:
        """`balance`, `pending_out` (reserved by unsettled red packets) and `pending_in`;
        spendable: balance - pending_out."""
        return await self._ask(GetWallet(rid=0), Balance, retry=True)

    async def page(
        self, limit: int | None = None, before: int | None = None
    ) -> tuple[builtins.list[TransferEntry], bool]:
        """One page of transfers, newest first, and whether older ones follow."""
        got = await self._ask(
            ListTransfers(rid=0, limit=limit, before=before), TransferList, retry=True
        )
        return builtins.list(got.transfers), got.more

    async def history(self, page_size: int | None = None) -> AsyncIterator[TransferEntry]:
        """Every transfer of this user's account, newest first, page by page."""
        before: int | None = None
        while True:
            page, more = await self.page(page_size, before)
            for t in page:
                yield t
            if not more or not page:
                return
            before = page[-1].id

    async def packet(self, packet: int) -> RedPacket:
        """A red packet of a conversation of yours, with its claims (NOT_MEMBER otherwise)."""
        return await self._ask(GetRedPacket(rid=0, packet=packet), RedPacket, retry=True)

    async def tasks(self) -> builtins.list[TaskEntry]:
        """The server's tasks with your completions in the current period."""
        return builtins.list((await self._ask(ListTasks(rid=0), TaskList, retry=True)).tasks)

    async def items(self) -> builtins.list[ItemEntry]:
        """Your items (F codes, invitation codes)."""
        return builtins.list((await self._ask(ListItems(rid=0), ItemList, retry=True)).items)

    # ------------------------------------------------------------------ writes

    async def pay(self, to: str, amount: int, memo: str = "", *, key: str | None = None) -> Paid:
        """Pay `amount` coins to `to` (their privacy `coins` decides; contacts by default).
        Refusals: INSUFFICIENT_FUNDS, NOT_ALLOWED, UNKNOWN_USER, IDEMPOTENCY_MISMATCH."""
        return await self._keyed(
            Pay(rid=0, to=to, amount=amount, memo=memo, key=key or new_key()), Paid
        )

    async def red_packet(
        self,
        amount: int,
        count: int,
        *,
        group: int | None = None,
        to: str | None = None,
        split: str = "random",
        memo: str = "",
        key: str | None = None,
    ) -> RedPacketSent:
        """A red packet of `amount` coins in `count` shares into `group`, or to the user
        `to` (one share). The unclaimed rest returns to you when it expires."""
        if (group is None) == (to is None):
            raise ValueError("give exactly one of group and to")
        return await self._keyed(
            RedPacketSend(
                rid=0,
                to=to or "",
                group=group,
                amount=amount,
                count=count,
                split=split,
                memo=memo,
                key=key or new_key(),
            ),
            RedPacketSent,
        )

    async def claim(self, packet: int) -> RedPacketClaimed:
        """Your share of a red packet (once: a second claim answers the same share).
        Refusals: NOT_MEMBER, PACKET_EMPTY, PACKET_EXPIRED."""
        return await self._keyed(RedPacketClaim(rid=0, packet=packet), RedPacketClaimed)

    async def check_in(self, *, key: str | None = None) -> CheckedIn:
        """Complete the check-in tasks (TASK_DONE when done for this period)."""
        return await self._keyed(CheckIn(rid=0, key=key or new_key()), CheckedIn)

    async def gift(self, code: str, to: str, *, key: str | None = None) -> ItemDone:
        """Give one of your items to a contact."""
        return await self._keyed(ItemGift(rid=0, code=code, to=to, key=key or new_key()), ItemDone)

    async def redeem(self, code: str, *, key: str | None = None) -> ItemDone:
        """Use one of your items, once."""
        return await self._keyed(ItemRedeem(rid=0, code=code, key=key or new_key()), ItemDone)
