"""Channels: forums of up to 100,000 members that read one log (fan-out on read).

A group copies each message into every member's update log (fan-out on write): right for
chats of a few hundred, wrong for a forum. A channel keeps ONE log of posts; a post is
one row however many members there are. Each member keeps a read position per channel,
and what is unread is the distance from it to the channel's last position, so nothing is
written per member when someone posts. Online members are told "channel C has news up
to position P" after the commit, coalesced (server/handlers/channels.py); they fetch the
posts in pages.

Every rule reads and writes by key: the channel's own row, the actor's member row, the
post, comment or like it names (chat/plan.py ChannelPlan). Nothing loads, counts or walks
the members: joining, leaving and membership checks cost the same at 10 members and at
100,000 (the member count is kept in the channel's row).

Roles: the owner (one) > admins > members. Admins post (members too where the channel
allows it), pin, delete any post or comment, ban and unban members (the owner also
admins), and change the settings; only the owner appoints admins. Members comment under
posts and like them (one like per member and post). Everyone deletes their own posts and
comments. Slow mode lets a member (not an admin) post or comment once per N seconds; the
batch's time (`plan.ts`) is the clock.

Joining: an open channel takes anyone not banned; otherwise the invitation token is
needed (an admin may replace it, which voids the old links). A new member has nothing
unread (their read position starts at the channel's last post) and is shown the rules
(the answer carries the channel). A ban removes the member and keeps them out until
unbanned. The member's own log records joining, leaving and being banned (UpdateKind
CHANNEL), so their other devices follow; reading moves a READ entry into it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import msgpack
from liaotian.protocol import ErrorCode, UpdateKind

from ..model import (
    ROLE_ADMIN,
    ROLE_BY_NAME,
    ROLE_MEMBER,
    ROLE_OWNER,
    ChannelMember,
    ChannelState,
    CommentState,
    PostState,
)
from ..ops import (
    BanMember,
    Comment,
    CreateChannel,
    DeleteComment,
    DeletePost,
    JoinChannel,
    LeaveChannel,
    Like,
    Op,
    Pin,
    Post,
    ReadChannel,
    Refused,
    SetChannelRole,
    TransferChannel,
    UpdateChannel,
    limit_reached,
)
from ..plan import ChannelPlan, Needs
from . import tasks

_packb = msgpack.packb
MAX_SLOW_MODE = 86_400  # seconds: a day between two posts at most


# ---------------------------------------------------------------------------- helpers


def _channel(plan: ChannelPlan, conv: int) -> ChannelState:
    ch = plan.channel(conv)
    if ch is None:
        raise Refused(ErrorCode.NOT_MEMBER, "no such channel")
    return ch


def _member(
    plan: ChannelPlan, op: Op, conv: int, min_role: int = ROLE_MEMBER
) -> tuple[ChannelState, ChannelMember]:
    """The channel and the actor's member row, or NOT_MEMBER (BANNED if banned) or
    FORBIDDEN below `min_role`."""
    ch = _channel(plan, conv)
    m = plan.channel_member(conv, op.actor)
    if m is None:
        if plan.channel_banned(conv, op.actor):
            raise Refused(ErrorCode.BANNED)
        raise Refused(ErrorCode.NOT_MEMBER)
    if m.role < min_role:
        raise Refused(ErrorCode.FORBIDDEN)
    return ch, m


def _post(plan: ChannelPlan, conv: int, pos: int) -> PostState:
    p = plan.channel_post(conv, pos)
    if p is None or p.deleted:
        raise Refused(ErrorCode.NOT_FOUND, f"no post {pos} in this channel")
    return p


def _slow_mode(ch: ChannelState, m: ChannelMember, ts: int) -> None:
    """Refuse a member's post or comment within the slow-mode interval (admins are free)."""
    if ch.slow_mode and m.role < ROLE_ADMIN and m.last_post:
        wait = m.last_post + ch.slow_mode * 1000 - ts
        if wait > 0:
            raise Refused(
                ErrorCode.SLOW_MODE,
                f"slow mode: one post per {ch.slow_mode} s",
                retry_after=round(wait / 1000, 3),
            )


def _check_settings(slow_mode: int | None) -> None:
    if slow_mode is not None and not 0 <= slow_mode <= MAX_SLOW_MODE:
        raise Refused(ErrorCode.INVALID_FIELD, f"slow_mode is 0..{MAX_SLOW_MODE} seconds")


def _event(plan: ChannelPlan, uid: int, event: str, ch: ChannelState) -> None:
    """An entry in the user's own log: their devices learn of the change of membership."""
    plan.log(uid, UpdateKind.CHANNEL, _packb({"event": event, "channel": ch.conv, "name": ch.name}))


def _answer(
    plan: ChannelPlan, op: CreateChannel | JoinChannel | UpdateChannel, ch: ChannelState
) -> None:
    """The outcome CHANNEL_INFO is built from: the channel, the actor's row, the owner."""
    op.state, op.member = ch, plan.channel_member(ch.conv, op.actor)
    op.owner_name = plan.username(ch.owner)


def unread(read_pos: int, last_pos: int) -> int:
    """A member's unread posts: the distance from their read position to the last post."""
    return max(0, last_pos - read_pos)


# ---------------------------------------------------------------------------- needs


def needs_create(op: CreateChannel, n: Needs, plan: Any) -> None:
    n.users.add(op.actor)


def needs(op: Any, n: Needs, plan: Any) -> None:
    """The channel and the actor's rows (every operation on one channel)."""
    n.channels.add(op.channel)
    n.members.add((op.channel, op.actor))


def needs_logged(op: JoinChannel | LeaveChannel | ReadChannel, n: Needs, plan: Any) -> None:
    """... and the actor's log, which the operation writes to."""
    needs(op, n, plan)
    n.users.add(op.actor)


def needs_target(op: SetChannelRole | BanMember | TransferChannel, n: Needs, plan: Any) -> None:
    """... and the named user's rows and log."""
    needs(op, n, plan)
    n.names.add(op.user)
    uid = plan.user_id(op.user)
    if uid is not None:
        n.members.add((op.channel, uid))
        n.users.add(uid)


def needs_post(op: Post, n: Needs, plan: Any) -> None:
    needs(op, n, plan)
    n.post_cmids.add((op.channel, op.actor, op.cmid))
    if op.policy.wallet.on_forum:
        tasks.needs_progress(op.actor, n)


def needs_new_comment(op: Comment, n: Needs, plan: Any) -> None:
    needs_on_post(op, n, plan)
    if op.policy.wallet.on_forum:
        tasks.needs_progress(op.actor, n)


def _forum_task(plan: ChannelPlan, op: Post | Comment) -> tasks.Due:
    """The wallet's "forum" tasks this post or comment completes (reads only: asked before
    anything is staged, paid after, in the same commit; a retried post pays nothing)."""
    found = op.policy.wallet.on_forum
    return tasks.due(plan, op.actor, found) if found else []


def needs_on_post(
    op: Comment | Pin | DeletePost | Like | DeleteComment, n: Needs, plan: Any
) -> None:
    needs(op, n, plan)
    n.posts.add((op.channel, op.post))


def needs_like(op: Like, n: Needs, plan: Any) -> None:
    needs_on_post(op, n, plan)
    n.likes.add((op.channel, op.post, op.actor))


def needs_comment(op: DeleteComment, n: Needs, plan: Any) -> None:
    needs_on_post(op, n, plan)
    n.comments.add((op.channel, op.post, op.n))


# ---------------------------------------------------------------------------- membership


def create(plan: ChannelPlan, op: CreateChannel) -> None:
    _check_settings(op.slow_mode)
    ts = plan.ts
    ch = ChannelState(
        conv=plan.new_conv_id(),
        name=op.name,
        about=op.about,
        rules=op.rules,
        owner=op.actor,
        created=ts,
        open=op.open,
        members_post=op.members_post,
        slow_mode=op.slow_mode,
        invite=op.invite,
        members=1,
        last_pos=0,
    )
    plan.put_channel(ch, new=True)
    plan.put_channel_member(ch.conv, op.actor, ChannelMember(ROLE_OWNER, 0, ts))
    _event(plan, op.actor, "created", ch)
    _answer(plan, op, ch)


def join(plan: ChannelPlan, op: JoinChannel) -> None:
    ch = _channel(plan, op.channel)
    if plan.channel_banned(ch.conv, op.actor):
        raise Refused(ErrorCode.BANNED)
    if plan.channel_member(ch.conv, op.actor) is not None:
        raise Refused(ErrorCode.CONFLICT, "already a member")
    if not ch.open and (not ch.invite or op.invite != ch.invite):
        raise Refused(ErrorCode.INVALID_INVITE)
    bound = op.policy.max_channel_members
    if ch.members >= bound:
        raise Refused(
            ErrorCode.GROUP_FULL,
            f"a channel holds at most {bound} members",
            data={"limit": "max_channel_members", "max": bound},
        )
    # nothing is unread at joining: the history is there to read, not to count
    plan.put_channel_member(ch.conv, op.actor, ChannelMember(ROLE_MEMBER, ch.last_pos, plan.ts))
    ch = replace(ch, members=ch.members + 1)
    plan.put_channel(ch)
    _event(plan, op.actor, "joined", ch)
    _answer(plan, op, ch)


def leave(plan: ChannelPlan, op: LeaveChannel) -> None:
    ch, m = _member(plan, op, op.channel)
    if m.role == ROLE_OWNER and ch.members > 1:
        raise Refused(ErrorCode.CONFLICT, "the owner cannot leave a channel with members")
    plan.put_channel_member(ch.conv, op.actor, None)
    ch = replace(ch, members=ch.members - 1)
    plan.put_channel(ch)
    _event(plan, op.actor, "left", ch)


def update(plan: ChannelPlan, op: UpdateChannel) -> None:
    ch, _m = _member(plan, op, op.channel, ROLE_ADMIN)
    _check_settings(op.slow_mode)
    asked = (
        ("name", op.name),
        ("about", op.about),
        ("rules", op.rules),
        ("open", op.open),
        ("members_post", op.members_post),
        ("slow_mode", op.slow_mode),
        ("invite", op.invite),
    )
    changes: dict[str, Any] = {k: v for k, v in asked if v is not None}
    if not changes:
        raise Refused(ErrorCode.INVALID_FIELD, "nothing to change")
    ch = replace(ch, **changes)
    plan.put_channel(ch)
    _answer(plan, op, ch)


def set_role(plan: ChannelPlan, op: SetChannelRole) -> None:
    ch, _m = _member(plan, op, op.channel, ROLE_OWNER)
    target = plan.user_id(op.user)
    tm = plan.channel_member(ch.conv, target) if target is not None else None
    if target is None or tm is None:
        raise Refused(ErrorCode.CONFLICT, "not a member")
    if target == op.actor:
        raise Refused(ErrorCode.CONFLICT, "the owner's role does not change")
    role = ROLE_BY_NAME.get(op.role)
    if role not in (ROLE_MEMBER, ROLE_ADMIN):
        raise Refused(ErrorCode.INVALID_FIELD, "role is 'member' or 'admin'")
    plan.put_channel_member(ch.conv, target, replace(tm, role=role))


def transfer(plan: ChannelPlan, op: TransferChannel) -> None:
    """The owner hands the channel over: the member named becomes its owner (their log
    says "owner"), the old owner an admin."""
    ch, m = _member(plan, op, op.channel, ROLE_OWNER)
    target = plan.user_id(op.user)
    tm = plan.channel_member(ch.conv, target) if target is not None else None
    if target is None or tm is None:
        raise Refused(ErrorCode.CONFLICT, "not a member")
    if target == op.actor:
        raise Refused(ErrorCode.CONFLICT, "you own it already")
    plan.put_channel_member(ch.conv, target, replace(tm, role=ROLE_OWNER))
    plan.put_channel_member(ch.conv, op.actor, replace(m, role=ROLE_ADMIN))
    ch = replace(ch, owner=target)
    plan.put_channel(ch)
    _event(plan, target, "owner", ch)


def ban(plan: ChannelPlan, op: BanMember) -> None:
    ch, m = _member(plan, op, op.channel, ROLE_ADMIN)
    target = plan.user_id(op.user)
    if target is None:
        raise Refused(ErrorCode.UNKNOWN_USER, f"no such user: {op.user}")
    if target == op.actor:
        raise Refused(ErrorCode.CONFLICT, "you cannot ban yourself")
    op.target = target
    banned = plan.channel_banned(ch.conv, target)
    if not op.ban:
        if not banned:
            raise Refused(ErrorCode.CONFLICT, "not banned")
        plan.set_channel_ban(ch.conv, target, False, op.actor)
        return
    if banned:
        raise Refused(ErrorCode.CONFLICT, "already banned")
    tm = plan.channel_member(ch.conv, target)
    if tm is not None:
        if tm.role >= m.role:
            raise Refused(ErrorCode.FORBIDDEN, "only the owner bans admins")
        plan.put_channel_member(ch.conv, target, None)
        ch = replace(ch, members=ch.members - 1)
        plan.put_channel(ch)
        _event(plan, target, "banned", ch)
    plan.set_channel_ban(ch.conv, target, True, op.actor)


def read(plan: ChannelPlan, op: ReadChannel) -> None:
    ch, m = _member(plan, op, op.channel)
    if op.read_pos > ch.last_pos:
        raise Refused(ErrorCode.INVALID_FIELD, "pos is beyond the channel's last post")
    if op.read_pos <= m.read_pos:
        return  # read positions only move forward
    plan.put_channel_member(ch.conv, op.actor, replace(m, read_pos=op.read_pos))
    plan.log(
        op.actor,
        UpdateKind.READ,
        _packb({"conv": ch.conv, "user": plan.username(op.actor), "pos": op.read_pos}),
    )


# ---------------------------------------------------------------------------- posts


def post(plan: ChannelPlan, op: Post) -> None:
    ch, m = _member(plan, op, op.channel)
    first = plan.channel_post_by_cmid(ch.conv, op.actor, op.cmid)
    if first is not None:  # a retry: the first post's answer, nothing written
        p = plan.channel_post(ch.conv, first)
        op.pos, op.duplicate = first, True
        if p is not None:
            op.id, op.ts = p.id, p.ts
        return
    if m.role < ROLE_ADMIN and not ch.members_post:
        raise Refused(ErrorCode.FORBIDDEN, "only admins post in this channel")
    ts = plan.ts
    _slow_mode(ch, m, ts)
    due = _forum_task(plan, op)
    pos = ch.last_pos + 1
    p = PostState(plan.new_item_id(), op.actor, ts)
    plan.add_post(ch.conv, pos, p, op.cmid, op.text)
    plan.put_channel(replace(ch, last_pos=pos, last_ts=ts))
    # one's own post is read; it does not hide posts one has not read yet
    plan.put_channel_member(
        ch.conv,
        op.actor,
        replace(m, last_post=ts, read_pos=pos if m.read_pos == pos - 1 else m.read_pos),
    )
    op.pos, op.id, op.ts = pos, p.id, ts
    if due:
        tasks.pay(plan, op.actor, due, op.policy.wallet.item_secret)


def comment(plan: ChannelPlan, op: Comment) -> None:
    ch, m = _member(plan, op, op.channel)
    p = _post(plan, ch.conv, op.post)
    ts = plan.ts
    _slow_mode(ch, m, ts)
    due = _forum_task(plan, op)
    n = p.comments + 1
    c_id = plan.new_item_id()
    plan.add_comment(ch.conv, op.post, n, CommentState(c_id, op.actor), op.text)
    plan.put_post(ch.conv, op.post, replace(p, comments=n))
    plan.put_channel_member(ch.conv, op.actor, replace(m, last_post=ts))
    op.pos, op.n, op.id, op.ts = op.post, n, c_id, ts
    if due:
        tasks.pay(plan, op.actor, due, op.policy.wallet.item_secret)


def like(plan: ChannelPlan, op: Like) -> None:
    ch, _m = _member(plan, op, op.channel)
    p = _post(plan, ch.conv, op.post)
    liked = plan.channel_liked(ch.conv, op.post, op.actor)
    if op.like != liked:
        plan.set_like(ch.conv, op.post, op.actor, op.like)
        p = replace(p, likes=p.likes + (1 if op.like else -1))
        plan.put_post(ch.conv, op.post, p)
    op.likes = p.likes


def pin(plan: ChannelPlan, op: Pin) -> None:
    ch, _m = _member(plan, op, op.channel, ROLE_ADMIN)
    _post(plan, ch.conv, op.post)
    pins = ch.pins
    if op.pin and op.post not in pins:
        bound = op.policy.max_channel_pins
        if len(pins) >= bound:
            raise limit_reached("max_channel_pins", bound, f"at most {bound} pinned posts")
        pins = (*pins, op.post)
    elif not op.pin:
        pins = tuple(p for p in pins if p != op.post)
    if pins != ch.pins:
        plan.put_channel(replace(ch, pins=pins))
    op.pins = pins


def delete_post(plan: ChannelPlan, op: DeletePost) -> None:
    ch, m = _member(plan, op, op.channel)
    p = _post(plan, ch.conv, op.post)
    if p.author != op.actor and m.role < ROLE_ADMIN:
        raise Refused(ErrorCode.FORBIDDEN, "only admins delete others' posts")
    plan.put_post(ch.conv, op.post, replace(p, deleted=True))
    if op.post in ch.pins:
        plan.put_channel(replace(ch, pins=tuple(x for x in ch.pins if x != op.post)))
    op.pos = op.post


def delete_comment(plan: ChannelPlan, op: DeleteComment) -> None:
    ch, m = _member(plan, op, op.channel)
    _post(plan, ch.conv, op.post)
    c = plan.channel_comment(ch.conv, op.post, op.n)
    if c is None or c.deleted:
        raise Refused(ErrorCode.NOT_FOUND, f"no comment {op.n} under post {op.post}")
    if c.author != op.actor and m.role < ROLE_ADMIN:
        raise Refused(ErrorCode.FORBIDDEN, "only admins delete others' comments")
    plan.put_comment(ch.conv, op.post, op.n, replace(c, deleted=True))
    op.pos = op.post
