"""A tiny in-memory `Plan` (chat/plan.py) for unit tests of the rules: no store, no
database, no socket, no clock. Writes apply at once to one `World` (no batches, no
undo) and are also recorded by name, so a test can see what a rule staged."""

from __future__ import annotations

from typing import Any

import msgpack
from liaotian.server.chat import rules
from liaotian.server.chat.model import REL_REQUESTED, VIS_EVERYONE, GroupState, Member, Social
from liaotian.server.chat.ops import Push, Refused, SendRequest
from liaotian.server.chat.plan import Needs, pair


class World:
    """Everything a rule can read or write, as plain dictionaries."""

    def __init__(self, ts: int = 1_000) -> None:
        self.ts = ts
        self.ids: dict[str, int] = {}
        self.names: dict[int, str] = {}
        self.heads: dict[int, int] = {}
        self.social: dict[int, Social] = {}
        self.direct: dict[tuple[int, int], int] = {}
        self.last: dict[int, int] = {}
        self.groups: dict[int, GroupState] = {}
        self.messages: list[tuple[Any, ...]] = []
        self.logs: dict[int, list[tuple[int, int, int | None, bytes | None]]] = {}
        self.markers: dict[tuple[int, int], int] = {}
        self.writes: list[tuple[Any, ...]] = []  # named writes, in order
        self.cmids: dict[tuple[int, str], Any] = {}
        self.callbacks: dict[int, Any] = {}  # pending bot callbacks by id
        self.next_msg = self.next_conv = 1

    def user(self, name: str) -> int:
        uid = len(self.ids) + 1
        self.ids[name], self.names[uid] = uid, name
        self.heads[uid] = 0
        self.social[uid] = Social()
        self.logs[uid] = []
        return uid

    def users(self, *names: str, open_groups: bool = True) -> list[int]:
        """Register the names; open_groups: anyone may add them to a group (the default
        privacy lets only contacts)."""
        uids = [self.user(n) for n in names]
        if open_groups:
            for uid in uids:
                self.social[uid].groups = VIS_EVERYONE
        return uids

    def apply(self, op: Any) -> Any:
        """Plan `op` as a store would (needs first, then its rule); the op, answered."""
        plan = TinyPlan(self)
        rules.needs(op, Needs(), plan)
        op.pushes = plan.pushes
        try:
            rules.apply(plan, op)
        except Refused as exc:
            op.error, op.error_message = exc.code, exc.message
            op.pushes = []
        return op

    def send(
        self,
        sender: str,
        to: str,
        text: str = "hi",
        cmid: str | None = None,
        group: int | None = None,
    ) -> SendRequest:
        uid = self.ids[sender]
        cmid = cmid or f"c{len(self.messages)}-{text}"
        return self.apply(
            SendRequest(
                sender_id=uid,
                sender_name=sender,
                to_name=to,
                cmid=cmid,
                text=text,
                meta={},
                session=0,
                rid=1,
                group=group,
            )
        )

    def log_of(self, name: str) -> list[tuple[int, int, int | None, bytes | None]]:
        return self.logs[self.ids[name]]

    def entries(self, name: str, kind: int) -> list[dict[str, Any]]:
        """The data maps of a user's non-message log entries of one kind."""
        return [msgpack.unpackb(d) for _s, k, _m, d in self.log_of(name) if k == kind and d]

    def texts(self, name: str) -> list[str]:
        """The texts (or event types) of the messages in a user's log, in order."""
        out = []
        for _seq, _kind, mid, _data in self.log_of(name):
            if mid is not None:
                body = msgpack.unpackb(self.messages[mid - 1][7])
                out.append(body.get("text") or body.get("event", {}).get("type", ""))
        return out


class TinyPlan:
    """The Plan protocol over a World: each read and write goes straight to it."""

    def __init__(self, world: World) -> None:
        self.w = world
        self.ts = world.ts
        self.cmids = world.cmids
        self.pushes: list[Push] = []

    # reads
    def user_id(self, name: str) -> int | None:
        return self.w.ids.get(name)

    def username(self, uid: int) -> str:
        return self.w.names[uid]

    def group_ro(self, conv: int) -> GroupState | None:
        return self.w.groups.get(conv)

    def group(self, conv: int) -> GroupState | None:
        return self.w.groups.get(conv)

    def social_ro(self, uid: int) -> Social:
        return self.w.social[uid]

    def last_pos(self, conv: int) -> int:
        return self.w.last[conv]

    def planned_send(self, key: tuple[int, str]) -> Any:
        return self.w.cmids.get(key)

    # allocation
    def direct_conv(self, a: int, b: int) -> int:
        key = pair(a, b)
        if key not in self.w.direct:
            self.w.direct[key] = conv = self.new_conv_id()
            self.w.last[conv] = 0
            self.w.writes.append(("direct_conv", conv, *key))
        return self.w.direct[key]

    def new_conv_id(self) -> int:
        self.w.next_conv += 1
        return self.w.next_conv - 1

    def new_message_id(self) -> int:
        self.w.next_msg += 1
        return self.w.next_msg - 1

    def next_seq(self, uid: int) -> int:
        self.w.heads[uid] += 1
        return self.w.heads[uid]

    def next_pos(self, conv: int) -> int:
        self.w.last[conv] += 1
        return self.w.last[conv]

    # named writes
    def add_message(
        self, mid: int, conv: int, pos: int, sender: int, sender_seq: int, cmid: str, body: bytes
    ) -> None:
        assert mid == len(self.w.messages) + 1
        self.w.messages.append((mid, conv, pos, sender, sender_seq, cmid, self.ts, body))

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
        log = self.w.logs[uid]
        assert not log or log[-1][0] == seq - 1, "a gap in the log"
        log.append((seq, kind, message_id, data))
        if push is not None:
            self.pushes.append(Push(uid, seq, kind, push))

    def log(self, uid: int, kind: int, data: bytes) -> int:
        seq = self.next_seq(uid)
        self.add_update(uid, seq, kind, data=data, push=data)
        return seq

    def create_group(
        self, conv: int, name: str, topic: str, owner: int, members: dict[int, Member]
    ) -> GroupState:
        g = self.w.groups[conv] = GroupState(conv, name, topic, owner, self.ts, members)
        self.w.last[conv] = 0
        self.w.writes.append(("create_group", conv))
        return g

    def add_member(self, g: GroupState, uid: int, role: int, joined_pos: int) -> None:
        g.members[uid] = Member(role, joined_pos, self.ts)
        self.w.writes.append(("add_member", g.conv, uid))

    def remove_member(self, g: GroupState, uid: int) -> None:
        del g.members[uid]
        self.w.writes.append(("remove_member", g.conv, uid))

    def set_role(self, g: GroupState, uid: int, role: int) -> None:
        g.members[uid].role = role
        self.w.writes.append(("set_role", g.conv, uid, role))

    def set_owner(self, g: GroupState, uid: int) -> None:
        g.owner = uid
        self.w.writes.append(("set_owner", g.conv, uid))

    def set_group_info(self, g: GroupState, name: str, topic: str) -> None:
        g.name, g.topic = name, topic
        self.w.writes.append(("set_group_info", g.conv, name, topic))

    def count_groups(self, uid: int, *, owned: int = 0, joined: int = 0) -> None:
        s = self.w.social[uid]
        s.groups_owned += owned
        s.groups_joined += joined

    def relate(self, a: int, b: int, kind: int) -> None:
        self.w.social[a].add_relation(b, kind)
        if kind == REL_REQUESTED:
            self.w.social[b].incoming.add(a)
        self.w.writes.append(("relate", a, b, kind))

    def unrelate(self, a: int, b: int, kind: int) -> None:
        self.w.social[a].remove_relation(b, kind)
        if kind == REL_REQUESTED:
            self.w.social[b].incoming.discard(a)
        self.w.writes.append(("unrelate", a, b, kind))

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
        s = self.w.social[uid]
        for field, value in (
            ("presence", presence),
            ("profile", profile),
            ("messages", messages),
            ("groups", groups),
            ("receipts", receipts),
            ("coins", coins),
            ("nearby", nearby),
        ):
            if value is not None:
                setattr(s, field, value)
        self.w.writes.append(("set_privacy", uid))

    def set_read_marker(self, uid: int, conv: int, pos: int) -> None:
        key = (uid, conv)
        self.w.markers[key] = max(self.w.markers.get(key, 0), pos)
        self.w.writes.append(("set_read_marker", uid, conv, pos))

    # bots (rules/bots.py)

    def replace_message(self, mid: int, conv: int, pos: int, body: bytes) -> None:
        i = mid - 1
        old = self.w.messages[i]
        assert (old[0], old[1], old[2]) == (mid, conv, pos)
        self.w.messages[i] = (*old[:7], body)
        self.w.writes.append(("replace_message", mid))

    def add_callback(self, cb: Any) -> None:
        self.w.callbacks[cb.id] = cb
        self.w.writes.append(("add_callback", cb.id))

    def drop_callback(self, callback: int) -> None:
        self.w.callbacks.pop(callback, None)
        self.w.writes.append(("drop_callback", callback))
