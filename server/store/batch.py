"""One group commit being planned: allocation, copy-on-write state, and staged rows.

Ops are planned one after another against a Batch. Each sees the effects of the ops
before it (a member removed earlier in the batch can no longer send later in it). An op
that is refused midway is rolled back: its staged rows are dropped and every overlay
change it made is undone, so a refusal never leaves half a change behind.

A batch may be planned on top of a parent: the batch whose statements the writer thread
is running now, not yet committed. It then starts from the parent's overlay (its numbers,
new conversations, changed groups and relations) instead of the committed caches alone;
if the parent does not commit as planned, the store plans the child again from scratch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from liaotian.protocol import UpdateKind
from liaotian.protocol.messages import encode_message_map

from .base import Push, Refused
from .state import GroupState, Social
from .tail import JournalRow

if TYPE_CHECKING:
    from .sqlite import SQLiteStore

KIND_DIRECT, KIND_GROUP = 1, 2


def pair(a: int, b: int) -> tuple[int, int]:
    return (a, b) if a <= b else (b, a)


class Batch:
    def __init__(self, store: SQLiteStore, ts: int, parent: Batch | None = None) -> None:
        self.store = store
        self.ts = ts
        self.groups: dict[int, GroupState | None] = {}
        self.social: dict[int, Social] = {}
        self.cmids: dict[tuple[int, str], Any] = {}  # sends planned in this batch
        self.heads: dict[int, int] = {}
        self.conv_last: dict[int, int] = {}
        self.direct: dict[tuple[int, int], int] = {}
        # The parent's own changes, read-only here (groups and relations are copied before a
        # change). Only one level: a batch's grandparent is published before it is created.
        self.base_heads: dict[int, int] = {}
        self.base_conv_last: dict[int, int] = {}
        self.base_direct: dict[tuple[int, int], int] = {}
        self.base_groups: dict[int, GroupState | None] = {}
        self.base_social: dict[int, Social] = {}
        self.base_cmids: dict[tuple[int, str], Any] = {}
        if parent is None:
            self.next_msg_id = store._next_msg_id
            self.next_conv_id = store._next_conv_id
            self.jid = store._tail.next_jid
        else:
            self.next_msg_id = parent.next_msg_id
            self.next_conv_id = parent.next_conv_id
            self.jid = parent.jid + 1
            self.base_heads = parent.heads
            self.base_conv_last = parent.conv_last
            self.base_direct = parent.direct
            self.base_groups = parent.groups
            self.base_social = parent.social
            self.base_cmids = parent.cmids
        # The parent's journal rows (fixed at its launch): committed, maybe not yet in the
        # tail when this batch is launched, so their users cannot be written directly.
        self.parent_updates: list[JournalRow] = parent.updates if parent is not None else []
        self.messages: list[tuple[Any, ...]] = []
        # The log rows, appended to the journal as one row with id `jid`.
        self.updates: list[JournalRow] = []
        # Folds (see tail.py), added when the batch is launched: earlier log rows copied
        # into `updates`, the newest seq folded per user, and the journal ids to delete.
        self.folds: list[JournalRow] = []
        self.direct_rows: list[JournalRow] = []  # new log rows straight into `updates`
        self.folded: dict[int, int] = {}
        self.journal_below = 0
        self.statements: list[tuple[str, tuple[Any, ...]]] = []
        self.pushes: list[Push] | None = None  # the current op's
        self._undo: list[Callable[[], None]] | None = None

    # ------------------------------------------------------------------ op boundaries

    def run(self, op: Any, plan: Callable[[], None], *, checks_first: bool = False) -> bool:
        """Plan one op; on Refused, undo it and record the error. True if it was staged.

        `checks_first` promises that the plan refuses only before it changes anything (as
        a send does), which spares recording how to undo each allocation on the hot path.
        """
        marks = (len(self.messages), len(self.updates), len(self.statements),
                 self.next_msg_id, self.next_conv_id)
        self._undo = None if checks_first else []
        op.pushes = self.pushes = []
        try:
            plan()
        except Refused as exc:
            for undo in reversed(self._undo or ()):
                undo()
            del self.messages[marks[0]:], self.updates[marks[1]:], self.statements[marks[2]:]
            self.next_msg_id, self.next_conv_id = marks[3], marks[4]
            op.error, op.error_message = exc.code, exc.message
            op.pushes = []
            return False
        finally:
            self._undo = None
            self.pushes = None
        return True

    def _set(self, d: dict[Any, Any], key: Any, value: Any) -> None:
        if self._undo is None:
            d[key] = value
            return
        missing = key not in d
        old = d.get(key)
        d[key] = value
        if missing:
            self._undo.append(lambda: d.pop(key, None))
        else:
            self._undo.append(lambda: d.__setitem__(key, old))

    # ------------------------------------------------------------------ lookups

    def user_id(self, name: str) -> int | None:
        return self.store._user_ids.get(name)

    def username(self, uid: int) -> str:
        return self.store._usernames[uid]

    def group_ro(self, conv: int) -> GroupState | None:
        if conv in self.groups:
            return self.groups[conv]
        if conv in self.base_groups:
            return self.base_groups[conv]
        return self.store._groups.get(conv)

    def group(self, conv: int) -> GroupState | None:
        """The group for changing (a private copy for this batch)."""
        if conv in self.groups:
            return self.groups[conv]
        base = self.base_groups[conv] if conv in self.base_groups else \
            self.store._groups.get(conv)
        g = base.copy() if base is not None else None
        self._set(self.groups, conv, g)
        return g

    def new_group(self, g: GroupState) -> None:
        self._set(self.groups, g.conv, g)
        self._set(self.conv_last, g.conv, 0)

    def social_ro(self, uid: int) -> Social:
        s = self.social.get(uid) or self.base_social.get(uid)
        return s if s is not None else self.store._social[uid]

    def social_rw(self, uid: int) -> Social:
        s = self.social.get(uid)
        if s is None:
            s = (self.base_social.get(uid) or self.store._social[uid]).copy()
            self._set(self.social, uid, s)
        return s

    def direct_conv(self, a: int, b: int) -> int:
        key = pair(a, b)
        conv = self.direct.get(key) or self.base_direct.get(key) or self.store._direct.get(key)
        if conv is None:
            conv = self.new_conv_id()
            self._set(self.direct, key, conv)
            self._set(self.conv_last, conv, 0)
            self.stage("INSERT INTO conversations (id, kind, user_a, user_b, created) "
                       "VALUES (?, ?, ?, ?, ?)", (conv, KIND_DIRECT, key[0], key[1], self.ts))
        return conv

    def planned_send(self, key: tuple[int, str]) -> Any:
        """A send with this (sender, cmid) planned earlier in this batch or its parent."""
        first = self.cmids.get(key)
        return first if first is not None else self.base_cmids.get(key)

    def has_head(self, uid: int) -> bool:
        return uid in self.heads or uid in self.base_heads or uid in self.store._heads

    def has_group(self, conv: int) -> bool:
        return conv in self.groups or conv in self.base_groups or conv in self.store._groups

    def has_social(self, uid: int) -> bool:
        return uid in self.social or uid in self.base_social or uid in self.store._social

    def has_pair(self, key: tuple[int, int]) -> bool:
        return key in self.direct or key in self.base_direct or key in self.store._direct

    def has_conv(self, conv: int) -> bool:
        return conv in self.conv_last or conv in self.base_conv_last or \
            conv in self.store._conv_last

    def last_pos(self, conv: int) -> int:
        last = self.conv_last.get(conv)
        if last is None:
            last = self.base_conv_last.get(conv)
            if last is None:
                last = self.store._conv_last[conv]
        return last

    # ------------------------------------------------------------------ allocation

    def new_conv_id(self) -> int:
        conv = self.next_conv_id
        self.next_conv_id += 1
        return conv

    def next_seq(self, uid: int) -> int:
        seq = self.heads.get(uid)
        if seq is None:
            seq = self.base_heads.get(uid)
            if seq is None:
                seq = self.store._heads[uid]
        seq += 1
        if self._undo is None:  # the hot path: a send, which cannot be refused by now
            self.heads[uid] = seq
        else:
            self._set(self.heads, uid, seq)
        return seq

    def next_pos(self, conv: int) -> int:
        pos = self.last_pos(conv) + 1
        if self._undo is None:
            self.conv_last[conv] = pos
        else:
            self._set(self.conv_last, conv, pos)
        return pos

    def new_message_id(self) -> int:
        mid = self.next_msg_id
        self.next_msg_id += 1
        return mid

    # ------------------------------------------------------------------ staging

    def stage(self, sql: str, params: tuple[Any, ...]) -> None:
        self.statements.append((sql, params))

    def add_message(self, mid: int, conv: int, pos: int, sender: int, sender_seq: int,
                    cmid: str, body: bytes) -> None:
        self.messages.append((mid, conv, pos, sender, sender_seq, cmid, self.ts, body))

    def add_update(self, uid: int, seq: int, kind: int, *, message_id: int | None = None,
                   data: bytes | None = None, push: bytes | None = None,
                   skip_origin: bool = False) -> None:
        """Stage a log entry; `push` (the encoded data) also pushes it after the commit."""
        self.updates.append((self.jid, uid, seq, kind, message_id, data, self.ts))
        if push is not None and self.pushes is not None:
            self.pushes.append(Push(uid, seq, kind, push, skip_origin))

    def log(self, uid: int, kind: int, data: bytes) -> int:
        """Append a non-message entry (read marker, contact change) to a user's log."""
        seq = self.next_seq(uid)
        self.add_update(uid, seq, kind, data=data, push=data)
        return seq

    def add_event(self, conv: int, actor: int, event: dict[str, Any],
                  readers: Iterable[int]) -> int:
        """A group timeline event: a message map with an "event" map, in every reader's log.
        Returns its position."""
        mid = self.new_message_id()
        pos = self.next_pos(conv)
        body = encode_message_map(mid, conv, pos, self.username(actor), "", self.ts, "", "",
                                  None, group=conv, event=event)
        actor_seq = 0
        for uid in readers:
            seq = self.next_seq(uid)
            if uid == actor:
                actor_seq = seq
            self.add_update(uid, seq, UpdateKind.MESSAGE, message_id=mid, push=body)
        if not actor_seq:
            actor_seq = self.next_seq(actor)
            self.add_update(actor, actor_seq, UpdateKind.MESSAGE, message_id=mid, push=body)
        # events have no client message id; a unique internal one satisfies the index
        self.add_message(mid, conv, pos, actor, actor_seq, f"#event:{mid}", body)
        return pos
