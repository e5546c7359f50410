"""Red packets (hongbao) in groups and direct conversations, and the expiry of every
reservation.

Sending one reserves its amount as a pending transfer from the sender to ESCROW and puts a
"red_packet" event in the conversation. Its shares are fixed at sending: equal, or random
by the "double mean" rule drawn from a seed kept with the packet (chat/ledger.shares), so
a replay or a crash cannot change them. Each member claims at most once (a second claim
gets the first one's answer); claims are operations planned in the group commit, so their
order in the batch decides who gets which share and who finds the packet empty. Each claim
is a posted transfer ESCROW -> claimer and a "red_packet_claim" event.

When the last share is claimed, or when the packet expires (an ExpirePending the server
submits when it is due), the reservation is posted for the claimed total: the unclaimed
rest stays with the sender, and an expiry says so with a "red_packet_expired" event.

Only members of the conversation claim: in a group, its members now (the sender too); in
a direct conversation, the other participant. Sending to a user follows their privacy
`coins`, like a payment.
"""

from __future__ import annotations

from typing import Any

from liaotian.protocol import ErrorCode

from ..ledger import (
    CODE_CLAIM,
    CODE_EXPIRED,
    CODE_ORDER,
    CODE_PACKET,
    ESCROW,
    MAX_AMOUNT,
    PACKET_EMPTIED,
    PACKET_EXPIRED,
    PACKET_OPEN,
    SPLIT_BY_NAME,
    Packet,
    Transfer,
)
from ..ops import ClaimPacket, ExpirePending, Refused, SendPacket
from ..plan import Needs, Plan, pair
from . import shop
from .groups import add_event
from .wallet import (
    answered,
    balance_map,
    check_memo,
    close,
    direct_event,
    hold,
    keep_answer,
    may_send_coins,
    move,
    needs_reservation,
    params_of,
    transfer_map,
)


def _event(plan: Plan, p: Packet, actor: int, event: dict[str, Any]) -> int:
    """An event of the packet's conversation, from `actor`; its position."""
    if p.peer:
        other = p.peer if actor == p.sender else p.sender
        return direct_event(plan, actor, other, event)[1]
    g = plan.group_ro(p.conv)
    return add_event(plan, p.conv, actor, event, g.members if g is not None else ())


# ---------------------------------------------------------------------------- needs


def needs_packet(pid: int, n: Needs, plan: Plan) -> None:
    """A packet, and once it is loaded, its reservation, sender and conversation."""
    n.packets.add(pid)
    n.accounts.add(ESCROW)
    p = plan.packet_ro(pid)
    if p is None:
        return
    n.pendings.add(p.pending)
    n.accounts.add(p.sender)
    n.users.add(p.sender)
    if p.peer:
        n.users.add(p.peer)
        n.accounts.add(p.peer)
        n.pairs.add(pair(p.sender, p.peer))
    else:
        n.groups.add(p.conv)
        n.convs.add(p.conv)
        g = plan.group_ro(p.conv)
        if g is not None:
            n.users.update(g.members)


def needs_send(op: SendPacket, n: Needs, plan: Plan) -> None:
    if op.key:
        n.keys.add((op.actor, op.key))
    n.users.add(op.actor)
    n.accounts.update((op.actor, ESCROW))
    if op.group is not None:
        n.groups.add(op.group)
        n.convs.add(op.group)
        g = plan.group_ro(op.group)
        if g is not None:
            n.users.update(g.members)
        return
    n.names.add(op.to)
    uid = plan.user_id(op.to)
    if uid is not None:
        n.users.add(uid)
        n.social.add(uid)
        n.pairs.add(pair(op.actor, uid))


def needs_claim(op: ClaimPacket, n: Needs, plan: Plan) -> None:
    n.users.add(op.actor)
    n.accounts.add(op.actor)
    needs_packet(op.packet, n, plan)


def needs_expire(op: ExpirePending, n: Needs, plan: Plan) -> None:
    needs_reservation(op.pending, n, plan)
    p = plan.pending(op.pending)
    if p is not None and p.code == CODE_PACKET:
        needs_packet(p.ref, n, plan)
    elif p is not None and p.code == CODE_ORDER:
        shop.needs_order(p.ref, n, plan)


# ---------------------------------------------------------------------------- rules


def send(plan: Plan, op: SendPacket) -> None:
    params = params_of(op, op.group, op.to, op.amount, op.count, op.split, op.memo)
    if answered(plan, op, params):
        return
    bound = op.policy.wallet.max_packet_shares
    if type(op.count) is not int or not 1 <= op.count <= bound:
        raise Refused(ErrorCode.INVALID_FIELD, f"count must be 1..{bound}")
    if type(op.amount) is not int or not op.count <= op.amount <= MAX_AMOUNT:
        raise Refused(
            ErrorCode.INVALID_FIELD,
            f"amount must be {op.count}..{MAX_AMOUNT}: every share is at least 1",
        )
    split = SPLIT_BY_NAME.get(op.split)
    if split is None:
        raise Refused(ErrorCode.INVALID_FIELD, "split must be 'equal' or 'random'")
    check_memo(op.memo)
    actor, peer = op.actor, 0
    if op.group is not None:
        g = plan.group_ro(op.group)
        if g is None or actor not in g.members:
            raise Refused(ErrorCode.NOT_MEMBER)
        conv = g.conv
    else:
        found = plan.user_id(op.to)
        if found is None:
            raise Refused(ErrorCode.UNKNOWN_USER)
        if found == actor:
            raise Refused(ErrorCode.CONFLICT, "not to yourself")
        if not may_send_coins(plan.social_ro(found), actor):
            raise Refused(ErrorCode.NOT_ALLOWED)
        if op.count != 1:
            raise Refused(ErrorCode.INVALID_FIELD, "a packet to one user has one share")
        peer = found
        conv = plan.direct_conv(actor, peer)
    pid = plan.new_packet_id()
    expires = plan.ts + op.policy.wallet.packet_ttl_ms
    t = hold(
        plan,
        actor,
        ESCROW,
        op.amount,
        CODE_PACKET,
        expires=expires,
        ref=pid,
        memo=op.memo,
        actor=actor,
        key=op.key,
    )
    p = Packet(
        pid, actor, conv, peer, op.amount, op.count, split, op.seed, t.id, expires, op.memo, plan.ts
    )
    plan.add_packet(p)
    event: dict[str, Any] = {
        "type": "red_packet",
        "packet": pid,
        "amount": op.amount,
        "count": op.count,
        "split": op.split,
        "expires": expires,
    }
    if op.memo:
        event["memo"] = op.memo
    op.pos = _event(plan, p, actor, event)
    op.result = {
        "packet": pid,
        "conv": conv,
        "pos": op.pos,
        "expires": expires,
        "transfer": transfer_map(plan.username, t),
        **balance_map(plan.account(actor)),
    }
    keep_answer(plan, op, params)


def _may_claim(plan: Plan, p: Packet, uid: int) -> bool:
    if p.peer:
        return uid == p.peer
    g = plan.group_ro(p.conv)
    return g is not None and uid in g.members


def claim(plan: Plan, op: ClaimPacket) -> None:
    p = plan.packet(op.packet)
    if p is None or not _may_claim(plan, p, op.actor):
        raise Refused(ErrorCode.NOT_MEMBER)
    mine = p.claims.get(op.actor)
    if mine is not None:  # at most once: a second claim is answered like the first
        op.result = {
            "packet": p.id,
            "amount": mine[0],
            "transfer": mine[1],
            "left": p.count - len(p.claims),
        }
        op.duplicate = True
        return
    if p.state == PACKET_EXPIRED or plan.ts >= p.expires:
        raise Refused(ErrorCode.PACKET_EXPIRED)
    if p.state == PACKET_EMPTIED or len(p.claims) >= p.count:
        raise Refused(ErrorCode.PACKET_EMPTY)
    amount = p.next_share()
    t = move(plan, ESCROW, op.actor, amount, CODE_CLAIM, ref=p.id, actor=op.actor)
    plan.add_claim(p, op.actor, amount, t.id)
    left = p.count - len(p.claims)
    op.pos = _event(
        plan,
        p,
        op.actor,
        {"type": "red_packet_claim", "packet": p.id, "amount": amount, "left": left},
    )
    if not left:
        _settle(plan, p, PACKET_EMPTIED)
    op.result = {
        "packet": p.id,
        "amount": amount,
        "transfer": t.id,
        "left": left,
        **balance_map(plan.account(op.actor)),
    }


def _settle(plan: Plan, p: Packet, state: int) -> int:
    """Post the reservation for what was claimed (the rest stays with the sender); the
    amount returned."""
    reservation = plan.pending(p.pending)
    assert reservation is not None, "an open packet's reservation is open"
    claimed = p.claimed
    close(plan, reservation, claimed, code=CODE_PACKET if claimed else CODE_EXPIRED)
    plan.close_packet(p, state)
    return p.amount - claimed


def expire(plan: Plan, reservation: Transfer) -> None:
    p = plan.packet(reservation.ref)
    assert p is not None and p.state == PACKET_OPEN, "an open reservation's packet is open"
    refund = _settle(plan, p, PACKET_EXPIRED)
    _event(
        plan,
        p,
        p.sender,
        {"type": "red_packet_expired", "packet": p.id, "refund": refund, "claimed": len(p.claims)},
    )


def expire_rule(plan: Plan, op: ExpirePending) -> None:
    """Due: void the reservation, or settle its red packet. Early, or closed already (a
    packet's last claim, a post, a void, an earlier expiry): nothing to do."""
    r = plan.pending(op.pending)
    if r is None or not r.expires or plan.ts < r.expires:
        op.result = {"expired": False}
        return
    if r.code == CODE_PACKET:
        expire(plan, r)
    elif r.code == CODE_ORDER:
        shop.expire(plan, r)
    else:
        close(plan, r, 0, code=CODE_EXPIRED)
    op.result = {"expired": True}
