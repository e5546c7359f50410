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
from .throttle import charge_rows, limit_reached

if TYPE_CHECKING:
    from ..app import Server
    from ..transport import ServerConnection

LIST_GROUPS_PAGE = 100  # LIST_GROUPS entries when the request gives no limit (SPEC 17.2)


class _GroupOp(WriteOp):
    """Common shape: an actor acting on one group; answers OK{pos} or its own frame."""

    def __init__(self, conn: ServerConnection, msg: Any, svc: GroupService) -> None:
        self.origin = conn
        self.rid = msg.rid
        self.actor = conn.user_id
        self.msg = msg
        self.svc = svc
        self.max_size = svc.max_size
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
        """Each user allows the actor to add them (privacy `groups` and `messages`, blocks)
        and is below their bound of groups joined."""
        cfg = self.svc.server.config
        for uid in uids:
            if uid == self.actor:
                continue
            soc = batch.social_ro(uid)
            if not (soc.accepts_groups_from(self.actor)
                    and soc.accepts_messages_from(self.actor)):
                raise Refused(ErrorCode.NOT_ALLOWED,
                              f"{batch.username(uid)} does not allow you to add them to groups")
            if soc.groups_joined >= cfg.max_groups_joined:
                limit_reached(self, "max_groups_joined", cfg.max_groups_joined,
                              f"{batch.username(uid)} is in {cfg.max_groups_joined} groups "
                              "already")

    @staticmethod
    def count_groups(batch: Batch, uid: int, *, owned: int = 0, joined: int = 0) -> None:
        """Keep the writer's per-user group counts (when loaded) in step with membership."""
        if batch.has_social(uid):
            soc = batch.social_rw(uid)
            soc.groups_owned += owned
            soc.groups_joined += joined

    def charge(self, batch: Batch) -> None:
        """The last step of every plan: the rows it fans out to, to the actor's budget."""
        charge_rows(self, self.svc.server.writes, self.svc.server.loop.time())

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
        n.social.add(self.actor)
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
        cfg = self.svc.server.config
        me = batch.social_ro(self.actor)
        if me.groups_owned >= cfg.max_groups_owned:
            limit_reached(self, "max_groups_owned", cfg.max_groups_owned,
                          f"you own {cfg.max_groups_owned} groups already")
        if me.groups_joined >= cfg.max_groups_joined:
            limit_reached(self, "max_groups_joined", cfg.max_groups_joined,
                          f"you are in {cfg.max_groups_joined} groups already")
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
            self.count_groups(batch, uid, owned=int(uid == self.actor), joined=1)
        self.pos = batch.add_event(conv, self.actor, {
            "type": "created", "name": msg.name,
            "users": [batch.username(u) for u in g.members]}, g.members)
        self.group = g
        self.names = {u: batch.username(u) for u in g.members}
        self.charge(batch)

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
            self.count_groups(batch, uid, joined=1)
        self.charge(batch)


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
        self.count_groups(batch, target, joined=-1)
        self.charge(batch)


class LeaveGroupOp(_GroupOp):
    def plan(self, batch: Batch) -> None:
        g = self.member_group(batch)
        owner = g.members[self.actor].role == ROLE_OWNER
        if owner and len(g.members) > 1:
            raise Refused(ErrorCode.CONFLICT, "transfer ownership before leaving")
        readers = list(g.members)
        self.pos = batch.add_event(g.conv, self.actor, {
            "type": "left", "users": [batch.username(self.actor)]}, readers)
        del g.members[self.actor]
        batch.stage("DELETE FROM members WHERE conv_id = ? AND user_id = ?",
                    (g.conv, self.actor))
        self.count_groups(batch, self.actor, owned=-int(owner), joined=-1)
        self.charge(batch)


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
        self.charge(batch)


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
        self.charge(batch)


class TransferOp(_TargetOp):
    def needs(self, n: Needs, batch: Batch) -> None:
        super().needs(n, batch)
        n.social.add(self.actor)
        uid = batch.user_id(self.msg.user)
        if uid is not None:
            n.users.add(uid)
            n.social.add(uid)

    def plan(self, batch: Batch) -> None:
        g = self.member_group(batch, ROLE_OWNER)
        target = self.target_member(batch, g, "transfer to another member")
        cfg = self.svc.server.config
        if batch.social_ro(target).groups_owned >= cfg.max_groups_owned:
            limit_reached(self, "max_groups_owned", cfg.max_groups_owned,
                          f"{self.msg.user} owns {cfg.max_groups_owned} groups already")
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
        self.count_groups(batch, target, owned=1)
        self.count_groups(batch, self.actor, owned=-1)
        self.charge(batch)


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
            self._check_size(conn, msg)
            if isinstance(msg, GroupCreate | GroupUpdate):  # names shown to every member
                check_field("name", msg.name)
                check_field("topic", msg.topic)
            wait = self.server.writes.request(conn.user_id, self.server.loop.time())
            if wait is not None:
                raise RequestError(ErrorCode.RATE_LIMITED, "writing too fast",
                                   retry_after=round(wait, 3))
            try:
                self.store.submit(op_cls(conn, msg, self))
            except StoreClosed:
                raise RequestError(ErrorCode.UNAVAILABLE) from None

        return handler

    def _check_size(self, conn: ServerConnection, msg: Any) -> None:
        """A GROUP_CREATE or GROUP_ADD naming more users than any group holds is refused
        here, before anything is queued or looked up (a long list of names would hold up
        the shared writer while it resolves them)."""
        if isinstance(msg, GroupCreate):
            count = 1 + len(set(msg.members) - {conn.username})
        elif isinstance(msg, GroupAdd):
            count = 1 + len(set(msg.users))  # a group has at least the adding member
        else:
            return
        if count > self.max_size:
            raise RequestError(ErrorCode.GROUP_FULL, f"a group holds at most {self.max_size}")

    async def get_group(self, conn: ServerConnection, msg: GetGroup) -> None:
        g = await self.store.group_state(msg.group)
        if g is None or conn.user_id not in g.members:
            raise RequestError(ErrorCode.NOT_MEMBER)
        names = await self.store.usernames(g.members)
        pos = await self.store.last_pos(g.conv)
        conn.send(group_info(msg.rid, g, names, pos))

    async def list_groups(self, conn: ServerConnection, msg: ListGroups) -> None:
        limit = msg.limit or LIST_GROUPS_PAGE
        after = -1 if msg.after is None else msg.after
        rows = await self.store.groups_of(conn.user_id, after=after, limit=limit + 1)
        more = len(rows) > limit
        conn.send(GroupList(rid=msg.rid, more=more, groups=tuple(
            GroupSummary(group=g, name=name, topic=topic, role=ROLE_NAMES[role], members=count)
            for g, name, topic, role, count in rows[:limit])))
