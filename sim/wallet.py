"""The wallet in the simulation: check-ins, payments, red packets and their claims, drawn
by the run's steps like any other action, with the ledger's invariants checked after
every step from the committed state (the store that survives a crash).

Invariants (their names appear in failure reports, see oracle.py):

- `wallet-ledger`: chat/audit.py over the store's whole ledger finds nothing: the sum of
  all accounts is constant apart from the audited issuance, no balance is negative, each
  idempotency key made at most one transfer, a red packet never paid out more than it
  holds and an emptied or expired one left every unit claimed or refunded, a task paid at
  most its cap per period.
- `wallet-key-once`: every answer a client got for one (user, key) names the same
  transfer (a retry, on any device, after any fault, gets the first answer).
- `wallet-claim-once`: a member's claims of one packet all name the same share.

Requests carry keys drawn from a small pool per user, so retries of the same key (from
other devices too, and across crashes and restarts) are frequent.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from liaotian.protocol import ErrorCode, Message
from liaotian.protocol.messages import Error
from liaotian.protocol.wallet import (
    CheckIn,
    Paid,
    Pay,
    RedPacketClaim,
    RedPacketClaimed,
    RedPacketSend,
    RedPacketSent,
)
from liaotian.server.chat.audit import audit

if TYPE_CHECKING:
    from .world import World

# a daily check-in (the default catalogue's) and the first message of each day
SIM_TASKS = (
    '[{"name": "checkin", "trigger": "checkin", "reward": 300},'
    ' {"name": "first", "trigger": "message", "reward": 5}]'
)


class Wallet:
    """The wallet actions of one run and what their answers promised."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.packets: list[tuple[int, int]] = []  # (group, packet) sent
        self.keys: dict[tuple[str, str], int] = {}  # (user, key) -> transfer id answered
        self.claims: dict[tuple[str, int], int] = {}  # (user, packet) -> share answered
        self.checks = 0

    # ------------------------------------------------------------------ actions

    def _device(self, srng: random.Random) -> Any:
        d = self.world._live_device(srng)
        return d if d is not None and d.conn is not None else None

    def _answered(self, label: str, what: str, m: Message) -> None:
        result = ErrorCode(m.code).name if isinstance(m, Error) else type(m).__name__
        self.world.trace(f"{label} {what}: {result}")

    def _key_answer(self, user: str, key: str, transfer: int, label: str) -> None:
        first = self.keys.setdefault((user, key), transfer)
        if first != transfer:
            self.world.oracle.fail(
                "wallet-key-once",
                f"{label}: key {key!r} of {user} answered transfer {transfer}, first {first}",
            )

    def check_in(self, srng: random.Random) -> str:
        d = self._device(srng)
        if d is None:
            return "-no device online to check in"
        user, key = d.user.name, f"ci{srng.randint(0, 3)}"

        def answer(m: Message) -> None:
            self._answered(d.label, f"check-in {key}", m)

        d.conn.request(lambda rid: CheckIn(rid=rid, key=key), answer)
        return f"{d.label} checks in ({user}, key {key})"

    def pay(self, srng: random.Random) -> str:
        d = self._device(srng)
        if d is None:
            return "-no device online to pay"
        user = d.user.name
        to = srng.choice([u.name for u in self.world.users if u.name != user])
        key = f"p{srng.randint(0, 5)}"
        amount = srng.randint(1, 40)  # the same key with another amount: a mismatch

        def answer(m: Message) -> None:
            self._answered(d.label, f"pay {amount} to {to} key {key}", m)
            if isinstance(m, Paid):
                self._key_answer(user, key, m.transfer.id, d.label)

        d.conn.request(lambda rid: Pay(rid=rid, to=to, amount=amount, memo="sim", key=key), answer)
        return f"{d.label} pays {amount} to {to} (key {key})"

    def red_packet(self, srng: random.Random) -> str:
        found = self.world._group_actor(srng)
        if found is None:
            return "-nobody to send a red packet"
        d, group, _members = found
        conn = d.conn
        if conn is None:
            return "-the sender's device went offline"
        user, key = d.user.name, f"rp{srng.randint(0, 3)}"
        count = srng.randint(1, 4)
        amount = srng.randint(count, 60)
        split = srng.choice(("equal", "random"))

        def answer(m: Message) -> None:
            self._answered(d.label, f"red packet {amount}/{count} in {group} key {key}", m)
            if isinstance(m, RedPacketSent):
                self._key_answer(user, key, m.transfer.id, d.label)
                if not m.duplicate:
                    self.packets.append((group, m.packet))

        conn.request(
            lambda rid: RedPacketSend(
                rid=rid, to="", group=group, amount=amount, count=count, split=split, key=key
            ),
            answer,
        )
        return f"{d.label} sends a red packet of {amount} in {count} to group {group}"

    def claim(self, srng: random.Random) -> str:
        if not self.packets:
            return self.red_packet(srng)
        group, packet = srng.choice(self.packets)
        members = self.world._members(group)
        names = members if members and srng.random() < 0.9 else [u.name for u in self.world.users]
        d = self.world._live_device(srng, self.world._user(srng.choice(names)))
        if d is None or d.conn is None:
            return "-no member online to claim"
        user = d.user.name

        def answer(m: Message) -> None:
            self._answered(d.label, f"claim packet {packet}", m)
            if isinstance(m, RedPacketClaimed):
                first = self.claims.setdefault((user, packet), m.amount)
                if first != m.amount:
                    self.world.oracle.fail(
                        "wallet-claim-once",
                        f"{d.label}: packet {packet} paid {user} {m.amount}, first {first}",
                    )

        d.conn.request(lambda rid: RedPacketClaim(rid=rid, packet=packet), answer)
        return f"{d.label} claims packet {packet} of group {group}"

    # ------------------------------------------------------------------ invariants

    async def check(self) -> None:
        """The ledger's invariants over the committed state (`wallet-ledger`)."""
        store, server = self.world.store, self.world.server
        if store is None or server is None:
            return
        self.checks += 1
        bad = audit(await store.ledger_dump(), server.policy.wallet.tasks)
        if bad:
            self.world.oracle.fail("wallet-ledger", "; ".join(bad[:5]))
