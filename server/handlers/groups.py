"""Groups: GROUP_* requests become operations (chat/ops.py) planned by chat/rules/groups.py
inside the group commit; GET_GROUP and LIST_GROUPS are reads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
)
from liaotian.protocol.text import check_field

from ..chat import ops
from ..chat.model import ROLE_NAMES, GroupState
from ..chat.policy import Policy
from ..net.peer import Peer
from ..net.router import Router
from ..store import Store
from .throttle import WriteBudget

LIST_GROUPS_PAGE = 100  # LIST_GROUPS entries when the request gives no limit (SPEC 17.2)


def _create(conn: Peer, m: GroupCreate, policy: Policy) -> ops.Op:
    return ops.CreateGroup(
        actor=conn.user_id,
        session=conn.id,
        rid=m.rid,
        policy=policy,
        name=m.name,
        topic=m.topic,
        members=m.members,
    )


def _add(conn: Peer, m: GroupAdd, policy: Policy) -> ops.Op:
    return ops.AddMembers(
        actor=conn.user_id, session=conn.id, rid=m.rid, policy=policy, group=m.group, users=m.users
    )


def _remove(conn: Peer, m: GroupRemove, policy: Policy) -> ops.Op:
    return ops.RemoveMember(
        actor=conn.user_id, session=conn.id, rid=m.rid, policy=policy, group=m.group, user=m.user
    )


def _leave(conn: Peer, m: GroupLeave, policy: Policy) -> ops.Op:
    return ops.LeaveGroup(
        actor=conn.user_id, session=conn.id, rid=m.rid, policy=policy, group=m.group
    )


def _update(conn: Peer, m: GroupUpdate, policy: Policy) -> ops.Op:
    return ops.UpdateGroup(
        actor=conn.user_id,
        session=conn.id,
        rid=m.rid,
        policy=policy,
        group=m.group,
        name=m.name,
        topic=m.topic,
    )


def _set_role(conn: Peer, m: GroupSetRole, policy: Policy) -> ops.Op:
    return ops.SetRole(
        actor=conn.user_id,
        session=conn.id,
        rid=m.rid,
        policy=policy,
        group=m.group,
        user=m.user,
        role=m.role,
    )


def _transfer(conn: Peer, m: GroupTransfer, policy: Policy) -> ops.Op:
    return ops.TransferGroup(
        actor=conn.user_id, session=conn.id, rid=m.rid, policy=policy, group=m.group, user=m.user
    )


def answer_created(op: ops.CreateGroup) -> tuple[bytes, int]:
    """GROUP_CREATE is answered with the new group's GROUP_INFO."""
    assert op.group is not None
    return group_info(op.rid, op.group, op.names, op.pos).encode(), int(MessageType.GROUP_INFO)


def group_info(rid: int, g: GroupState, names: dict[int, str], pos: int) -> GroupInfo:
    members = tuple(
        GroupMember(user=names[u], role=ROLE_NAMES[m.role], joined=m.joined)
        for u, m in sorted(g.members.items(), key=lambda kv: (-kv[1].role, kv[0]))
    )
    return GroupInfo(
        rid=rid,
        group=g.conv,
        name=g.name,
        topic=g.topic,
        owner=names[g.owner],
        created=g.created,
        pos=pos,
        members=members,
    )


class GroupHandlers:
    def __init__(
        self, store: Store, writes: WriteBudget, policy: Policy, clock: Callable[[], float]
    ) -> None:
        self.store = store
        self.writes = writes
        self.policy = policy
        self.max_size = policy.max_group_size
        self.clock = clock  # monotonic seconds (the loop's)

    def route(self, r: Router) -> None:
        for cls, make in (
            (GroupCreate, _create),
            (GroupAdd, _add),
            (GroupRemove, _remove),
            (GroupLeave, _leave),
            (GroupUpdate, _update),
            (GroupSetRole, _set_role),
            (GroupTransfer, _transfer),
        ):
            r.route(cls, self._submitter(make))
        r.route(GetGroup, self.get_group)
        r.route(ListGroups, self.list_groups)

    def _submitter(self, make: Any) -> Any:
        def handler(conn: Peer, msg: Any) -> None:
            self._check_size(conn, msg)
            if isinstance(msg, GroupCreate | GroupUpdate):  # names shown to every member
                check_field("name", msg.name)
                check_field("topic", msg.topic)
            self.writes.charge(conn.user_id, self.clock())
            self.store.submit(make(conn, msg, self.policy))

        return handler

    def _check_size(self, conn: Peer, msg: Any) -> None:
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

    async def get_group(self, conn: Peer, msg: GetGroup) -> None:
        g = await self.store.group_state(msg.group)
        if g is None or conn.user_id not in g.members:
            raise RequestError(ErrorCode.NOT_MEMBER)
        names = await self.store.usernames(g.members)
        pos = await self.store.last_pos(g.conv)
        conn.send(group_info(msg.rid, g, names, pos))

    async def list_groups(self, conn: Peer, msg: ListGroups) -> None:
        limit = msg.limit or LIST_GROUPS_PAGE
        after = -1 if msg.after is None else msg.after
        rows = await self.store.groups_of(conn.user_id, after=after, limit=limit + 1)
        more = len(rows) > limit
        conn.send(
            GroupList(
                rid=msg.rid,
                more=more,
                groups=tuple(
                    GroupSummary(
                        group=g, name=name, topic=topic, role=ROLE_NAMES[role], members=count
                    )
                    for g, name, topic, role, count in rows[:limit]
                ),
            )
        )
