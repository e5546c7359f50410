"""Contacts, blocking, privacy and who sees a profile.

Relation changes read and change both users' relations inside the group commit, so two
requests crossing each other resolve in one order. A contact change lands in the other
party's update log ("request", "accepted", ...) and, as "changed", in the actor's own log
so the actor's other devices refresh their list.

Blocking is silent: the blocked user is told nothing. It ends a contact and any pending
request either way; a request from a user who is blocked is accepted and dropped (listed
as the requester's outgoing request, never shown to its target), and arrives if the block
is lifted, as if it had been in transit.
"""

from __future__ import annotations

import msgpack
from liaotian.protocol import ErrorCode, UpdateKind

from ..model import (
    REL_BLOCKED,
    REL_CONTACT,
    REL_REQUEST_DROPPED,
    REL_REQUESTED,
    VIS_CONTACTS,
    VIS_EVERYONE,
    VISIBILITY_BY_NAME,
    Social,
)
from ..ops import (
    AcceptContact,
    BlockUser,
    CancelContact,
    DeclineContact,
    Refused,
    RelationOp,
    RemoveContact,
    RequestContact,
    SayHello,
    SetPrivacy,
    UnblockUser,
    limit_reached,
)
from ..plan import Needs, Plan

_packb = msgpack.packb


def shows(owner: Social, setting: int, viewer: int) -> bool:
    """Whether `viewer` may see what `setting` of `owner` (presence, profile or receipts)
    guards: everyone, contacts or nobody, and never a user `owner` blocked."""
    if viewer in owner.blocked:
        return False
    if setting == VIS_EVERYONE:
        return True
    return setting == VIS_CONTACTS and viewer in owner.contacts


# ---------------------------------------------------------------------------- helpers


def _notify(plan: Plan, actor: int, target: int, event: str, note: str = "") -> None:
    """Tell the target (`event`, with a hello's `note`) and the actor's devices ("changed")."""
    data = {"event": event, "user": plan.username(actor)}
    if note:
        data["note"] = note
    plan.log(target, UpdateKind.CONTACT, _packb(data))
    _changed(plan, actor, target)


def _changed(plan: Plan, actor: int, target: int) -> None:
    plan.log(actor, UpdateKind.CONTACT, _packb({"event": "changed", "user": plan.username(target)}))


def _check_contacts_room(plan: Plan, op: RelationOp, target: int) -> None:
    """Both parties are below max_contacts (3009 otherwise, naming who is not)."""
    bound = op.policy.max_contacts
    if len(plan.social_ro(op.actor).contacts) >= bound:
        raise limit_reached("max_contacts", bound, f"you have {bound} contacts already")
    if len(plan.social_ro(target).contacts) >= bound:
        raise limit_reached(
            "max_contacts", bound, f"{plan.username(target)} has {bound} contacts already"
        )


def _make_contacts(plan: Plan, a: int, b: int) -> None:
    """a and b become contacts; a request either way is answered by it."""
    for x, y in ((a, b), (b, a)):
        if y in plan.social_ro(x).outgoing:
            plan.unrelate(x, y, REL_REQUESTED)
            plan.unrelate(x, y, REL_REQUEST_DROPPED)
        plan.relate(x, y, REL_CONTACT)


# ---------------------------------------------------------------------------- needs


def needs(op: RelationOp, n: Needs, plan: Plan) -> None:
    n.names.add(op.user)
    n.users.add(op.actor)
    n.social.add(op.actor)
    uid = plan.user_id(op.user)
    if uid is not None:
        n.users.add(uid)
        n.social.add(uid)


def needs_privacy(op: SetPrivacy, n: Needs, plan: Plan) -> None:
    n.users.add(op.actor)
    n.social.add(op.actor)


# ---------------------------------------------------------------------------- rules


def _target(plan: Plan, op: RelationOp) -> int:
    target = plan.user_id(op.user)
    if target is None:
        raise Refused(ErrorCode.UNKNOWN_USER)
    if target == op.actor:
        raise Refused(ErrorCode.CONFLICT, "not with yourself")
    return target


def request(plan: Plan, op: RequestContact | SayHello) -> None:
    target, actor = _target(plan, op), op.actor
    me, them = plan.social_ro(actor), plan.social_ro(target)
    if target in me.contacts:
        raise Refused(ErrorCode.CONFLICT, "already a contact")
    if target in me.blocked:
        raise Refused(ErrorCode.CONFLICT, "unblock that user first")
    if target in me.outgoing:
        return  # already pending: OK, nothing new
    if target in me.incoming:  # they asked first: this is an accept
        _check_contacts_room(plan, op, target)
        _make_contacts(plan, actor, target)
        _notify(plan, actor, target, "accepted")
        return
    bound = op.policy.max_contacts
    if len(me.contacts) >= bound:
        raise limit_reached("max_contacts", bound, f"you have {bound} contacts already")
    bound = op.policy.max_outgoing_requests
    if len(me.outgoing) >= bound:
        raise limit_reached(
            "max_outgoing_requests",
            bound,
            f"you have {bound} contact requests waiting for an answer",
        )
    if actor in them.blocked:
        # dropped, but kept on the requester's side so the block stays invisible
        plan.relate(actor, target, REL_REQUEST_DROPPED)
        _changed(plan, actor, target)
        return
    plan.relate(actor, target, REL_REQUESTED)
    _notify(plan, actor, target, "request", op.note if isinstance(op, SayHello) else "")


def accept(plan: Plan, op: AcceptContact) -> None:
    target = _target(plan, op)
    if target not in plan.social_ro(op.actor).incoming:
        raise Refused(ErrorCode.CONFLICT, "no request from that user")
    _check_contacts_room(plan, op, target)
    _make_contacts(plan, op.actor, target)
    _notify(plan, op.actor, target, "accepted")


def decline(plan: Plan, op: DeclineContact) -> None:
    target = _target(plan, op)
    if target not in plan.social_ro(op.actor).incoming:
        raise Refused(ErrorCode.CONFLICT, "no request from that user")
    plan.unrelate(target, op.actor, REL_REQUESTED)
    _notify(plan, op.actor, target, "declined")


def cancel(plan: Plan, op: CancelContact) -> None:
    target, actor = _target(plan, op), op.actor
    if target not in plan.social_ro(actor).outgoing:
        return  # nothing pending (or silently dropped): cancelling is idempotent
    if actor not in plan.social_ro(target).incoming:  # dropped: the target never saw it
        plan.unrelate(actor, target, REL_REQUEST_DROPPED)
        _changed(plan, actor, target)
        return
    plan.unrelate(actor, target, REL_REQUESTED)
    _notify(plan, actor, target, "cancelled")


def remove(plan: Plan, op: RemoveContact) -> None:
    target, actor = _target(plan, op), op.actor
    if target not in plan.social_ro(actor).contacts:
        raise Refused(ErrorCode.CONFLICT, "not a contact")
    plan.unrelate(actor, target, REL_CONTACT)
    plan.unrelate(target, actor, REL_CONTACT)
    _notify(plan, actor, target, "removed")


def block(plan: Plan, op: BlockUser) -> None:
    target, actor = _target(plan, op), op.actor
    if target in plan.social_ro(actor).blocked:
        return
    plan.relate(actor, target, REL_BLOCKED)
    for a, b in ((actor, target), (target, actor)):  # no contact, no request either way
        plan.unrelate(a, b, REL_CONTACT)
        plan.unrelate(a, b, REL_REQUESTED)
        plan.unrelate(a, b, REL_REQUEST_DROPPED)
    _changed(plan, actor, target)


def unblock(plan: Plan, op: UnblockUser) -> None:
    target, actor = _target(plan, op), op.actor
    if target not in plan.social_ro(actor).blocked:
        return
    plan.unrelate(actor, target, REL_BLOCKED)
    _changed(plan, actor, target)
    if actor in plan.social_ro(target).outgoing and target not in plan.social_ro(actor).incoming:
        # a request dropped while blocked now arrives, as if it had been in transit
        plan.unrelate(target, actor, REL_REQUEST_DROPPED)
        plan.relate(target, actor, REL_REQUESTED)
        plan.log(
            actor, UpdateKind.CONTACT, _packb({"event": "request", "user": plan.username(target)})
        )


def set_privacy(plan: Plan, op: SetPrivacy) -> None:
    def level(name: str | None) -> int | None:
        return None if name is None else VISIBILITY_BY_NAME[name]

    plan.set_privacy(
        op.actor,
        presence=level(op.presence),
        profile=level(op.profile),
        messages=level(op.messages),
        groups=level(op.groups),
        receipts=level(op.receipts),
        coins=level(op.coins),
        nearby=level(op.nearby),
    )
