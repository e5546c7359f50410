"""SEND: who may message whom, and what a message writes.

1:1: the recipient must exist; a user the recipient blocked cannot message them, nor can
anyone but their contacts when their privacy `messages` is "contacts" (`may_message`).
The refusal is NOT_ALLOWED either way, so a sender cannot tell a block from the setting.
A message to oneself is a note: one log entry.

Groups: only a member sends; the message is at the group's next position and in every
member's log (the join point: members added later see history from their joining on, see
rules/groups.py) but those of bots in privacy mode it is not for (rules/bots.py).

A media message (SEND with `media`) was checked against its blobs before it was queued
(rules/media.py); here it stores the media map and the blobs it references.

A retry (the same sender and client message id) gets the first send's answer marked as a
duplicate and writes nothing; the store answers retries of committed sends itself, the
rule those within one batch.

A send may complete tasks of the wallet (rules/tasks.py, trigger "message"): their rewards
are planned with the send, after it, so they commit or are lost together.

The hot path: one function call per send, no objects but the result.
"""

from __future__ import annotations

from liaotian.protocol import ErrorCode, UpdateKind
from liaotian.protocol.messages import encode_message_map

from ..model import VIS_EVERYONE, Social
from ..ops import Refused, SendRequest, SendResult
from ..plan import Needs, Plan, pair
from . import bots, tasks

_MESSAGE = UpdateKind.MESSAGE


def may_message(recipient: Social, sender: int) -> bool:
    """A blocked user cannot message me; with my privacy `messages` at "contacts", only my
    contacts can."""
    if sender in recipient.blocked:
        return False
    return recipient.messages == VIS_EVERYONE or sender in recipient.contacts


def needs(s: SendRequest, n: Needs, plan: Plan) -> None:
    n.users.add(s.sender_id)
    if s.rewards is not None:
        tasks.needs_progress(s.sender_id, n)
    if s.group is not None:
        n.groups.add(s.group)
        n.convs.add(s.group)
        g = plan.group_ro(s.group)
        if g is not None:
            n.users.update(g.members)
        return
    n.names.add(s.to_name)
    rcpt = plan.user_id(s.to_name)
    if rcpt is not None:
        n.users.add(rcpt)
        n.social.add(rcpt)
        n.pairs.add(pair(s.sender_id, rcpt))


def plan_send(plan: Plan, s: SendRequest) -> None:
    """Check and stage one send; refuses (Refused) before it changes anything."""
    key = (s.sender_id, s.cmid)
    first = plan.planned_send(key)
    if first is not None:  # the same cmid twice in a batch (or its parent): a retry
        if first.result is None:
            raise Refused(first.error or ErrorCode.INTERNAL_ERROR, first.error_message)
        s.result = first.result.as_duplicate()
        return
    if s.rewards is not None:  # tasks a send completes are configured
        found = tasks.due_on_send(plan, s)  # reads only: before the send stages anything
        if s.group is not None:
            _group_send(plan, s)
        else:
            _direct_send(plan, s)
        if found:
            tasks.pay(plan, s.sender_id, found, s.rewards.item_secret)
    elif s.group is not None:
        _group_send(plan, s)
    else:
        _direct_send(plan, s)
    plan.cmids[key] = s


def _direct_send(plan: Plan, s: SendRequest) -> None:
    sender = s.sender_id
    rcpt = plan.user_id(s.to_name)
    if rcpt is None:
        raise Refused(ErrorCode.UNKNOWN_USER)
    if rcpt != sender and not may_message(plan.social_ro(rcpt), sender):
        raise Refused(ErrorCode.NOT_ALLOWED)
    conv = plan.direct_conv(sender, rcpt)
    pos = plan.next_pos(conv)
    mid = plan.new_message_id()
    sseq = plan.next_seq(sender)
    rseq = sseq if rcpt == sender else plan.next_seq(rcpt)
    ts = plan.ts
    body = encode_message_map(
        mid, conv, pos, s.sender_name, s.to_name, ts, s.cmid, s.text, s.meta, None, None, s.media
    )
    plan.add_message(mid, conv, pos, sender, sseq, s.cmid, body)
    if s.blob_refs:
        plan.add_blob_refs(conv, pos, s.blob_refs)
    plan.add_update(sender, sseq, _MESSAGE, message_id=mid)
    if rcpt != sender:
        plan.add_update(rcpt, rseq, _MESSAGE, message_id=mid)
    s.result = SendResult(
        id=mid,
        conv=conv,
        pos=pos,
        ts=ts,
        sender_seq=sseq,
        cmid=s.cmid,
        recipient_id=rcpt,
        recipient_seq=rseq,
        body=body,
    )


def _group_send(plan: Plan, s: SendRequest) -> None:
    assert s.group is not None
    sender = s.sender_id
    g = plan.group_ro(s.group)
    if g is None or sender not in g.members:
        raise Refused(ErrorCode.NOT_MEMBER)
    conv = g.conv
    pos = plan.next_pos(conv)
    mid = plan.new_message_id()
    sseq = plan.next_seq(sender)
    ts = plan.ts
    body = encode_message_map(
        mid, conv, pos, s.sender_name, "", ts, s.cmid, s.text, s.meta, conv, None, s.media
    )
    plan.add_message(mid, conv, pos, sender, sseq, s.cmid, body)
    if s.blob_refs:
        plan.add_blob_refs(conv, pos, s.blob_refs)
    add_update = plan.add_update
    add_update(sender, sseq, _MESSAGE, message_id=mid)
    next_seq = plan.next_seq
    fanout = []
    hidden = (
        bots.hidden_members(s.bots, conv, g.members, sender, s.text) if s.bots is not None else ()
    )
    for uid in g.members:
        if uid != sender and uid not in hidden:
            seq = next_seq(uid)
            add_update(uid, seq, _MESSAGE, message_id=mid)
            fanout.append((uid, seq))
    s.result = SendResult(
        id=mid,
        conv=conv,
        pos=pos,
        ts=ts,
        sender_seq=sseq,
        cmid=s.cmid,
        body=body,
        fanout=tuple(fanout),
    )
