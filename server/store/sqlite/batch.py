"""One SQLite group commit being planned: the overlay (overlay.py) with its writes kept
as rows and SQL statements (sql.py), and the update-log tail's bookkeeping (tail.py).

A batch planned on top of a parent (the batch the writer thread is running now) takes
the parent's journal id + 1, and remembers the parent's log rows: committed, maybe not
yet in the tail when this batch is launched, so their users cannot be written directly.
"""

from __future__ import annotations

from typing import Any

from ...chat.ledger import Account, Item, KeyRecord, Packet, Transfer
from ...chat.model import KIND_DIRECT, KIND_GROUP, GroupState, Member, PendingCallback, Social
from ...chat.shop import Order, Product
from ..overlay import Committed, LogRow, Overlay
from . import shop, sql
from .channels import ChannelBatch


class Batch(ChannelBatch, Overlay):
    def __init__(
        self, committed: Committed, ts: int, next_jid: int, parent: Batch | None = None
    ) -> None:
        super().__init__(committed, ts, parent)
        self.jid = next_jid if parent is None else parent.jid + 1
        self.parent_updates: list[LogRow] = parent.updates if parent is not None else []
        # Folds (see tail.py), added when the batch is launched: earlier log rows copied
        # into `updates`, the newest seq folded per user, and the journal ids to delete.
        self.folds: list[LogRow] = []
        self.direct_rows: list[LogRow] = []  # new log rows straight into `updates`
        self.folded: dict[int, int] = {}
        # the chat list's index rows for the folds and direct rows (tail.py, sql.py)
        self.chat_rows: list[tuple[int, int, int, int, int]] = []
        self.journal_below = 0
        self.statements: list[tuple[str, tuple[Any, ...]]] = []
        self.transfer_rows: list[Transfer] = []  # written in bulk by seal()
        self.key_rows: list[tuple[Any, ...]] = []  # idempotency keys, likewise
        self.sealed = False

    def _marks(self) -> tuple[int, ...]:
        return (
            len(self.messages),
            len(self.updates),
            self.next_msg_id,
            self.next_conv_id,
            len(self.statements),
            len(self.transfer_rows),
            len(self.key_rows),
        )

    def _rewind(self, marks: tuple[int, ...]) -> None:
        super()._rewind(marks)
        del self.statements[marks[4] :], self.transfer_rows[marks[5] :]
        del self.key_rows[marks[6] :]

    def seal(self) -> None:
        """The batch is about to be written: its transfers, idempotency keys and the final
        balances of the accounts it changed become a few multi-row statements (once)."""
        if self.sealed:
            return
        self.sealed = True
        if self.transfer_rows:
            rows = [
                (
                    t.id,
                    t.debit,
                    t.credit,
                    t.amount,
                    t.code,
                    t.flags,
                    t.pending_id,
                    t.expires,
                    t.ref,
                    t.memo,
                    t.actor,
                    t.ts,
                    t.key,
                )
                for t in self.transfer_rows
            ]
            for chunk in sql.chunks(rows, 2000):
                values = ",".join(["(?,?,?,?,?,?,?,?,?,?,?,?,?)"] * len(chunk))
                self._stage(
                    f"INSERT INTO {sql.TRANSFERS_INTO} VALUES {values}",
                    tuple(v for row in chunk for v in row),
                )
        for chunk in sql.chunks(self.key_rows, 2000):
            values = ",".join(["(?,?,?,?,?)"] * len(chunk))
            self._stage(
                f"INSERT INTO {sql.KEYS_INTO} VALUES {values}",
                tuple(v for row in chunk for v in row),
            )
        if self.accounts:
            items = list(self.accounts.items())
            for part in sql.chunks(items, 5000):
                values = ",".join(["(?,?,?,?)"] * len(part))
                self._stage(
                    sql.ACCOUNTS_UPSERT.format(values=values),
                    tuple(
                        v
                        for acct, a in part
                        for v in (acct, a.balance, a.pending_out, a.pending_in)
                    ),
                )

    def _stage(self, statement: str, params: tuple[Any, ...]) -> None:
        self.statements.append((statement, params))

    # ------------------------------------------------------------------ how writes are kept

    def _keep_direct_conv(self, conv: int, a: int, b: int) -> None:
        self._stage(sql.INSERT_CONVERSATION, (conv, KIND_DIRECT, a, b, self.ts))

    def _keep_group(self, g: GroupState, *, new: bool = False) -> None:
        if new:
            self._stage(sql.INSERT_CONVERSATION, (g.conv, KIND_GROUP, None, None, g.created))
            self._stage(sql.INSERT_GROUP, (g.conv, g.name, g.topic, g.owner))
        else:
            self._stage(sql.UPDATE_GROUP, (g.name, g.topic, g.owner, g.conv))

    def _keep_member(self, conv: int, uid: int, m: Member) -> None:
        self._stage(sql.INSERT_MEMBER, (conv, uid, m.role, m.joined_pos, m.joined))
        self._stage(sql.UPSERT_CHAT_JOIN, (uid, conv, m.joined))

    def _keep_member_gone(self, conv: int, uid: int) -> None:
        self._stage(sql.DELETE_MEMBER, (conv, uid))
        self._stage(sql.DELETE_CHAT, (uid, conv))

    def _keep_role(self, conv: int, uid: int, role: int) -> None:
        self._stage(sql.UPDATE_ROLE, (role, conv, uid))

    def _keep_relation(self, a: int, b: int, kind: int, present: bool) -> None:
        if present:
            self._stage(sql.INSERT_RELATION, (a, b, kind, self.ts))
        else:
            self._stage(sql.DELETE_RELATION, (a, b, kind))

    def _keep_privacy(self, uid: int, s: Social) -> None:
        self._stage(
            sql.UPDATE_PRIVACY,
            (s.presence, s.profile, s.messages, s.groups, s.receipts, s.coins, s.nearby, uid),
        )

    def _keep_user(self, username: str, password_hash: str) -> None:
        self._stage(sql.INSERT_USER, (username, password_hash, self.ts))

    def _keep_read_marker(self, uid: int, conv: int, pos: int) -> None:
        self._stage(sql.UPSERT_READ_MARKER, (uid, conv, pos))

    # the wallet (store/ledger.py)

    def _keep_transfer(self, t: Transfer) -> None:
        self.transfer_rows.append(t)

    def _keep_account(self, acct: int, a: Account) -> None:
        pass  # the final balances are written by seal()

    def _keep_pending(self, tid: int, t: Transfer | None) -> None:
        if t is None:
            self._stage(sql.DELETE_PENDING, (tid,))
        else:
            self._stage(sql.INSERT_PENDING, (tid, t.expires))

    def _keep_packet(self, p: Packet, *, new: bool) -> None:
        if new:
            self._stage(
                sql.INSERT_PACKET,
                (
                    p.id,
                    p.sender,
                    p.conv,
                    p.peer,
                    p.amount,
                    p.count,
                    p.split,
                    p.seed,
                    p.pending,
                    p.expires,
                    p.memo,
                    p.created,
                    p.state,
                ),
            )
        else:
            self._stage(sql.UPDATE_PACKET, (p.state, p.id))

    def _keep_claim(self, p: Packet, uid: int, n: int, amount: int, transfer: int) -> None:
        self._stage(sql.INSERT_CLAIM, (p.id, uid, n, amount, transfer))

    def _keep_key(self, uid: int, key: str, rec: KeyRecord) -> None:
        self.key_rows.append((uid, key, rec.params, rec.result, self.ts))

    def _keep_task(self, uid: int, task: str, period: int, count: int) -> None:
        self._stage(sql.UPSERT_TASK, (uid, task, period, count))

    def _keep_product(self, p: Product, *, new: bool) -> None:
        self._stage(shop.PRODUCT_UPSERT, shop.product_row(p))

    def _keep_order(self, o: Order, *, new: bool) -> None:
        self._stage(shop.ORDER_UPSERT, shop.order_row(o))

    def _keep_item(self, item: Item, *, new: bool) -> None:
        if new:
            self._stage(
                sql.INSERT_ITEM,
                (
                    item.id,
                    item.code,
                    item.kind,
                    item.owner,
                    item.created,
                    item.source,
                    item.redeemed,
                ),
            )
        else:
            self._stage(sql.UPDATE_ITEM, (item.owner, item.redeemed, item.id))

    def _keep_edit(self, mid: int, body: bytes) -> None:
        self._stage("UPDATE messages SET body = ? WHERE id = ?", (body, mid))

    def _keep_callback(self, cb: PendingCallback) -> None:
        self._stage(
            "INSERT OR REPLACE INTO bot_callbacks "
            "(id, bot, presser, conv_id, pos, created, entry, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (cb.id, cb.bot, cb.presser, cb.conv, cb.pos, cb.created, cb.entry, cb.seq),
        )

    def _keep_callback_gone(self, callback: int) -> None:
        self._stage("DELETE FROM bot_callbacks WHERE id = ?", (callback,))

    def _keep_blob_refs(self, conv: int, pos: int, blobs: tuple[bytes, ...]) -> None:
        for sha in blobs:
            self._stage(sql.INSERT_BLOB_REF, (sha, conv, pos))
            self._stage(sql.CLEAR_UNREF, (sha,))
