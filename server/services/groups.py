"""Groups: create, membership, roles and metadata, each change a timeline event.

Changes are WriteOps planned inside the group commit, in order with the messages around
them, so the timeline is one order for everyone: a member removed at position P sends
nothing after P, and a member added at P sees history from P on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from liaotian.protocol import ErrorCode, MessageType, RequestError
from liaotian.protocol.social import (
    GetGroup,
    GroupAdd,
    GroupCreate,
    GroupInfo,
    GroupLeave,
    GroupList,
    GroupMember,
    GroupRemove,
    GroupSetRole,
    GroupSummary,
    GroupTransfer,
    GroupUpdate,
    ListGroups,
    Ok,
)
from liaotian.protocol.text import check_field

from ..store import StoreClosed
from ..store.base import Needs, Refused, WriteOp
from ..store.batch import KIND_GROUP, Batch
from ..store.state import (
    ROLE_ADMIN,
    ROLE_BY_NAME,
    ROLE_MEMBER,
    ROLE_NAMES,
    ROLE_OWNER,
    GroupState,
    Member,
)

if TYPE_CHECKING:
    from ..app import Server
    from ..transport import ServerConnection


class _GroupOp(WriteOp):
    """Common shape: an actor acting on one group; answers OK{pos} or its own frame."""

    def __init__(self, conn: ServerConnection, msg: Any, max_size: int) -> None:
        self.origin = conn
        self.rid = msg.rid
        self.actor = conn.user_id
        self.msg = msg
        self.max_size = max_size
        self.pos = 0

    def needs(self, n: Needs, batch: Batch) -> None:
        group = getattr(self.msg, "group", None)
        if group is not None:
            n.groups.add(group)
            n.convs.add(group)
        n.users.add(self.actor)

    def answer_frame(self) -> tuple[bytes, int]:
        return Ok(rid=self.rid, pos=self.pos or None).encode(), int(MessageType.OK)

    # helpers ---------------------------------------------------------------------------

    def member_group(self, batch: Batch, min_role: int = ROLE_MEMBER) -> GroupState:
        g = batch.group(self.msg.group)
        if g is None or self.actor not in g.members:
            raise Refused(ErrorCode.NOT_MEMBER)
        if g.members[self.actor].role < min_role:
            raise Refused(ErrorCode.FORBIDDEN)
        return g

    @staticmethod
    def resolve(batch: Batch, names: tuple[str, ...] | list[str]) -> list[int]:
        ids = []
        for name in dict.fromkeys(names):
            uid = batch.user_id(name)
            if uid is None:
                raise Refused(ErrorCode.UNKNOWN_USER, f"no such user: {name}")
            ids.append(uid)
        return ids

    def check_invitable(self, batch: Batch, uids: list[int]) -> None:
        for uid in uids:
            if uid != self.actor and not batch.social_ro(uid).accepts_messages_from(self.actor):
                raise Refused(ErrorCode.NOT_ALLOWED)

    def target_member(self, batch: Batch, g: GroupState, why_self: str) -> int:
        """The member named by msg.user: another member of `g` (3008 otherwise)."""
        target = batch.user_id(self.msg.user)
        if target is None or target not in g.members:
            raise Refused(ErrorCode.CONFLICT, "not a member")
        if target == self.actor:
            raise Refused(ErrorCode.CONFLICT, why_self)
        return target

    def stage_member(self, batch: Batch, conv: int, uid: int, m: Member) -> None:
        batch.stage("INSERT INTO members (conv_id, user_id, role, joined_pos, joined) "
                    "VALUES (?, ?, ?, ?, ?)", (conv, uid, m.role, m.joined_pos, m.joined))


class CreateGroupOp(_GroupOp):
    def needs(self, n: Needs, batch: Batch) -> None:
        super().needs(n, batch)
        n.names.update(self.msg.members)
        for name in self.msg.members:
            uid = batch.user_id(name)
            if uid is not None:
                n.users.add(uid)
                n.social.add(uid)

    def plan(self, batch: Batch) -> None:
        msg: GroupCreate = self.msg
        uids = [u for u in self.resolve(batch, msg.members) if u != self.actor]
        if 1 + len(uids) > self.max_size:
            raise Refused(ErrorCode.GROUP_FULL, f"a group holds at most {self.max_size}")
        self.check_invitable(batch, uids)
        conv = batch.new_conv_id()
        batch.stage("INSERT INTO conversations (id, kind, user_a, user_b, created) "
                    "VALUES (?, ?, NULL, NULL, ?)", (conv, KIND_GROUP, batch.ts))
        batch.stage("INSERT INTO groups (conv_id, name, topic, owner_id) VALUES (?, ?, ?, ?)",
                    (conv, msg.name, msg.topic, self.actor))
        g = GroupState(conv, msg.name, msg.topic, self.actor, batch.ts)
        g.members[self.actor] = Member(ROLE_OWNER, 1, batch.ts)
        for uid in uids:
            g.members[uid] = Member(ROLE_MEMBER, 1, batch.ts)
        batch.new_group(g)
        for uid, m in g.members.items():
            self.stage_member(batch, conv, uid, m)
        self.pos = batch.add_event(conv, self.actor, {
            "type": "created", "name": msg.name,
            "users": [batch.username(u) for u in g.members]}, g.members)
        self.group = g
        self.names = {u: batch.username(u) for u in g.members}

    def answer_frame(self) -> tuple[bytes, int]:
        return group_info(self.rid, self.group, self.names, self.pos).encode(), int(
            MessageType.GROUP_INFO)


class AddMembersOp(_GroupOp):
    def needs(self, n: Needs, batch: Batch) -> None:
        super().needs(n, batch)
        n.names.update(self.msg.users)
        for name in self.msg.users:
            uid = batch.user_id(name)
            if uid is not None:
                n.users.add(uid)
                n.social.add(uid)

    def plan(self, batch: Batch) -> None:
        g = self.member_group(batch, ROLE_ADMIN)
        uids = self.resolve(batch, self.msg.users)
        if any(u in g.members for u in uids):
            raise Refused(ErrorCode.CONFLICT, "already a member")
        if len(g.members) + len(uids) > self.max_size:
            raise Refused(ErrorCode.GROUP_FULL, f"a group holds at most {self.max_size}")
        self.check_invitable(batch, uids)
        for uid in uids:
            g.members[uid] = Member(ROLE_MEMBER, 0, batch.ts)
        self.pos = batch.add_event(g.conv, self.actor, {
            "type": "added", "users": [batch.username(u) for u in uids]}, g.members)
        for uid in uids:
            g.members[uid].joined_pos = self.pos
            self.stage_member(batch, g.conv, uid, g.members[uid])


class _TargetOp(_GroupOp):
    """An action on one other member, named by msg.user."""

    def needs(self, n: Needs, batch: Batch) -> None:
        super().needs(n, batch)
        n.names.add(self.msg.user)


class RemoveMemberOp(_TargetOp):
    def plan(self, batch: Batch) -> None:
        g = self.member_group(batch, ROLE_ADMIN)
        target = self.target_member(batch, g, "use GROUP_LEAVE to leave")
        actor_role = g.members[self.actor].role
        if g.members[target].role >= actor_role:
            raise Refused(ErrorCode.FORBIDDEN, "only the owner removes admins")
        readers = list(g.members)
        self.pos = batch.add_event(g.conv, self.actor, {
            "type": "removed", "users": [self.msg.user]}, readers)
        del g.members[target]
        batch.stage("DELETE FROM members WHERE conv_id = ? AND user_id = ?", (g.conv, target))


class LeaveGroupOp(_GroupOp):
    def plan(self, batch: Batch) -> None:
        g = self.member_group(batch)
        if g.members[self.actor].role == ROLE_OWNER and len(g.members) > 1:
            raise Refused(ErrorCode.CONFLICT, "transfer ownership before leaving")
        readers = list(g.members)
        self.pos = batch.add_event(g.conv, self.actor, {
            "type": "left", "users": [batch.username(self.actor)]}, readers)
        del g.members[self.actor]
        batch.stage("DELETE FROM members WHERE conv_id = ? AND user_id = ?",
                    (g.conv, self.actor))


class UpdateGroupOp(_GroupOp):
    def plan(self, batch: Batch) -> None:
        msg: GroupUpdate = self.msg
        if msg.name is None and msg.topic is None:
            raise Refused(ErrorCode.INVALID_FIELD, "give 'name' or 'topic'")
        g = self.member_group(batch, ROLE_ADMIN)
        if msg.name is not None:
            g.name = msg.name
            self.pos = batch.add_event(g.conv, self.actor, {"type": "renamed", "name": msg.name},
                                       g.members)
        if msg.topic is not None:
            g.topic = msg.topic
            self.pos = batch.add_event(g.conv, self.actor, {"type": "topic", "topic": msg.topic},
                                       g.members)
        batch.stage("UPDATE groups SET name = ?, topic = ? WHERE conv_id = ?",
                    (g.name, g.topic, g.conv))


class SetRoleOp(_TargetOp):
    def plan(self, batch: Batch) -> None:
        g = self.member_group(batch, ROLE_OWNER)
        target = self.target_member(batch, g, "the owner's role changes only by transfer")
        role = ROLE_BY_NAME[self.msg.role]
        g.members[target].role = role
        batch.stage("UPDATE members SET role = ? WHERE conv_id = ? AND user_id = ?",
                    (role, g.conv, target))
        self.pos = batch.add_event(g.conv, self.actor, {
            "type": "role", "user": self.msg.user, "role": self.msg.role}, g.members)


class TransferOp(_TargetOp):
    def plan(self, batch: Batch) -> None:
        g = self.member_group(batch, ROLE_OWNER)
        target = self.target_member(batch, g, "transfer to another member")
        g.members[target].role = ROLE_OWNER
        g.members[self.actor].role = ROLE_ADMIN
        g.owner = target
        batch.stage("UPDATE members SET role = ? WHERE conv_id = ? AND user_id = ?",
                    (ROLE_OWNER, g.conv, target))
        batch.stage("UPDATE members SET role = ? WHERE conv_id = ? AND user_id = ?",
                    (ROLE_ADMIN, g.conv, self.actor))
        batch.stage("UPDATE groups SET owner_id = ? WHERE conv_id = ?", (target, g.conv))
        self.pos = batch.add_event(g.conv, self.actor, {"type": "owner", "user": self.msg.user},
                                   g.members)


def group_info(rid: int, g: GroupState, names: dict[int, str], pos: int) -> GroupInfo:
    members = tuple(GroupMember(user=names[u], role=ROLE_NAMES[m.role], joined=m.joined)
                    for u, m in sorted(g.members.items(), key=lambda kv: (-kv[1].role, kv[0])))
    return GroupInfo(rid=rid, group=g.conv, name=g.name, topic=g.topic, owner=names[g.owner],
                     created=g.created, pos=pos, members=members)


class GroupService:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.store = server.store
        self.max_size = server.config.max_group_size
        r = server.router
        for cls, op in ((GroupCreate, CreateGroupOp), (GroupAdd, AddMembersOp),
                        (GroupRemove, RemoveMemberOp), (GroupLeave, LeaveGroupOp),
                        (GroupUpdate, UpdateGroupOp), (GroupSetRole, SetRoleOp),
                        (GroupTransfer, TransferOp)):
            r.route(cls, self._submitter(op))
        r.route(GetGroup, self.get_group)
        r.route(ListGroups, self.list_groups)

    def _submitter(self, op_cls: type[_GroupOp]) -> Any:
        def handler(conn: ServerConnection, msg: Any) -> None:
            if isinstance(msg, GroupCreate | GroupUpdate):  # names shown to every member
                check_field("name", msg.name)
                check_field("topic", msg.topic)
            try:
                self.store.submit(op_cls(conn, msg, self.max_size))
            except StoreClosed:
                raise RequestError(ErrorCode.UNAVAILABLE) from None

        return handler

    async def get_group(self, conn: ServerConnection, msg: GetGroup) -> None:
        g = await self.store.group_state(msg.group)
        if g is None or conn.user_id not in g.members:
            raise RequestError(ErrorCode.NOT_MEMBER)
        names = await self.store.usernames(g.members)
        pos = await self.store.last_pos(g.conv)
        conn.send(group_info(msg.rid, g, names, pos))

    async def list_groups(self, conn: ServerConnection, msg: ListGroups) -> None:
        rows = await self.store.groups_of(conn.user_id)
        conn.send(GroupList(rid=msg.rid, groups=tuple(
            GroupSummary(group=g, name=name, topic=topic, role=ROLE_NAMES[role], members=count)
            for g, name, topic, role, count in rows)))
