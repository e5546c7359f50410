"""The writer's caches: the committed state loaded so far, and what is not in rows yet.

`Caches` is the overlay's committed state (overlay.Committed) for the rows loaded so far,
filled from the loaders' rows (sql.py) before a batch is planned, and published after
each commit; plus the per-user log floors and the dedup cache of recent sends. Only the
writer (writer.py) fills or publishes them; reads (reads.py) use what they hold and never
fill them (a read racing a commit could plant a stale value), except usernames, which
never change.

`Positions` holds the positions devices acknowledged that no commit holds yet: recorded
on the loop, taken by the next commit, given back if it fails.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from ...chat.ledger import Account, Item, KeyRecord, Packet, Transfer
from ...chat.model import GroupState, Member, Social
from ...chat.ops import SendResult
from ..ledger import LedgerState
from ..overlay import Committed
from .sql import Rows, packet_of_row

DEDUP_ENTRIES = 200_000
CHANNEL_ENTRIES = 200_000  # channel rows held (members, posts, likes, ...) before a trim
KEY_ENTRIES = 200_000  # idempotency keys held (the oldest are read again when asked)
LedgerAsked = tuple[list[int], list[tuple[int, str]], list[int], list[int], list[int], list[str]]


class BoundedKeys(OrderedDict[tuple[int, str], KeyRecord | None]):
    """Idempotency keys loaded or written, the oldest forgotten past `bound` (they are in
    the database: a later need loads them again)."""

    def __init__(self, bound: int = KEY_ENTRIES) -> None:
        super().__init__()
        self.bound = bound

    def __setitem__(self, key: tuple[int, str], value: KeyRecord | None) -> None:
        super().__setitem__(key, value)
        while len(self) > self.bound:
            self.popitem(last=False)


def _lazy_ledger() -> LedgerState:
    return LedgerState(complete=False, keys=BoundedKeys())


@dataclass(slots=True, eq=False)
class Caches(Committed):
    floors: dict[int, int] = field(default_factory=dict)  # user -> newest seq pruned
    # (sender, cmid) -> the answer a retry gets; bounded, oldest evicted first. Plain
    # tuples (id, conv, pos, ts, sender seq): the collector stops tracking tuples of
    # numbers, so a full cache does not slow every garbage collection down.
    dedup: OrderedDict[tuple[int, str], tuple[int, int, int, int, int]] = field(
        default_factory=OrderedDict
    )
    dedup_max: int = DEDUP_ENTRIES
    complete: bool = False  # channel rows are loaded by key (Committed.ch)
    ledger: LedgerState = field(default_factory=_lazy_ledger)  # loaded lazily

    channel_max: int = CHANNEL_ENTRIES
    channel_trims: int = 0  # how often trim_channels forgot them (tests, statistics)

    def trim_channels(self) -> bool:
        """Forget the loaded channel rows once they exceed `channel_max` (a 100,000-member
        channel would otherwise keep every member who ever posted, liked or read). They are
        loaded by key (`complete` is False), so a later batch reads what it needs again.
        Only between batches: the writer calls it when nothing is planned on the cache."""
        ch = self.ch
        held = (
            len(ch.members)
            + len(ch.bans)
            + len(ch.posts)
            + len(ch.likes)
            + len(ch.comments)
            + len(ch.post_cmids)
            + len(ch.channels)
        )
        if held <= self.channel_max:
            return False
        for table in (ch.members, ch.bans, ch.posts, ch.likes, ch.comments, ch.post_cmids):
            table.clear()
        if len(ch.channels) > self.channel_max // 2:
            ch.channels.clear()
        self.channel_trims += 1
        return True

    # ------------------------------------------------------------------ filling

    def apply(
        self,
        names: Rows,
        heads: Rows,
        social: tuple[Rows, ...],
        pairs: Rows,
        groups: tuple[Rows, Rows],
        convs: Rows,
    ) -> None:
        """Fill in what sql.fetch_* read (committed state: nothing runs meanwhile)."""
        for name, uid in names:
            self.add_user(name, uid)
        self.apply_heads(heads)
        settings, relations, incoming = social
        found: dict[int, Social] = {}
        for uid, pres, prof, msgs, grps, rcpts, coins, near, owned, joined in settings:
            found[uid] = Social(
                presence=pres,
                profile=prof,
                messages=msgs,
                groups=grps,
                receipts=rcpts,
                coins=coins,
                nearby=near,
                groups_owned=owned,
                groups_joined=joined,
            )
        for uid, other, kind in relations:
            found[uid].add_relation(other, kind)
        for uid, requester in incoming:
            found[uid].incoming.add(requester)
        self.social.update(found)
        for a, b, cid, last in pairs:
            self.direct[(a, b)] = cid
            self.conv_last[cid] = last
        group_rows, member_rows = groups
        new_groups: dict[int, GroupState] = {}
        for conv, name, topic, owner, created in group_rows:
            new_groups[conv] = GroupState(conv, name, topic, owner, created)
        for conv, uid, role, jpos, joined in member_rows:
            new_groups[conv].members[uid] = Member(role, jpos, joined)
        self.groups.update(new_groups)
        for conv, last in convs:
            self.conv_last[conv] = last

    def apply_ledger(self, asked: LedgerAsked, found: tuple[Rows, ...]) -> None:
        """Fill in what sql.fetch_ledger read; what was asked and not found is empty (an
        account with nothing, no such key, a closed pending transfer, ...)."""
        led = self.ledger
        accounts, keys, pendings, packets, tasks, items = asked
        a_rows, k_rows, p_rows, pk_rows, c_rows, t_rows, i_rows = found
        for acct in accounts:
            led.accounts.setdefault(acct, Account())
        for acct, balance, out, in_ in a_rows:
            led.accounts[acct] = Account(balance, out, in_)
        got_keys = {(u, k): KeyRecord(bytes(p), bytes(r)) for u, k, p, r in k_rows}
        for key in keys:
            led.keys[key] = got_keys.get(key)
        got_pending = {r[0]: Transfer(*r) for r in p_rows}
        for tid in pendings:
            led.pendings[tid] = got_pending.get(tid)
        got_packets: dict[int, Packet] = {r[0]: packet_of_row(r) for r in pk_rows}
        for pid, uid, amount, transfer in c_rows:
            got_packets[pid].claims[uid] = (amount, transfer)
        for pid in packets:
            led.packets[pid] = got_packets.get(pid)
        for uid, task, period, count in t_rows:
            led.progress[(uid, task)] = (period, count)
        led.progress_users.update(tasks)
        got_items = {r[1]: Item(*r) for r in i_rows}
        for code in items:
            led.items[code] = got_items.get(code)

    def apply_heads(self, rows: Rows) -> None:
        """(id, username, log floor, newest seq) rows."""
        heads = self.heads
        for uid, name, floor, top in rows:
            self.add_user(name, uid)
            self.floors[uid] = floor
            heads[uid] = max(floor, top)

    def raise_floor(self, uid: int, seq: int) -> None:
        """Entries up to `seq` were pruned (a user not cached loads both later)."""
        if uid in self.heads:
            self.floors[uid] = max(self.floors.get(uid, 0), seq)
            self.heads[uid] = max(self.heads[uid], seq)

    # ------------------------------------------------------------------ retries

    def remember(self, sender_id: int, cmid: str, result: SendResult) -> None:
        """Keep the answer to a retry of this cmid (stored already as a duplicate)."""
        dedup = self.dedup
        dedup[(sender_id, cmid)] = (
            result.id,
            result.conv,
            result.pos,
            result.ts,
            result.sender_seq,
        )
        while len(dedup) > self.dedup_max:
            dedup.popitem(last=False)


def duplicate(hit: tuple[int, int, int, int, int], cmid: str) -> SendResult:
    """The answer to a retry: the original acknowledgement, marked as a duplicate."""
    return SendResult(
        id=hit[0], conv=hit[1], pos=hit[2], ts=hit[3], sender_seq=hit[4], cmid=cmid, duplicate=True
    )


class Positions:
    """Positions acknowledged by devices and not yet committed: `pending` until the next
    commit takes them, `committing` while it runs."""

    def __init__(self) -> None:
        self.pending: dict[tuple[int, str], int] = {}
        self.committing: dict[tuple[int, str], int] = {}

    def record(self, user_id: int, device: str, seq: int) -> None:
        key = (user_id, device)
        if seq > self.pending.get(key, -1):
            self.pending[key] = seq

    def forget(self, user_id: int, device: str) -> None:
        self.pending.pop((user_id, device), None)

    def take(self) -> dict[tuple[int, str], int]:
        """For the commit launched now: what is pending is committing."""
        taken, self.pending = self.pending, {}
        self.committing = taken
        return taken

    def done(self, taken: dict[tuple[int, str], int], *, ok: bool) -> None:
        """The commit that took them is over: durable, or failed (pending again)."""
        if self.committing is taken:
            self.committing = {}
        if not ok:
            for (uid, device), seq in taken.items():
                self.record(uid, device, seq)

    def of(self, user_id: int, device: str) -> int:
        """A position acknowledged but maybe not yet committed."""
        key = (user_id, device)
        return max(self.pending.get(key, 0), self.committing.get(key, 0))

    def of_user(self, user_id: int) -> int:
        """The highest such position of any of the user's devices."""
        return max(
            (
                seq
                for (u, _d), seq in (*self.pending.items(), *self.committing.items())
                if u == user_id
            ),
            default=0,
        )
