"""The wallet's part of a batch (chat/plan.py's wallet reads and named writes), shared by
the stores like overlay.py, of which it is a part: `LedgerState` is the committed wallet
state (in overlay.Committed), `LedgerOverlay` the batch's (a base of overlay.Overlay).

The batch reads through three levels, as the overlay does: its own changes, its parent's
(the batch being written now, in a pipelined store), the committed state. A store that
holds all of its state (memory) says so (`complete`): what it lacks is empty (an account
with nothing, no such key). A store that loads lazily (SQLite) holds what was loaded; the
rules' needs (chat/plan.Needs) say what to load before planning, and a read of an
account, an idempotency key or a task's progress that was not loaded refuses the operation
(INTERNAL_ERROR) rather than guess: guessing "no key" or "balance 0" would move money.
Pending transfers, packets and items not loaded read as absent (the rule refuses).

One guess is allowed, and checked: a batch that `presume_keys` reads an idempotency key
it has not loaded as absent and lists it in `presumed`; the store looks every presumed key
up inside the transaction that writes the batch, before anything else, and if one is
stored after all, rolls the whole batch back and plans it again with the keys loaded (as
a stored client message id does). Nearly every key is new, so looking each one up before
planning would stall the pipelined writer once per batch (sqlite/writer.py); the check in
the transaction costs one index probe per key and moves nothing until it has passed.

Every change goes through the overlay's undo log, so an operation refused midway leaves
nothing of itself in the wallet either. How a named write is kept is each store's
(`_keep_*`).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from liaotian.protocol import ErrorCode

from ..chat.ledger import PENDING, Account, Item, KeyRecord, Packet, Transfer
from ..chat.ops import Refused

K = TypeVar("K")
V = TypeVar("V")
Progress = tuple[int, int]  # (period, completions in it)
MISSING: Any = object()  # in an undo entry: the key was absent before


def _missing(what: str) -> Refused:
    return Refused(ErrorCode.INTERNAL_ERROR, f"{what} was not loaded")


@dataclass(slots=True, eq=False)
class LedgerState:
    """The committed wallet state: all of it (`complete`), or what was loaded."""

    complete: bool = True
    accounts: dict[int, Account] = field(default_factory=dict)
    # open pending transfers; a lazy store marks those it found closed or absent with None
    pendings: dict[int, Transfer | None] = field(default_factory=dict)
    packets: dict[int, Packet | None] = field(default_factory=dict)
    keys: MutableMapping[tuple[int, str], KeyRecord | None] = field(default_factory=dict)
    progress: dict[tuple[int, str], Progress] = field(default_factory=dict)
    progress_users: set[int] = field(default_factory=set)  # users whose progress is held
    items: dict[str, Item | None] = field(default_factory=dict)
    next_transfer_id: int = 1
    next_packet_id: int = 1
    next_wallet_item_id: int = 1

    def publish(self, b: LedgerOverlay) -> None:
        """The batch is durable: its wallet changes are the committed state now."""
        self.accounts.update(b.accounts)
        for tid, t in b.pendings.items():
            if t is None and self.complete:
                self.pendings.pop(tid, None)
            else:
                self.pendings[tid] = t
        self.packets.update(b.packets)
        self.keys.update(b.keys)
        self.progress.update(b.progress)
        self.items.update(b.items)
        self.next_transfer_id = b.next_transfer_id
        self.next_packet_id = b.next_packet_id
        self.next_wallet_item_id = b.next_wallet_item_id


def _copy_fields(obj: Any, was: Any) -> None:
    for f in fields(obj):
        setattr(obj, f.name, getattr(was, f.name))


class LedgerOverlay:
    """The wallet state of one batch; implements the wallet part of chat.plan.Plan."""

    ts: int
    _undo: list[Any] | None  # overlay.Overlay's undo log
    next_transfer_id: int
    next_packet_id: int
    next_wallet_item_id: int

    def _init_ledger(self, state: LedgerState, parent: LedgerOverlay | None) -> None:
        self.ledger = state
        self.accounts: dict[int, Account] = {}
        self.pendings: dict[int, Transfer | None] = {}
        self.packets: dict[int, Packet | None] = {}
        self.keys: dict[tuple[int, str], KeyRecord | None] = {}
        self.progress: dict[tuple[int, str], Progress] = {}
        self.items: dict[str, Item | None] = {}
        # keys read as absent without being loaded (see the module docstring): the store
        # checks them in the transaction; kept whether or not their ops were refused
        self.presume_keys = False
        self.presumed: list[tuple[int, str]] = []
        src: LedgerOverlay | LedgerState = parent if parent is not None else state
        self.next_transfer_id = src.next_transfer_id
        self.next_packet_id = src.next_packet_id
        self.next_wallet_item_id = src.next_wallet_item_id
        # the parent's own changes, read-only here (one level: see overlay.Overlay)
        self.base_accounts = parent.accounts if parent is not None else {}
        self.base_pendings = parent.pendings if parent is not None else {}
        self.base_packets = parent.packets if parent is not None else {}
        self.base_keys = parent.keys if parent is not None else {}
        self.base_progress = parent.progress if parent is not None else {}
        self.base_items = parent.items if parent is not None else {}

    # ------------------------------------------------------------------ undo

    def _put(self, d: dict[K, V], key: K, value: V) -> None:
        """Set d[key], recording how to undo it if the op may be refused (overlay.run
        restores the (dict, key, old value or MISSING) entries)."""
        undo = self._undo
        if undo is not None:
            undo.append((d, key, d.get(key, MISSING)))
        d[key] = value

    def _save(self, obj: Packet | Item) -> None:
        """The batch's copy `obj` is about to change in place: record how it was."""
        if self._undo is not None:
            was = obj.copy()
            self._undo.append(lambda: _copy_fields(obj, was))

    def _take(self, name: str, bump: int = 1) -> int:
        """Allocate the next id of a counter (undone with the op)."""
        value: int = getattr(self, name)
        setattr(self, name, value + bump)
        if self._undo is not None:
            self._undo.append(lambda: setattr(self, name, value))
        return value

    # ------------------------------------------------------------------ lookups

    def _ledger_find(
        self,
        own: dict[Any, Any],
        base: dict[Any, Any],
        committed: MutableMapping[Any, Any],
        key: Any,
    ) -> tuple[bool, Any]:
        if key in own:
            return True, own[key]
        if key in base:
            return True, base[key]
        if key in committed:
            return True, committed[key]
        return self.ledger.complete, None

    def has_account(self, acct: int) -> bool:
        return self._ledger_find(self.accounts, self.base_accounts, self.ledger.accounts, acct)[0]

    def has_key(self, key: tuple[int, str]) -> bool:
        return self._ledger_find(self.keys, self.base_keys, self.ledger.keys, key)[0]

    def has_pending(self, tid: int) -> bool:
        return self._ledger_find(self.pendings, self.base_pendings, self.ledger.pendings, tid)[0]

    def has_packet(self, pid: int) -> bool:
        return self._ledger_find(self.packets, self.base_packets, self.ledger.packets, pid)[0]

    def has_item(self, code: str) -> bool:
        return self._ledger_find(self.items, self.base_items, self.ledger.items, code)[0]

    def has_progress(self, uid: int) -> bool:
        return self.ledger.complete or uid in self.ledger.progress_users

    def account(self, acct: int) -> Account:
        found, a = self._ledger_find(self.accounts, self.base_accounts, self.ledger.accounts, acct)
        if not found:
            raise _missing(f"account {acct}")
        return a if a is not None else Account()

    def pending(self, tid: int) -> Transfer | None:
        t: Transfer | None = self._ledger_find(
            self.pendings, self.base_pendings, self.ledger.pendings, tid
        )[1]
        return t

    def packet_ro(self, pid: int) -> Packet | None:
        p: Packet | None = self._ledger_find(
            self.packets, self.base_packets, self.ledger.packets, pid
        )[1]
        return p

    def packet(self, pid: int) -> Packet | None:
        if pid in self.packets:
            return self.packets[pid]
        p = self.packet_ro(pid)
        if p is None:
            return None
        mine = p.copy()
        self._put(self.packets, pid, mine)
        return mine

    def key_record(self, uid: int, key: str) -> KeyRecord | None:
        found, rec = self._ledger_find(self.keys, self.base_keys, self.ledger.keys, (uid, key))
        if not found:
            if not self.presume_keys:
                raise _missing("idempotency key")
            self.presumed.append((uid, key))
        r: KeyRecord | None = rec
        return r

    def task_progress(self, uid: int, task: str) -> Progress:
        if not self.has_progress(uid):
            raise _missing(f"task progress of user {uid}")
        k = (uid, task)
        got = self._ledger_find(self.progress, self.base_progress, self.ledger.progress, k)[1]
        return got if got is not None else (-1, 0)

    def item_ro(self, code: str) -> Item | None:
        i: Item | None = self._ledger_find(self.items, self.base_items, self.ledger.items, code)[1]
        return i

    def item(self, code: str) -> Item | None:
        if code in self.items:
            return self.items[code]
        i = self.item_ro(code)
        if i is None:
            return None
        mine = i.copy()
        self._put(self.items, code, mine)
        return mine

    # ------------------------------------------------------------------ allocation

    def new_transfer_id(self) -> int:
        return self._take("next_transfer_id")

    def new_packet_id(self) -> int:
        return self._take("next_packet_id")

    def new_wallet_item_id(self) -> int:
        return self._take("next_wallet_item_id")

    # ------------------------------------------------------------------ named writes

    def add_transfer(self, t: Transfer) -> None:
        if t.flags & PENDING:
            self._put(self.pendings, t.id, t)
        elif t.pending_id:
            self._put(self.pendings, t.pending_id, None)
            self._keep_pending(t.pending_id, None)
        if t.flags & PENDING:
            self._keep_pending(t.id, t)
        self._keep_transfer(t)

    def set_account(self, acct: int, a: Account) -> None:
        self._put(self.accounts, acct, a)
        self._keep_account(acct, a)

    def add_packet(self, p: Packet) -> None:
        self._put(self.packets, p.id, p)
        self._keep_packet(p, new=True)

    def add_claim(self, p: Packet, uid: int, amount: int, transfer: int) -> None:
        self._save(p)
        p.claims[uid] = (amount, transfer)
        self._keep_claim(p, uid, len(p.claims), amount, transfer)

    def close_packet(self, p: Packet, state: int) -> None:
        self._save(p)
        p.state = state
        self._keep_packet(p, new=False)

    def record_key(self, uid: int, key: str, rec: KeyRecord) -> None:
        self._put(self.keys, (uid, key), rec)
        self._keep_key(uid, key, rec)

    def count_task(self, uid: int, task: str, period: int, count: int) -> None:
        self._put(self.progress, (uid, task), (period, count))
        self._keep_task(uid, task, period, count)

    def add_item(self, item: Item) -> None:
        self._put(self.items, item.code, item)
        self._keep_item(item, new=True)

    def give_item(self, item: Item, owner: int) -> None:
        self._save(item)
        item.owner = owner
        self._keep_item(item, new=False)

    def redeem_item(self, item: Item) -> None:
        self._save(item)
        item.redeemed = self.ts
        self._keep_item(item, new=False)

    def restore_item(self, item: Item) -> None:
        self._save(item)
        item.redeemed = 0
        self._keep_item(item, new=False)

    # ------------------------------------------------------------------ how writes are kept

    def _keep_transfer(self, t: Transfer) -> None:
        raise NotImplementedError

    def _keep_account(self, acct: int, a: Account) -> None:
        raise NotImplementedError

    def _keep_pending(self, tid: int, t: Transfer | None) -> None:
        """`t` is open now, or (None) the pending transfer `tid` is closed."""
        raise NotImplementedError

    def _keep_packet(self, p: Packet, *, new: bool) -> None:
        raise NotImplementedError

    def _keep_claim(self, p: Packet, uid: int, n: int, amount: int, transfer: int) -> None:
        raise NotImplementedError

    def _keep_key(self, uid: int, key: str, rec: KeyRecord) -> None:
        raise NotImplementedError

    def _keep_task(self, uid: int, task: str, period: int, count: int) -> None:
        raise NotImplementedError

    def _keep_item(self, item: Item, *, new: bool) -> None:
        raise NotImplementedError
