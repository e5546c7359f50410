"""One batch being planned over the committed state: the chat core's `Plan`, shared by
the stores.

Operations are planned one after another against an Overlay. Each sees the effects of
those before it (a member removed earlier in the batch can no longer send later in it).
The committed state is never changed here: the batch keeps its own numbers and private
copies of what it changes (copy-on-write), and the store publishes them once the batch
is durable (`Committed.publish`). An operation refused midway is rolled back: its staged
rows are dropped and every change it made to the batch's state is undone, so a refusal
never leaves half a change behind.

An overlay may be planned on top of a parent: the batch whose writes are being made
durable now, not yet committed (the SQLite writer's pipeline). It then starts from the
parent's numbers and changes instead of the committed state alone; if the parent does not
commit as planned, the store plans the child again from scratch.

How a named write is kept is the store's: each subclass stages it in `_keep_*` (SQL
statements, or rows of the in-memory tables).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..chat.model import REL_REQUESTED, GroupState, Member, Social
from ..chat.ops import Push, Refused
from ..chat.plan import pair
from .bot_overlay import BotOverlay
from .channel_overlay import ChannelOverlay, ChannelTables
from .ledger import MISSING, LedgerOverlay, LedgerState
from .shop_overlay import ShopOverlay, ShopState

# A log row: (its commit's journal id, user, seq, kind, message id or None, data or None,
# ts ms), as the batch planned it.
LogRow = tuple[int, int, int, int, int | None, bytes | None, int]
# A message row: (id, conv, pos, sender, sender seq, cmid, ts, body).
MessageRow = tuple[int, int, int, int, int, str, int, bytes]


@dataclass(slots=True, eq=False)
class Committed:
    """The committed state a batch plans over: numbers and the images rules consult.

    A store that loads lazily (SQLite) holds part of it and loads the rest before
    planning (`Needs`); the in-memory store holds all of it."""

    user_ids: dict[str, int] = field(default_factory=dict)
    usernames: dict[int, str] = field(default_factory=dict)
    heads: dict[int, int] = field(default_factory=dict)  # user -> newest log seq
    direct: dict[tuple[int, int], int] = field(default_factory=dict)  # pair -> conversation
    conv_last: dict[int, int] = field(default_factory=dict)  # conversation -> last position
    groups: dict[int, GroupState] = field(default_factory=dict)
    social: dict[int, Social] = field(default_factory=dict)
    next_msg_id: int = 1
    next_conv_id: int = 1
    # channels (channel_overlay.py): the rows loaded so far; `complete` if that is all
    ch: ChannelTables = field(default_factory=ChannelTables)
    complete: bool = True
    next_item_id: int = 1
    ledger: LedgerState = field(default_factory=LedgerState)  # the wallet (ledger.py)
    shop: ShopState = field(default_factory=ShopState)  # the shop (shop_overlay.py)

    def add_user(self, name: str, uid: int) -> None:
        self.user_ids[name] = uid
        self.usernames[uid] = name

    def publish(self, batch: Overlay) -> None:
        """The batch is durable: its numbers and state are the committed ones now."""
        self.heads.update(batch.heads)
        self.conv_last.update(batch.conv_last)
        self.direct.update(batch.direct)
        for conv, g in batch.groups.items():
            if g is not None:
                self.groups[conv] = g
        self.social.update(batch.social)
        self.next_msg_id = batch.next_msg_id
        self.next_conv_id = batch.next_conv_id
        self.ch.update(batch.ch)
        self.next_item_id = batch.next_item_id
        self.ledger.publish(batch)
        self.shop.publish(batch)


class Overlay(ChannelOverlay, LedgerOverlay, ShopOverlay, BotOverlay):
    """The planning state of one batch; implements chat.plan.ChannelPlan but for
    `_keep_*` (the channels' part is ChannelOverlay's, channel_overlay.py; the wallet's
    LedgerOverlay's, ledger.py)."""

    def __init__(self, committed: Committed, ts: int, parent: Overlay | None = None) -> None:
        self.c = committed
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
        # accounts added by this batch (name -> password hash), and by its parent
        self.new_users: dict[str, str] = {}
        self.base_new_users: dict[str, str] = {}
        if parent is None:
            self.next_msg_id = committed.next_msg_id
            self.next_conv_id = committed.next_conv_id
        else:
            self.next_msg_id = parent.next_msg_id
            self.next_conv_id = parent.next_conv_id
            self.base_heads = parent.heads
            self.base_conv_last = parent.conv_last
            self.base_direct = parent.direct
            self.base_groups = parent.groups
            self.base_social = parent.social
            self.base_cmids = parent.cmids
            self.base_new_users = parent.new_users
        self._init_channels(committed.ch, committed.complete, committed.next_item_id, parent)
        self.jid = 0  # the journal id the log rows carry (stores with a journal set it)
        self.messages: list[MessageRow] = []
        self.updates: list[LogRow] = []
        self.pushes: list[Push] | None = None  # the current op's
        # how to undo the current op: callables, or (dict, key, old value or MISSING)
        self._undo: list[Any] | None = None
        self._init_ledger(committed.ledger, parent)
        self._init_shop(committed.shop, parent)
        self._init_bots()

    # ------------------------------------------------------------------ op boundaries

    def run(self, op: Any, plan: Callable[[], None], *, checks_first: bool = False) -> bool:
        """Plan one op; on Refused, undo it and record the error. True if it was staged.

        `checks_first` promises that the plan refuses only before it changes anything (as
        a send does), which spares recording how to undo each allocation on the hot path.
        """
        # a plan that checks first has nothing to roll back when refused (the hot path)
        marks = None if checks_first else self._marks()
        self._undo = None if checks_first else []
        op.pushes = self.pushes = []
        try:
            plan()
        except Refused as exc:
            for undo in reversed(self._undo or ()):
                if type(undo) is tuple:  # (dict, key, old value or MISSING): see _set
                    d, key, was = undo
                    if was is MISSING:
                        d.pop(key, None)
                    else:
                        d[key] = was
                else:
                    undo()
            if marks is not None:
                self._rewind(marks)
            op.error, op.error_message = exc.code, exc.message
            if exc.retry_after is not None or exc.data is not None:
                op.error_retry_after, op.error_data = exc.retry_after, exc.data
            op.pushes = []
            return False
        finally:
            self._undo = None
            self.pushes = None
        return True

    def _marks(self) -> tuple[int, ...]:
        return (len(self.messages), len(self.updates), self.next_msg_id, self.next_conv_id)

    def _rewind(self, marks: tuple[int, ...]) -> None:
        """Drop what was staged since `marks` (subclasses drop their own staging too)."""
        del self.messages[marks[0] :], self.updates[marks[1] :]
        self.next_msg_id, self.next_conv_id = marks[2], marks[3]

    def _set(self, d: dict[Any, Any], key: Any, value: Any) -> None:
        """d[key] = value, undone with the op if it is refused (a tuple in the undo log,
        not a closure: this runs several times for every write planned)."""
        if self._undo is None:
            d[key] = value
            return
        self._undo.append((d, key, d.get(key, MISSING)))
        d[key] = value

    def _on_undo(self, fn: Callable[[], None]) -> None:
        if self._undo is not None:
            self._undo.append(fn)

    # ------------------------------------------------------------------ lookups

    def user_id(self, name: str) -> int | None:
        return self.c.user_ids.get(name)

    def name_taken(self, username: str) -> bool:
        return username in self.new_users or username in self.base_new_users

    def add_user(self, username: str, password_hash: str) -> None:
        self._set(self.new_users, username, password_hash)
        self._keep_user(username, password_hash)

    def username(self, uid: int) -> str:
        return self.c.usernames[uid]

    def group_ro(self, conv: int) -> GroupState | None:
        if conv in self.groups:
            return self.groups[conv]
        if conv in self.base_groups:
            return self.base_groups[conv]
        return self.c.groups.get(conv)

    def group(self, conv: int) -> GroupState | None:
        """The group for changing (a private copy for this batch)."""
        if conv in self.groups:
            return self.groups[conv]
        base = self.base_groups[conv] if conv in self.base_groups else self.c.groups.get(conv)
        g = base.copy() if base is not None else None
        self._set(self.groups, conv, g)
        return g

    def social_ro(self, uid: int) -> Social:
        s = self.social.get(uid) or self.base_social.get(uid)
        return s if s is not None else self.c.social[uid]

    def social_rw(self, uid: int) -> Social:
        s = self.social.get(uid)
        if s is None:
            s = (self.base_social.get(uid) or self.c.social[uid]).copy()
            self._set(self.social, uid, s)
        return s

    def planned_send(self, key: tuple[int, str]) -> Any:
        """A send with this (sender, cmid) planned earlier in this batch or its parent."""
        first = self.cmids.get(key)
        return first if first is not None else self.base_cmids.get(key)

    def has_head(self, uid: int) -> bool:
        return uid in self.heads or uid in self.base_heads or uid in self.c.heads

    def has_group(self, conv: int) -> bool:
        return conv in self.groups or conv in self.base_groups or conv in self.c.groups

    def has_social(self, uid: int) -> bool:
        return uid in self.social or uid in self.base_social or uid in self.c.social

    def has_pair(self, key: tuple[int, int]) -> bool:
        return key in self.direct or key in self.base_direct or key in self.c.direct

    def has_conv(self, conv: int) -> bool:
        return conv in self.conv_last or conv in self.base_conv_last or conv in self.c.conv_last

    def last_pos(self, conv: int) -> int:
        last = self.conv_last.get(conv)
        if last is None:
            last = self.base_conv_last.get(conv)
            if last is None:
                last = self.c.conv_last[conv]
        return last

    # ------------------------------------------------------------------ allocation

    def direct_conv(self, a: int, b: int) -> int:
        key = pair(a, b)
        conv = self.direct.get(key) or self.base_direct.get(key) or self.c.direct.get(key)
        if conv is None:
            conv = self.new_conv_id()
            self._set(self.direct, key, conv)
            self._set(self.conv_last, conv, 0)
            self._keep_direct_conv(conv, key[0], key[1])
        return conv

    def new_conv_id(self) -> int:
        conv = self.next_conv_id
        self.next_conv_id += 1
        return conv

    def next_seq(self, uid: int) -> int:
        seq = self.heads.get(uid)
        if seq is None:
            seq = self.base_heads.get(uid)
            if seq is None:
                seq = self.c.heads[uid]
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

    # ------------------------------------------------------------------ named writes

    def add_message(
        self, mid: int, conv: int, pos: int, sender: int, sender_seq: int, cmid: str, body: bytes
    ) -> None:
        self.messages.append((mid, conv, pos, sender, sender_seq, cmid, self.ts, body))

    def add_update(
        self,
        uid: int,
        seq: int,
        kind: int,
        *,
        message_id: int | None = None,
        data: bytes | None = None,
        push: bytes | None = None,
    ) -> None:
        """Stage a log entry; `push` (the encoded data) also pushes it after the commit."""
        self.updates.append((self.jid, uid, seq, kind, message_id, data, self.ts))
        if push is not None and self.pushes is not None:
            self.pushes.append(Push(uid, seq, kind, push))

    def log(self, uid: int, kind: int, data: bytes) -> int:
        seq = self.next_seq(uid)
        self.add_update(uid, seq, kind, data=data, push=data)
        return seq

    def create_group(
        self, conv: int, name: str, topic: str, owner: int, members: dict[int, Member]
    ) -> GroupState:
        g = GroupState(conv, name, topic, owner, self.ts, members)
        self._set(self.groups, conv, g)
        self._set(self.conv_last, conv, 0)
        self._keep_group(g, new=True)
        for uid, m in members.items():
            self._keep_member(conv, uid, m)
        return g

    def add_member(self, g: GroupState, uid: int, role: int, joined_pos: int) -> None:
        self._save_group(g)
        m = g.members[uid] = Member(role, joined_pos, self.ts)
        self._keep_member(g.conv, uid, m)

    def remove_member(self, g: GroupState, uid: int) -> None:
        self._save_group(g)
        del g.members[uid]
        self._keep_member_gone(g.conv, uid)

    def set_role(self, g: GroupState, uid: int, role: int) -> None:
        self._save_group(g)
        g.members[uid].role = role
        self._keep_role(g.conv, uid, role)

    def set_owner(self, g: GroupState, uid: int) -> None:
        self._save_group(g)
        g.owner = uid
        self._keep_group(g)

    def set_group_info(self, g: GroupState, name: str, topic: str) -> None:
        self._save_group(g)
        g.name, g.topic = name, topic
        self._keep_group(g)

    def count_groups(self, uid: int, *, owned: int = 0, joined: int = 0) -> None:
        """Counts are derived from membership when loaded: adjust them only if they are."""
        if self.has_social(uid):
            s = self._save_social(self.social_rw(uid))
            s.groups_owned += owned
            s.groups_joined += joined

    def relate(self, a: int, b: int, kind: int) -> None:
        self._save_social(self.social_rw(a)).add_relation(b, kind)
        if kind == REL_REQUESTED:
            self._save_social(self.social_rw(b)).incoming.add(a)
        self._keep_relation(a, b, kind, True)

    def unrelate(self, a: int, b: int, kind: int) -> None:
        self._save_social(self.social_rw(a)).remove_relation(b, kind)
        if kind == REL_REQUESTED:
            self._save_social(self.social_rw(b)).incoming.discard(a)
        self._keep_relation(a, b, kind, False)

    def set_privacy(
        self,
        uid: int,
        *,
        presence: int | None = None,
        profile: int | None = None,
        messages: int | None = None,
        groups: int | None = None,
        receipts: int | None = None,
        coins: int | None = None,
        nearby: int | None = None,
    ) -> None:
        s = self._save_social(self.social_rw(uid))
        if presence is not None:
            s.presence = presence
        if profile is not None:
            s.profile = profile
        if messages is not None:
            s.messages = messages
        if groups is not None:
            s.groups = groups
        if receipts is not None:
            s.receipts = receipts
        if coins is not None:
            s.coins = coins
        if nearby is not None:
            s.nearby = nearby
        self._keep_privacy(uid, s)

    def set_read_marker(self, uid: int, conv: int, pos: int) -> None:
        self._keep_read_marker(uid, conv, pos)

    def add_blob_refs(self, conv: int, pos: int, blobs: tuple[bytes, ...]) -> None:
        self._keep_blob_refs(conv, pos, blobs)

    # The batch's copies are changed in place; an op that may be refused records how they
    # were first (the undo restores them in reverse order, so the oldest record wins).

    def _save_group(self, g: GroupState) -> None:
        if self._undo is not None:
            was = g.copy()
            self._undo.append(lambda: _restore_group(g, was))

    def _save_social(self, s: Social) -> Social:
        if self._undo is not None:
            was = s.copy()
            self._undo.append(lambda: _restore_social(s, was))
        return s

    # ------------------------------------------------------------------ how writes are kept

    def _keep_direct_conv(self, conv: int, a: int, b: int) -> None:
        raise NotImplementedError

    def _keep_group(self, g: GroupState, *, new: bool = False) -> None:
        """The group's own row (name, topic, owner); `new`: its conversation too."""
        raise NotImplementedError

    def _keep_member(self, conv: int, uid: int, m: Member) -> None:
        raise NotImplementedError

    def _keep_member_gone(self, conv: int, uid: int) -> None:
        raise NotImplementedError

    def _keep_role(self, conv: int, uid: int, role: int) -> None:
        raise NotImplementedError

    def _keep_relation(self, a: int, b: int, kind: int, present: bool) -> None:
        raise NotImplementedError

    def _keep_privacy(self, uid: int, s: Social) -> None:
        raise NotImplementedError

    def _keep_user(self, username: str, password_hash: str) -> None:
        raise NotImplementedError

    def _keep_read_marker(self, uid: int, conv: int, pos: int) -> None:
        raise NotImplementedError

    def _keep_blob_refs(self, conv: int, pos: int, blobs: tuple[bytes, ...]) -> None:
        raise NotImplementedError


def _restore_group(g: GroupState, was: GroupState) -> None:
    g.name, g.topic, g.owner, g.members = was.name, was.topic, was.owner, was.members


def _restore_social(s: Social, was: Social) -> None:
    s.contacts, s.outgoing, s.incoming, s.blocked = (
        was.contacts,
        was.outgoing,
        was.incoming,
        was.blocked,
    )
    s.presence, s.profile, s.messages, s.groups = (
        was.presence,
        was.profile,
        was.messages,
        was.groups,
    )
    s.groups_owned, s.groups_joined, s.receipts = (
        was.groups_owned,
        was.groups_joined,
        was.receipts,
    )
    s.coins, s.nearby = was.coins, was.nearby
