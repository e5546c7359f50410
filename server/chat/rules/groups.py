"""Groups: create, membership, roles and metadata; every change is a timeline event.

The operations are planned inside the group commit in order with the messages around
them, so the timeline is one order for everyone: a member removed at position P sends
nothing after P, and a member added at P sees history from P on (its join point).

Roles: the owner (one) > admins > members. Admins add members, remove members and change
the name and topic; only the owner removes admins, sets roles and transfers ownership,
and must transfer before leaving a group that has other members. Adding someone needs
their consent by privacy (`may_add_to_group`) and room below their bound of groups.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from liaotian.protocol import ErrorCode, UpdateKind
from liaotian.protocol.messages import encode_message_map

from ..bot_ops import RemoveBot
from ..model import (
    EVENT_CMID,
    ROLE_ADMIN,
    ROLE_BY_NAME,
    ROLE_MEMBER,
    ROLE_OWNER,
    VIS_EVERYONE,
    VIS_NOBODY,
    GroupState,
    Member,
    Social,
)
from ..ops import (
    AddMembers,
    CreateGroup,
    LeaveGroup,
    Op,
    Refused,
    RemoveMember,
    SetRole,
    TransferGroup,
    UpdateGroup,
    limit_reached,
)
from ..plan import Needs, Plan
from .send import may_message


def may_add_to_group(user: Social, actor: int) -> bool:
    """Whether `actor` may add this user to a group: privacy `groups` (who may add me)
    and `messages` (a group lets its members message me), and no block."""
    if actor in user.blocked or user.groups == VIS_NOBODY:
        return False
    if user.groups != VIS_EVERYONE and actor not in user.contacts:
        return False
    return may_message(user, actor)


def add_event(
    plan: Plan, conv: int, actor: int, event: dict[str, Any], readers: Iterable[int]
) -> int:
    """A timeline event: a message with an "event" map, in every reader's log and the
    actor's. Returns its position."""
    ts = plan.ts
    mid = plan.new_message_id()
    pos = plan.next_pos(conv)
    body = encode_message_map(
        mid, conv, pos, plan.username(actor), "", ts, "", "", None, group=conv, event=event
    )
    actor_seq = 0
    for uid in readers:
        seq = plan.next_seq(uid)
        if uid == actor:
            actor_seq = seq
        plan.add_update(uid, seq, UpdateKind.MESSAGE, message_id=mid, push=body)
    if not actor_seq:
        actor_seq = plan.next_seq(actor)
        plan.add_update(actor, actor_seq, UpdateKind.MESSAGE, message_id=mid, push=body)
    # events have no client message id; a unique internal one keeps (sender, cmid) unique
    plan.add_message(mid, conv, pos, actor, actor_seq, f"{EVENT_CMID}{mid}", body)
    return pos


# ---------------------------------------------------------------------------- helpers


def _member_group(plan: Plan, op: Op, conv: int, min_role: int = ROLE_MEMBER) -> GroupState:
    g = plan.group(conv)
    if g is None or op.actor not in g.members:
        raise Refused(ErrorCode.NOT_MEMBER)
    if g.members[op.actor].role < min_role:
        raise Refused(ErrorCode.FORBIDDEN)
    return g


def _resolve(plan: Plan, names: Iterable[str]) -> list[int]:
    ids = []
    for name in dict.fromkeys(names):
        uid = plan.user_id(name)
        if uid is None:
            raise Refused(ErrorCode.UNKNOWN_USER, f"no such user: {name}")
        ids.append(uid)
    return ids


def _check_invitable(plan: Plan, op: Op, uids: list[int]) -> None:
    """Each user allows the actor to add them and is below their bound of groups."""
    bound = op.policy.max_groups_joined
    for uid in uids:
        if uid == op.actor:
            continue
        soc = plan.social_ro(uid)
        if not may_add_to_group(soc, op.actor):
            raise Refused(
                ErrorCode.NOT_ALLOWED,
                f"{plan.username(uid)} does not allow you to add them to groups",
            )
        if soc.groups_joined >= bound:
            raise limit_reached(
                "max_groups_joined", bound, f"{plan.username(uid)} is in {bound} groups already"
            )


def _target_member(plan: Plan, op: Op, g: GroupState, name: str, why_self: str) -> int:
    """The member named `name`: another member of `g` (3008 CONFLICT otherwise)."""
    target = plan.user_id(name)
    if target is None or target not in g.members:
        raise Refused(ErrorCode.CONFLICT, "not a member")
    if target == op.actor:
        raise Refused(ErrorCode.CONFLICT, why_self)
    return target


def _names_users(n: Needs, plan: Plan, names: Iterable[str]) -> None:
    """Needs of users named in a request whose relations the rule consults."""
    n.names.update(names)
    for name in names:
        uid = plan.user_id(name)
        if uid is not None:
            n.users.add(uid)
            n.social.add(uid)


# ---------------------------------------------------------------------------- needs


OnGroup = AddMembers | RemoveMember | LeaveGroup | UpdateGroup | SetRole | TransferGroup


def needs(op: OnGroup, n: Needs, plan: Plan) -> None:
    """The group and its timeline, and the actor's log (every operation on one group)."""
    n.groups.add(op.group)
    n.convs.add(op.group)
    n.users.add(op.actor)


def needs_create(op: CreateGroup, n: Needs, plan: Plan) -> None:
    n.users.add(op.actor)
    n.social.add(op.actor)
    _names_users(n, plan, op.members)


def needs_add(op: AddMembers, n: Needs, plan: Plan) -> None:
    needs(op, n, plan)
    _names_users(n, plan, op.users)


def needs_target(op: RemoveMember | SetRole | TransferGroup, n: Needs, plan: Plan) -> None:
    needs(op, n, plan)
    n.names.add(op.user)


def needs_transfer(op: TransferGroup, n: Needs, plan: Plan) -> None:
    needs_target(op, n, plan)
    n.social.add(op.actor)
    uid = plan.user_id(op.user)
    if uid is not None:
        n.users.add(uid)
        n.social.add(uid)


# ---------------------------------------------------------------------------- rules


def create(plan: Plan, op: CreateGroup) -> None:
    actor, policy = op.actor, op.policy
    uids = [u for u in _resolve(plan, op.members) if u != actor]
    if 1 + len(uids) > policy.max_group_size:
        raise Refused(ErrorCode.GROUP_FULL, f"a group holds at most {policy.max_group_size}")
    me = plan.social_ro(actor)
    if me.groups_owned >= policy.max_groups_owned:
        raise limit_reached(
            "max_groups_owned",
            policy.max_groups_owned,
            f"you own {policy.max_groups_owned} groups already",
        )
    if me.groups_joined >= policy.max_groups_joined:
        raise limit_reached(
            "max_groups_joined",
            policy.max_groups_joined,
            f"you are in {policy.max_groups_joined} groups already",
        )
    _check_invitable(plan, op, uids)
    ts = plan.ts
    members = {actor: Member(ROLE_OWNER, 1, ts)}
    for uid in uids:
        members[uid] = Member(ROLE_MEMBER, 1, ts)
    g = plan.create_group(plan.new_conv_id(), op.name, op.topic, actor, members)
    for uid in g.members:
        plan.count_groups(uid, owned=int(uid == actor), joined=1)
    op.pos = add_event(
        plan,
        g.conv,
        actor,
        {"type": "created", "name": op.name, "users": [plan.username(u) for u in g.members]},
        g.members,
    )
    op.group = g
    op.names = {u: plan.username(u) for u in g.members}


def add_members(plan: Plan, op: AddMembers) -> None:
    g = _member_group(plan, op, op.group, ROLE_ADMIN)
    uids = _resolve(plan, op.users)
    if any(u in g.members for u in uids):
        raise Refused(ErrorCode.CONFLICT, "already a member")
    bound = op.policy.max_group_size
    if len(g.members) + len(uids) > bound:
        raise Refused(ErrorCode.GROUP_FULL, f"a group holds at most {bound}")
    _check_invitable(plan, op, uids)
    # the new members read the event that adds them: it is their join point
    op.pos = add_event(
        plan,
        g.conv,
        op.actor,
        {"type": "added", "users": [plan.username(u) for u in uids]},
        [*g.members, *uids],
    )
    for uid in uids:
        plan.add_member(g, uid, ROLE_MEMBER, op.pos)
        plan.count_groups(uid, joined=1)


def remove_member(plan: Plan, op: RemoveMember) -> None:
    g = _member_group(plan, op, op.group, ROLE_ADMIN)
    target = _target_member(plan, op, g, op.user, "use GROUP_LEAVE to leave")
    if g.members[target].role >= g.members[op.actor].role:
        raise Refused(ErrorCode.FORBIDDEN, "only the owner removes admins")
    # the removed member reads the event that removes them, and nothing after it
    op.pos = add_event(
        plan, g.conv, op.actor, {"type": "removed", "users": [op.user]}, list(g.members)
    )
    plan.remove_member(g, target)
    plan.count_groups(target, joined=-1)


def leave(plan: Plan, op: LeaveGroup) -> None:
    g = _member_group(plan, op, op.group)
    owner = g.members[op.actor].role == ROLE_OWNER
    if owner and len(g.members) > 1:
        raise Refused(ErrorCode.CONFLICT, "transfer ownership before leaving")
    op.pos = add_event(
        plan,
        g.conv,
        op.actor,
        {"type": "left", "users": [plan.username(op.actor)]},
        list(g.members),
    )
    plan.remove_member(g, op.actor)
    plan.count_groups(op.actor, owned=-int(owner), joined=-1)


def update(plan: Plan, op: UpdateGroup) -> None:
    if op.name is None and op.topic is None:
        raise Refused(ErrorCode.INVALID_FIELD, "give 'name' or 'topic'")
    g = _member_group(plan, op, op.group, ROLE_ADMIN)
    plan.set_group_info(
        g, g.name if op.name is None else op.name, g.topic if op.topic is None else op.topic
    )
    if op.name is not None:
        op.pos = add_event(plan, g.conv, op.actor, {"type": "renamed", "name": op.name}, g.members)
    if op.topic is not None:
        op.pos = add_event(plan, g.conv, op.actor, {"type": "topic", "topic": op.topic}, g.members)


def set_role(plan: Plan, op: SetRole) -> None:
    g = _member_group(plan, op, op.group, ROLE_OWNER)
    target = _target_member(plan, op, g, op.user, "the owner's role changes only by transfer")
    plan.set_role(g, target, ROLE_BY_NAME[op.role])
    op.pos = add_event(
        plan, g.conv, op.actor, {"type": "role", "user": op.user, "role": op.role}, g.members
    )


def transfer(plan: Plan, op: TransferGroup) -> None:
    g = _member_group(plan, op, op.group, ROLE_OWNER)
    target = _target_member(plan, op, g, op.user, "transfer to another member")
    bound = op.policy.max_groups_owned
    if plan.social_ro(target).groups_owned >= bound:
        raise limit_reached("max_groups_owned", bound, f"{op.user} owns {bound} groups already")
    plan.set_role(g, target, ROLE_OWNER)
    plan.set_role(g, op.actor, ROLE_ADMIN)
    plan.set_owner(g, target)
    op.pos = add_event(plan, g.conv, op.actor, {"type": "owner", "user": op.user}, g.members)
    plan.count_groups(target, owned=1)
    plan.count_groups(op.actor, owned=-1)


# ---------------------------------------------------------------------------- deleted bots


def needs_remove_bot(op: RemoveBot, n: Needs, plan: Plan) -> None:
    n.groups.update(op.groups)
    n.convs.update(op.groups)
    n.users.add(op.bot)
    for conv in op.groups:
        g = plan.group_ro(conv)
        if g is not None:
            n.users.update(g.members)
            n.social.update(g.members)


def remove_bot(plan: Plan, op: RemoveBot) -> None:
    """Each group the deleted bot is still in: hand over its ownership if it owned it
    (to the longest-standing admin, else member: an "owner" event), then a "left" event
    marked "deleted", which every member and the bot read; the bot is gone after it."""
    name = plan.username(op.bot)
    for conv in op.groups:
        g = plan.group(conv)
        if g is None or op.bot not in g.members:
            continue
        owned = g.members[op.bot].role == ROLE_OWNER
        others = [u for u in g.members if u != op.bot]
        if owned and others:
            heir = min(others, key=lambda u: (-g.members[u].role, g.members[u].joined, u))
            plan.set_role(g, heir, ROLE_OWNER)
            plan.set_role(g, op.bot, ROLE_ADMIN)
            plan.set_owner(g, heir)
            add_event(plan, conv, op.bot, {"type": "owner", "user": plan.username(heir)}, others)
            plan.count_groups(heir, owned=1)
        add_event(plan, conv, op.bot, {"type": "left", "users": [name], "deleted": True}, g.members)
        plan.remove_member(g, op.bot)
        plan.count_groups(op.bot, owned=-int(owned), joined=-1)
