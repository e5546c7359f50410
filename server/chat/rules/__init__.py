"""The chat's rules, one module per feature, and the table that applies them.

    send.py      SEND, 1:1 and to groups: blocks, privacy `messages`, membership
    groups.py    groups: create, members, roles, name and topic, each a timeline event
    contacts.py  contacts, blocking, privacy, who sees what
    receipts.py  read markers, receipts, the chat list's unread counts
    media.py     who may read a blob; what a media message stores (checked before a SEND
                 is queued, by its handler)
    channels.py  channels: one log of posts that members read, comments, likes, moderation
    wallet.py    the ledger: transfers, two-phase transfers, idempotency keys, payments
    packets.py   red packets, and the expiry of every reservation
    tasks.py     tasks and their rewards; items (invitation codes, F codes)
    nearby.py    people and merchants nearby: cells, buckets, moves (used by its handler)
    shop.py      catalogues, product cards, orders paid by the wallet's pending transfers
    bots.py      bots: commands, buttons, privacy mode in groups, notices to logs

A store calls `needs` to learn what to load for an operation and `apply` to plan it on
a batch (chat/plan.py). Every write but SEND and READ (their handlers charge them up
front) is charged its update-log rows after its rule (`charge_rows`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from liaotian.protocol import ErrorCode

from ..bot_ops import BotNotice, EditMessage, RemoveBot
from ..ops import (
    AcceptContact,
    AddMembers,
    AddProduct,
    BanMember,
    BlockUser,
    CancelContact,
    CheckIn,
    ClaimPacket,
    Comment,
    Correct,
    CreateChannel,
    CreateGroup,
    DeclineContact,
    DeleteComment,
    DeletePost,
    ExpirePending,
    GiftItem,
    GrantItem,
    Hold,
    JoinChannel,
    LeaveChannel,
    LeaveGroup,
    Like,
    MarkRead,
    Mint,
    Op,
    OrderStep,
    Pay,
    Pin,
    PlaceOrder,
    Post,
    PostPending,
    ReadChannel,
    RedeemItem,
    Refused,
    Register,
    RemoveContact,
    RemoveMember,
    RequestContact,
    SayHello,
    SendPacket,
    SendRequest,
    SetChannelRole,
    SetPrivacy,
    SetRole,
    SetStock,
    ShareProduct,
    TransferChannel,
    TransferGroup,
    UnblockUser,
    UpdateChannel,
    UpdateGroup,
    UseInvite,
    VoidPending,
)
from ..plan import Needs, Plan
from . import bots, channels, contacts, groups, packets, receipts, send, shop, tasks, wallet

NeedsFn = Callable[[Any, Needs, Plan], None]
RuleFn = Callable[[Any, Any], None]  # a Plan (channels: a ChannelPlan), an op

# operation type -> (what it consults, its rule, charged its rows afterwards)
RULES: dict[type, tuple[NeedsFn, RuleFn, bool]] = {
    SendRequest: (send.needs, send.plan_send, False),
    CreateGroup: (groups.needs_create, groups.create, True),
    AddMembers: (groups.needs_add, groups.add_members, True),
    RemoveMember: (groups.needs_target, groups.remove_member, True),
    LeaveGroup: (groups.needs, groups.leave, True),
    UpdateGroup: (groups.needs, groups.update, True),
    SetRole: (groups.needs_target, groups.set_role, True),
    TransferGroup: (groups.needs_transfer, groups.transfer, True),
    RequestContact: (contacts.needs, contacts.request, True),
    SayHello: (contacts.needs, contacts.request, True),
    AcceptContact: (contacts.needs, contacts.accept, True),
    DeclineContact: (contacts.needs, contacts.decline, True),
    CancelContact: (contacts.needs, contacts.cancel, True),
    RemoveContact: (contacts.needs, contacts.remove, True),
    BlockUser: (contacts.needs, contacts.block, True),
    UnblockUser: (contacts.needs, contacts.unblock, True),
    SetPrivacy: (contacts.needs_privacy, contacts.set_privacy, True),
    MarkRead: (receipts.needs, receipts.mark_read, False),
    CreateChannel: (channels.needs_create, channels.create, True),
    JoinChannel: (channels.needs_logged, channels.join, True),
    LeaveChannel: (channels.needs_logged, channels.leave, True),
    UpdateChannel: (channels.needs, channels.update, True),
    SetChannelRole: (channels.needs_target, channels.set_role, True),
    TransferChannel: (channels.needs_target, channels.transfer, True),
    BanMember: (channels.needs_target, channels.ban, True),
    ReadChannel: (channels.needs_logged, channels.read, True),
    Post: (channels.needs_post, channels.post, True),
    Comment: (channels.needs_new_comment, channels.comment, True),
    Like: (channels.needs_like, channels.like, True),
    Pin: (channels.needs_on_post, channels.pin, True),
    DeletePost: (channels.needs_on_post, channels.delete_post, True),
    DeleteComment: (channels.needs_comment, channels.delete_comment, True),
    Pay: (wallet.needs_pay, wallet.pay, True),
    Mint: (wallet.needs_mint, wallet.mint, False),
    Hold: (wallet.needs_hold, wallet.hold_rule, True),
    PostPending: (wallet.needs_pending, wallet.post_rule, True),
    VoidPending: (wallet.needs_pending, wallet.void_rule, True),
    Correct: (wallet.needs_correct, wallet.correct, False),
    ExpirePending: (packets.needs_expire, packets.expire_rule, False),
    SendPacket: (packets.needs_send, packets.send, True),
    ClaimPacket: (packets.needs_claim, packets.claim, True),
    CheckIn: (tasks.needs_checkin, tasks.checkin, True),
    GrantItem: (tasks.needs_grant, tasks.grant_rule, False),
    GiftItem: (tasks.needs_item, tasks.gift, True),
    RedeemItem: (tasks.needs_item, tasks.redeem, True),
    UseInvite: (tasks.needs_item, tasks.use_invite, False),
    Register: (tasks.needs_register, tasks.register, False),
    AddProduct: (shop.needs_catalogue, shop.add_product, True),
    SetStock: (shop.needs_catalogue, shop.set_stock, True),
    ShareProduct: (shop.needs_card, shop.share_card, True),
    PlaceOrder: (shop.needs_place, shop.place, True),
    OrderStep: (shop.needs_step, shop.step, True),
    BotNotice: (bots.needs_notice, bots.notice, False),
    EditMessage: (bots.needs_edit, bots.edit, False),
    RemoveBot: (groups.needs_remove_bot, groups.remove_bot, False),
}


def needs(op: Any, n: Needs, plan: Plan) -> None:
    """Add what planning `op` consults to `n`."""
    RULES[type(op)][0](op, n, plan)


def apply(plan: Plan, op: Any) -> None:
    """Plan `op` on `plan`: stage its writes or raise Refused (the store undoes them)."""
    _needs, rule, charged = RULES[type(op)]
    rule(plan, op)
    if charged:
        charge_rows(op)


def charge_rows(op: Op) -> None:
    """Charge the actor the update-log rows the op staged (one at least: every write costs
    a statement), or refuse it (RATE_LIMITED, nothing staged).

    A store plans a batch again when the batch before it did not commit as planned; the
    earlier charge of the same op is given back first, so a write is charged once."""
    budget = op.policy.budget
    if budget is None:
        return
    if op.rows_charged:
        budget.refund_rows(op.actor, op.rows_charged)
        op.rows_charged = 0
    rows = max(1, len(op.pushes))
    wait = budget.take_rows(op.actor, rows)
    if wait is not None:
        raise Refused(
            ErrorCode.RATE_LIMITED,
            f"writing too fast ({rows} update rows)",
            retry_after=round(wait, 3),
        )
    op.rows_charged = rows
