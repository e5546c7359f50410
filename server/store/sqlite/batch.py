"""One SQLite group commit being planned: the overlay (overlay.py) with its writes kept
as rows and SQL statements (sql.py), and the update-log tail's bookkeeping (tail.py).

A batch planned on top of a parent (the batch the writer thread is running now) takes
the parent's journal id + 1, and remembers the parent's log rows: committed, maybe not
yet in the tail when this batch is launched, so their users cannot be written directly.
"""

from __future__ import annotations

from typing import Any

from ...chat.model import KIND_DIRECT, KIND_GROUP, GroupState, Member, Social
from ..overlay import Committed, LogRow, Overlay
from . import sql
from .channels import ChannelBatch


class Batch(ChannelBatch, Overlay):
    def __init__(self, committed: Committed, ts: int, next_jid: int,
                 parent: Batch | None = None) -> None:
        super().__init__(committed, ts, parent)
        self.jid = next_jid if parent is None else parent.jid + 1
        self.parent_updates: list[LogRow] = parent.updates if parent is not None else []
        # Folds (see tail.py), added when the batch is launched: earlier log rows copied
        # into `updates`, the newest seq folded per user, and the journal ids to delete.
        self.folds: list[LogRow] = []
        self.direct_rows: list[LogRow] = []  # new log rows straight into `updates`
        self.folded: dict[int, int] = {}
        self.journal_below = 0
        self.statements: list[tuple[str, tuple[Any, ...]]] = []

    def _marks(self) -> tuple[int, ...]:
        return (len(self.messages), len(self.updates), self.next_msg_id, self.next_conv_id,
                len(self.statements))

    def _rewind(self, marks: tuple[int, ...]) -> None:
        super()._rewind(marks)
        del self.statements[marks[4]:]

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

    def _keep_member_gone(self, conv: int, uid: int) -> None:
        self._stage(sql.DELETE_MEMBER, (conv, uid))

    def _keep_role(self, conv: int, uid: int, role: int) -> None:
        self._stage(sql.UPDATE_ROLE, (role, conv, uid))

    def _keep_relation(self, a: int, b: int, kind: int, present: bool) -> None:
        if present:
            self._stage(sql.INSERT_RELATION, (a, b, kind, self.ts))
        else:
            self._stage(sql.DELETE_RELATION, (a, b, kind))

    def _keep_privacy(self, uid: int, s: Social) -> None:
        self._stage(sql.UPDATE_PRIVACY,
                    (s.presence, s.profile, s.messages, s.groups, s.receipts, uid))

    def _keep_read_marker(self, uid: int, conv: int, pos: int) -> None:
        self._stage(sql.UPSERT_READ_MARKER, (uid, conv, pos))

    def _keep_blob_refs(self, conv: int, pos: int, blobs: tuple[bytes, ...]) -> None:
        for sha in blobs:
            self._stage(sql.INSERT_BLOB_REF, (sha, conv, pos))
            self._stage(sql.CLEAR_UNREF, (sha,))
