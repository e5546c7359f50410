"""Tasks and their rewards, and items (invitation codes, F codes).

The catalogue of tasks is the server's configuration (chat/ledger.Task, in the policy).
A task is completed by its trigger inside the same operation as the triggering action:
"checkin" by CHECK_IN, "message" by a SEND (rules/send.py asks `due_on_send` before it
stages anything and `pay` after), "invite" by a new user registering with an invitation
code. So a crash loses the action and its reward together, and a retried action (the same
cmid or key) finds the reward already paid with it. Each completion counts in the user's
progress of the task's current period; beyond the task's cap it pays nothing. A reward is
a transfer REWARDS -> user, the task's name as its memo; a task may also grant an item.

Items belong to one user, may be given to a contact, and are redeemed once. Their codes
are keyed hashes of their ids (the server's `item_secret`): unique, not guessable, and the
same on every replay of the batch that made them.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import msgpack
from liaotian.protocol import ErrorCode

from ..ledger import CODE_REWARD, REWARDS, WALLET_UPDATE, Item, Task
from ..ops import (
    CheckIn,
    GiftItem,
    GrantItem,
    RedeemItem,
    Refused,
    Register,
    SendRequest,
    UseInvite,
)
from ..plan import Needs, Plan, pair
from .wallet import (
    answered,
    balance_map,
    direct_event,
    keep_answer,
    move,
    params_of,
)

_packb = msgpack.packb
MAX_KIND = 32  # characters of an item kind
Due = list[tuple[Task, int, int]]  # (task, period, completions so far in it)


# ---------------------------------------------------------------------------- tasks


def due(plan: Plan, uid: int, tasks: tuple[Task, ...]) -> Due:
    """The tasks a completion by `uid` now pays (reads only: nothing is staged)."""
    out = []
    for task in tasks:
        period = task.period(plan.ts)
        last, count = plan.task_progress(uid, task.name)
        if last != period:
            count = 0
        if count < task.cap:
            out.append((task, period, count))
    if out:
        plan.account(uid)  # both are loaded, or this refuses before anything is staged
        plan.account(REWARDS)
    return out


def pay(plan: Plan, uid: int, tasks: Due, secret: bytes) -> list[dict[str, Any]]:
    """Count each completion and pay its reward (and item); what was paid."""
    paid = []
    for task, period, count in tasks:
        plan.count_task(uid, task.name, period, count + 1)
        done: dict[str, Any] = {"task": task.name, "reward": task.reward}
        if task.reward:
            done["transfer"] = move(
                plan, REWARDS, uid, task.reward, CODE_REWARD, memo=task.name, actor=uid
            ).id
        if task.item:
            done["item"] = grant(plan, uid, task.item, f"task:{task.name}", secret).code
        paid.append(done)
    return paid


def due_on_send(plan: Plan, s: SendRequest) -> Due:
    """A send's tasks that pay: asked before the send stages anything."""
    assert s.rewards is not None
    return due(plan, s.sender_id, s.rewards.on_message)


def needs_progress(uid: int, n: Needs) -> None:
    n.users.add(uid)
    n.tasks.add(uid)
    n.accounts.update((uid, REWARDS))


def needs_checkin(op: CheckIn, n: Needs, plan: Plan) -> None:
    if op.key:
        n.keys.add((op.actor, op.key))
    needs_progress(op.actor, n)


def checkin(plan: Plan, op: CheckIn) -> None:
    params = params_of(op)
    if answered(plan, op, params):
        return
    tasks = op.policy.wallet.triggered("checkin")
    if not tasks:
        raise Refused(ErrorCode.CONFLICT, "this server has no check-in task")
    found = due(plan, op.actor, tasks)
    if not found:
        raise Refused(ErrorCode.TASK_DONE, "checked in already")
    op.result = {
        "tasks": pay(plan, op.actor, found, op.policy.wallet.item_secret),
        **balance_map(plan.account(op.actor)),
    }
    keep_answer(plan, op, params)


# ---------------------------------------------------------------------------- items


def item_code(secret: bytes, iid: int) -> str:
    """16 characters of base32: a keyed hash of the item's id."""
    h = hashlib.blake2b(iid.to_bytes(8, "big"), key=secret[:64], digest_size=10)
    return base64.b32encode(h.digest()).decode()


def item_map(item: Item) -> dict[str, Any]:
    m: dict[str, Any] = {
        "code": item.code,
        "kind": item.kind,
        "source": item.source,
        "created": item.created,
    }
    if item.redeemed:
        m["redeemed"] = item.redeemed
    return m


def _tell(plan: Plan, uid: int, change: str, item: Item) -> None:
    plan.log(
        uid, WALLET_UPDATE, _packb({"event": "item", "change": change, "item": item_map(item)})
    )


def grant(plan: Plan, uid: int, kind: str, source: str, secret: bytes) -> Item:
    iid = plan.new_wallet_item_id()
    item = Item(iid, item_code(secret, iid), kind, uid, plan.ts, source)
    plan.add_item(item)
    _tell(plan, uid, "granted", item)
    return item


def _mine(plan: Plan, uid: int, code: str) -> Item:
    item = plan.item(code)
    if item is None or item.owner != uid or item.redeemed:
        raise Refused(ErrorCode.ITEM_UNAVAILABLE)
    return item


def needs_grant(op: GrantItem, n: Needs, plan: Plan) -> None:
    if op.key:
        n.keys.add((op.actor, op.key))
    n.names.add(op.to)
    uid = plan.user_id(op.to)
    if uid is not None:
        n.users.add(uid)


def needs_item(op: GiftItem | RedeemItem | UseInvite, n: Needs, plan: Plan) -> None:
    if op.key:
        n.keys.add((op.actor, op.key))
    n.users.add(op.actor)
    n.social.add(op.actor)
    n.items.add(op.code)
    if isinstance(op, GiftItem):
        n.names.add(op.to)
        uid = plan.user_id(op.to)
        if uid is not None:
            n.users.add(uid)
            n.pairs.add(pair(op.actor, uid))
    if isinstance(op, UseInvite):
        item = plan.item_ro(op.code)
        if item is not None:
            needs_progress(item.owner, n)


def grant_rule(plan: Plan, op: GrantItem) -> None:
    params = params_of(op, op.to, op.kind)
    if answered(plan, op, params):
        return
    if op.actor:
        raise Refused(ErrorCode.FORBIDDEN, "items are granted by the server")
    if not op.kind or len(op.kind) > MAX_KIND:
        raise Refused(ErrorCode.INVALID_FIELD, f"kind must be 1..{MAX_KIND} characters")
    uid = plan.user_id(op.to)
    if uid is None:
        raise Refused(ErrorCode.UNKNOWN_USER)
    item = grant(plan, uid, op.kind, "admin", op.policy.wallet.item_secret)
    op.result = {"item": item_map(item)}
    keep_answer(plan, op, params)


def gift(plan: Plan, op: GiftItem) -> None:
    params = params_of(op, op.code, op.to)
    if answered(plan, op, params):
        return
    item = _mine(plan, op.actor, op.code)
    to = plan.user_id(op.to)
    if to is None:
        raise Refused(ErrorCode.UNKNOWN_USER)
    if to == op.actor:
        raise Refused(ErrorCode.CONFLICT, "not to yourself")
    if to not in plan.social_ro(op.actor).contacts:
        raise Refused(ErrorCode.NOT_ALLOWED, "items go to contacts")
    plan.give_item(item, to)
    _tell(plan, op.actor, "given", item)
    _tell(plan, to, "received", item)
    conv, op.pos = direct_event(plan, op.actor, to, {"type": "item", "kind": item.kind})
    op.result = {"item": item_map(item), "conv": conv, "pos": op.pos}
    keep_answer(plan, op, params)


def redeem(plan: Plan, op: RedeemItem) -> None:
    params = params_of(op, op.code)
    if answered(plan, op, params):
        return
    item = _mine(plan, op.actor, op.code)
    plan.redeem_item(item)
    _tell(plan, op.actor, "redeemed", item)
    op.result = {"item": item_map(item)}
    keep_answer(plan, op, params)


def needs_register(op: Register, n: Needs, plan: Plan) -> None:
    n.names.add(op.username)
    n.items.add(op.code)
    item = plan.item_ro(op.code)
    if item is not None:
        needs_progress(item.owner, n)


def register(plan: Plan, op: Register) -> None:
    """A new account and, if its invitation code is usable, the code redeemed and its
    owner's "invite" rewards, in the same batch (see ops.Register)."""
    if plan.user_id(op.username) is not None or plan.name_taken(op.username):
        raise Refused(ErrorCode.USERNAME_TAKEN)
    plan.add_user(op.username, op.password_hash)
    op.result = {"user": op.username, "inviter": None, "tasks": []}
    item = plan.item(op.code)
    if item is None or item.kind != "invite" or item.redeemed:
        return  # registered without a reward (as an unknown code always was)
    inviter = item.owner
    found = due(plan, inviter, op.policy.wallet.triggered("invite"))
    plan.redeem_item(item)
    _tell(plan, inviter, "redeemed", item)
    op.result["inviter"] = plan.username(inviter)
    op.result["tasks"] = pay(plan, inviter, found, op.policy.wallet.item_secret)


def use_invite(plan: Plan, op: UseInvite) -> None:
    """The invitation code is redeemed (its owner keeps it, used) and its owner completes
    the "invite" tasks."""
    params = params_of(op, op.code)
    if answered(plan, op, params):
        return
    item = plan.item(op.code)
    if item is None or item.kind != "invite" or item.redeemed or item.owner == op.actor:
        raise Refused(ErrorCode.ITEM_UNAVAILABLE)
    inviter = item.owner
    found = due(plan, inviter, op.policy.wallet.triggered("invite"))
    plan.redeem_item(item)
    _tell(plan, inviter, "redeemed", item)
    op.result = {
        "inviter": plan.username(inviter),
        "tasks": pay(plan, inviter, found, op.policy.wallet.item_secret),
    }
    keep_answer(plan, op, params)
