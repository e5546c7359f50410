"""The ledger: transfers, two-phase transfers, idempotency keys, payments between users.

Every movement of coins is a `Transfer` (chat/ledger.py) planned here: `move` checks the
debited account can pay (in the batch that moves the money: the batch already holds every
earlier operation's changes, so two payments racing for the same coins resolve in their
commit order, the second refused), computes both accounts' new balances, keeps the
transfer, and tells each user whose account changed (a WALLET entry in their update log,
pushed to their devices). Two-phase: `hold` reserves, `post` moves all or part of a
reservation and releases the rest, `void` releases it; a reservation past its `expires`
is voided by the server's ExpirePending (a red packet's is posted for what was claimed).

Idempotency (after Stripe): a request with a key is answered once and for all; its retry,
whenever it comes, gets the same answer (marked as a duplicate) and moves nothing; the same
key with other parameters is refused with IDEMPOTENCY_MISMATCH. Only an answered request
keeps its key: a refused one staged nothing, and its retry is planned afresh.

Who may pay whom: a user pays another user unless the payee blocked them, and within the
payee's privacy `coins` (everyone, contacts, the default, or nobody). A payment is an event
in the two users' direct conversation (a message with an "event" map).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgpack
from liaotian.protocol import ErrorCode, UpdateKind
from liaotian.protocol.messages import encode_message_map

from ..ledger import (
    CODE_HOLD,
    CODE_MINT,
    CODE_NAMES,
    CODE_PACKET,
    CODE_PAY,
    CODE_REVERSAL,
    ESCROW,
    ISSUANCE,
    MAX_AMOUNT,
    PENDING,
    POST,
    REWARDS,
    SYSTEM_ACCOUNTS,
    VOID,
    WALLET_UPDATE,
    Account,
    KeyRecord,
    Transfer,
    available,
    may_go_negative,
)
from ..model import EVENT_CMID, VIS_EVERYONE, VIS_NOBODY, Social
from ..ops import (
    Correct,
    Hold,
    Mint,
    Pay,
    PostPending,
    Refused,
    VoidPending,
    WalletOp,
)
from ..plan import Needs, Plan, pair

_packb = msgpack.packb
MAX_MEMO = 256  # characters
MAX_KEY = 64  # characters of an idempotency key
SYSTEM_NAMES = {f"*{name}": acct for acct, name in SYSTEM_ACCOUNTS.items()}


def may_send_coins(payee: Social, payer: int) -> bool:
    """Privacy `coins`: who may send me coins (never a user I blocked)."""
    if payer in payee.blocked or payee.coins == VIS_NOBODY:
        return False
    return payee.coins == VIS_EVERYONE or payer in payee.contacts


def account_name(username: Callable[[int], str], acct: int) -> str:
    """A user account's owner, or "*issuance", "*rewards", "*escrow"."""
    return username(acct) if acct > 0 else f"*{SYSTEM_ACCOUNTS[acct]}"


def transfer_map(username: Callable[[int], str], t: Transfer) -> dict[str, Any]:
    """A transfer as the wire shows it (history, WALLET entries, answers); `username`
    names a user account's owner."""
    phase = (
        "pending"
        if t.flags & PENDING
        else "post"
        if t.flags & POST
        else "void"
        if t.flags & VOID
        else "posted"
    )
    m: dict[str, Any] = {
        "id": t.id,
        "from": account_name(username, t.debit),
        "to": account_name(username, t.credit),
        "amount": t.amount,
        "code": CODE_NAMES[t.code],
        "phase": phase,
        "ts": t.ts,
    }
    if t.pending_id:
        m["pending_id"] = t.pending_id
    if t.expires:
        m["expires"] = t.expires
    if t.ref:
        m["ref"] = t.ref
    if t.memo:
        m["memo"] = t.memo
    return m


def balance_map(a: Account) -> dict[str, int]:
    return {"balance": a.balance, "pending_out": a.pending_out, "pending_in": a.pending_in}


# ---------------------------------------------------------------------------- checks


def check_amount(amount: int, *, low: int = 1) -> None:
    if type(amount) is not int or not low <= amount <= MAX_AMOUNT:
        raise Refused(ErrorCode.INVALID_FIELD, f"amount must be an integer {low}..{MAX_AMOUNT}")


def check_memo(memo: str) -> None:
    if len(memo) > MAX_MEMO:
        raise Refused(ErrorCode.INVALID_FIELD, f"memo is longer than {MAX_MEMO}")


def answered(plan: Plan, op: WalletOp, params: bytes) -> bool:
    """Whether the op's key answered it before (then `result` is that answer again)."""
    if not op.key:
        return False
    if len(op.key) > MAX_KEY:
        raise Refused(ErrorCode.INVALID_FIELD, f"key is longer than {MAX_KEY}")
    rec = plan.key_record(op.actor, op.key)
    if rec is None:
        return False
    if rec.params != params:
        raise Refused(ErrorCode.IDEMPOTENCY_MISMATCH)
    op.result, op.duplicate = msgpack.unpackb(rec.result), True
    return True


def keep_answer(plan: Plan, op: WalletOp, params: bytes) -> None:
    """The op is answered (`result`): its key answers every retry from now on."""
    if op.key:
        plan.record_key(op.actor, op.key, KeyRecord(params, _packb(op.result)))


def params_of(op: WalletOp, *values: Any) -> bytes:
    return bytes(_packb([type(op).__name__, *values]))


# ---------------------------------------------------------------------------- moving money


def notify(plan: Plan, t: Transfer) -> None:
    """A WALLET entry for each user whose account the transfer changed."""
    tmap: dict[str, Any] | None = None
    for acct in (t.debit, t.credit):
        if acct > 0:
            if tmap is None:
                tmap = transfer_map(plan.username, t)
            a = plan.account(acct)
            plan.log(
                acct,
                WALLET_UPDATE,
                _packb(
                    {
                        "event": "transfer",
                        "transfer": tmap,
                        "balance": a.balance,
                        "pending_out": a.pending_out,
                        "pending_in": a.pending_in,
                    }
                ),
            )


def _new(plan: Plan, debit: int, credit: int, amount: int, code: int, **kw: Any) -> Transfer:
    return Transfer(plan.new_transfer_id(), debit, credit, amount, code, ts=plan.ts, **kw)


def _check_funds(plan: Plan, debit: int, amount: int) -> Account:
    a = plan.account(debit)
    if not may_go_negative(debit) and available(debit, a) < amount:
        raise Refused(
            ErrorCode.INSUFFICIENT_FUNDS,
            f"available {max(available(debit, a), 0)}, needed {amount}",
        )
    return a


def move(
    plan: Plan,
    debit: int,
    credit: int,
    amount: int,
    code: int,
    *,
    ref: int = 0,
    memo: str = "",
    actor: int = 0,
    key: str = "",
) -> Transfer:
    """A posted transfer: `amount` from debit to credit, now."""
    if debit == credit:
        raise Refused(ErrorCode.CONFLICT, "debit and credit are the same account")
    d = _check_funds(plan, debit, amount)
    c = plan.account(credit)
    t = _new(plan, debit, credit, amount, code, ref=ref, memo=memo, actor=actor, key=key)
    plan.add_transfer(t)
    plan.set_account(debit, Account(d.balance - amount, d.pending_out, d.pending_in))
    plan.set_account(credit, Account(c.balance + amount, c.pending_out, c.pending_in))
    notify(plan, t)
    return t


def hold(
    plan: Plan,
    debit: int,
    credit: int,
    amount: int,
    code: int,
    *,
    expires: int,
    ref: int = 0,
    memo: str = "",
    actor: int = 0,
    key: str = "",
) -> Transfer:
    """A pending transfer: reserves `amount` until it is posted, voided or expires."""
    if debit == credit:
        raise Refused(ErrorCode.CONFLICT, "debit and credit are the same account")
    d = _check_funds(plan, debit, amount)
    c = plan.account(credit)
    t = _new(
        plan,
        debit,
        credit,
        amount,
        code,
        flags=PENDING,
        expires=expires,
        ref=ref,
        memo=memo,
        actor=actor,
        key=key,
    )
    plan.add_transfer(t)
    plan.set_account(debit, Account(d.balance, d.pending_out + amount, d.pending_in))
    plan.set_account(credit, Account(c.balance, c.pending_out, c.pending_in + amount))
    notify(plan, t)
    return t


def close(
    plan: Plan, p: Transfer, amount: int, *, code: int | None = None, actor: int = 0, key: str = ""
) -> Transfer:
    """Close the open pending transfer `p`: post `amount` of it (0: void it; the rest
    of its reservation is released)."""
    if not 0 <= amount <= p.amount:
        raise Refused(ErrorCode.INVALID_FIELD, f"amount must be 0..{p.amount}")
    d, c = plan.account(p.debit), plan.account(p.credit)
    flags = POST if amount else VOID
    t = _new(
        plan,
        p.debit,
        p.credit,
        amount if amount else p.amount,
        p.code if code is None else code,
        flags=flags,
        pending_id=p.id,
        ref=p.ref,
        actor=actor,
        key=key,
    )
    plan.add_transfer(t)
    plan.set_account(p.debit, Account(d.balance - amount, d.pending_out - p.amount, d.pending_in))
    plan.set_account(p.credit, Account(c.balance + amount, c.pending_out, c.pending_in - p.amount))
    notify(plan, t)
    return t


def direct_event(plan: Plan, a: int, b: int, event: dict[str, Any]) -> tuple[int, int]:
    """A timeline event in the direct conversation of a and b, from a: in both logs.
    Returns (conversation, position)."""
    conv = plan.direct_conv(a, b)
    pos = plan.next_pos(conv)
    mid = plan.new_message_id()
    body = encode_message_map(
        mid, conv, pos, plan.username(a), plan.username(b), plan.ts, "", "", None, event=event
    )
    seq_a = plan.next_seq(a)
    plan.add_update(a, seq_a, UpdateKind.MESSAGE, message_id=mid, push=body)
    if b != a:
        plan.add_update(b, plan.next_seq(b), UpdateKind.MESSAGE, message_id=mid, push=body)
    plan.add_message(mid, conv, pos, a, seq_a, f"{EVENT_CMID}{mid}", body)
    return conv, pos


# ---------------------------------------------------------------------------- needs


def _needs_user(n: Needs, plan: Plan, name: str) -> int | None:
    n.names.add(name)
    uid = plan.user_id(name)
    if uid is not None:
        n.users.add(uid)
        n.social.add(uid)
        n.accounts.add(uid)
    return uid


def _needs_key(op: WalletOp, n: Needs) -> None:
    if op.key:
        n.keys.add((op.actor, op.key))


def needs_pay(op: Pay, n: Needs, plan: Plan) -> None:
    _needs_key(op, n)
    n.users.add(op.actor)
    n.accounts.add(op.actor)
    n.social.add(op.actor)
    uid = _needs_user(n, plan, op.to)
    if uid is not None:
        n.pairs.add(pair(op.actor, uid))


def needs_mint(op: Mint, n: Needs, plan: Plan) -> None:
    _needs_key(op, n)
    n.accounts.add(ISSUANCE)
    if op.to not in SYSTEM_NAMES:
        _needs_user(n, plan, op.to)
    else:
        n.accounts.add(SYSTEM_NAMES[op.to])


def needs_hold(op: Hold, n: Needs, plan: Plan) -> None:
    _needs_key(op, n)
    for acct in (op.debit, op.credit):
        n.accounts.add(acct)
        if acct > 0:
            n.users.add(acct)


def needs_pending(op: PostPending | VoidPending, n: Needs, plan: Plan) -> None:
    _needs_key(op, n)
    needs_reservation(op.pending, n, plan)


def needs_reservation(tid: int, n: Needs, plan: Plan) -> None:
    """A pending transfer, and once it is loaded, its accounts."""
    n.pendings.add(tid)
    p = plan.pending(tid)
    if p is not None:
        for acct in (p.debit, p.credit):
            n.accounts.add(acct)
            if acct > 0:
                n.users.add(acct)


def needs_correct(op: Correct, n: Needs, plan: Plan) -> None:
    _needs_key(op, n)
    for acct in (op.debit, op.credit):
        n.accounts.add(acct)
        if acct > 0:
            n.users.add(acct)


# ---------------------------------------------------------------------------- rules


def pay(plan: Plan, op: Pay) -> None:
    params = params_of(op, op.to, op.amount, op.memo)
    if answered(plan, op, params):
        return
    check_amount(op.amount)
    check_memo(op.memo)
    payee = plan.user_id(op.to)
    if payee is None:
        raise Refused(ErrorCode.UNKNOWN_USER)
    if payee == op.actor:
        raise Refused(ErrorCode.CONFLICT, "not to yourself")
    if not may_send_coins(plan.social_ro(payee), op.actor):
        raise Refused(ErrorCode.NOT_ALLOWED)
    t = move(plan, op.actor, payee, op.amount, CODE_PAY, memo=op.memo, actor=op.actor, key=op.key)
    event: dict[str, Any] = {"type": "coins", "transfer": t.id, "amount": op.amount}
    if op.memo:
        event["memo"] = op.memo
    conv, pos = direct_event(plan, op.actor, payee, event)
    op.pos = pos
    op.result = {
        "transfer": transfer_map(plan.username, t),
        "conv": conv,
        "pos": pos,
        **balance_map(plan.account(op.actor)),
    }
    keep_answer(plan, op, params)


def mint(plan: Plan, op: Mint) -> None:
    params = params_of(op, op.to, op.amount, op.memo)
    if answered(plan, op, params):
        return
    check_amount(op.amount)
    check_memo(op.memo)
    to = SYSTEM_NAMES.get(op.to) if op.to.startswith("*") else plan.user_id(op.to)
    if to is None or to in (ISSUANCE, ESCROW):
        raise Refused(ErrorCode.UNKNOWN_USER, f"cannot mint to {op.to}")
    t = move(plan, ISSUANCE, to, op.amount, CODE_MINT, memo=op.memo, actor=op.actor, key=op.key)
    op.result = {"transfer": transfer_map(plan.username, t)}
    keep_answer(plan, op, params)


def _owns(op: WalletOp, acct: int) -> None:
    """A user moves only their own coins; the server (actor 0) any account's."""
    if op.actor and op.actor != acct:
        raise Refused(ErrorCode.FORBIDDEN, "not your account")


def _known(plan: Plan, acct: int) -> None:
    if acct > 0:
        try:
            plan.username(acct)
        except KeyError:
            raise Refused(ErrorCode.UNKNOWN_USER) from None
    elif acct not in SYSTEM_ACCOUNTS:
        raise Refused(ErrorCode.UNKNOWN_USER, "no such account")


def hold_rule(plan: Plan, op: Hold) -> None:
    params = params_of(op, op.debit, op.credit, op.amount, op.timeout_ms, op.memo)
    if answered(plan, op, params):
        return
    check_amount(op.amount)
    check_memo(op.memo)
    _owns(op, op.debit)
    _known(plan, op.debit)
    _known(plan, op.credit)
    if op.timeout_ms < 0:
        raise Refused(ErrorCode.INVALID_FIELD, "timeout_ms must be 0 or more")
    expires = plan.ts + op.timeout_ms if op.timeout_ms else 0
    t = hold(
        plan,
        op.debit,
        op.credit,
        op.amount,
        CODE_HOLD,
        expires=expires,
        memo=op.memo,
        actor=op.actor,
        key=op.key,
    )
    op.result = {"transfer": transfer_map(plan.username, t)}
    keep_answer(plan, op, params)


def _open_pending(plan: Plan, op: WalletOp, tid: int) -> Transfer:
    p = plan.pending(tid)
    if p is None:
        raise Refused(ErrorCode.CONFLICT, "no such pending transfer, or it is closed")
    _owns(op, p.debit)
    if p.code == CODE_PACKET:
        raise Refused(ErrorCode.FORBIDDEN, "a red packet closes by its claims or expiry")
    return p


def post_rule(plan: Plan, op: PostPending) -> None:
    params = params_of(op, op.pending, op.amount)
    if answered(plan, op, params):
        return
    p = _open_pending(plan, op, op.pending)
    amount = p.amount if op.amount is None else op.amount
    if amount == 0:
        raise Refused(ErrorCode.INVALID_FIELD, "post at least 1 (VOID releases all)")
    t = close(plan, p, amount, actor=op.actor, key=op.key)
    op.result = {"transfer": transfer_map(plan.username, t)}
    keep_answer(plan, op, params)


def void_rule(plan: Plan, op: VoidPending) -> None:
    params = params_of(op, op.pending)
    if answered(plan, op, params):
        return
    p = _open_pending(plan, op, op.pending)
    t = close(plan, p, 0, actor=op.actor, key=op.key)
    op.result = {"transfer": transfer_map(plan.username, t)}
    keep_answer(plan, op, params)


def correct(plan: Plan, op: Correct) -> None:
    """A correction: a posted transfer between any two accounts, with the id of the
    transfer it corrects as its ref (an admin's)."""
    params = params_of(op, op.debit, op.credit, op.amount, op.ref, op.memo)
    if answered(plan, op, params):
        return
    if op.actor:
        raise Refused(ErrorCode.FORBIDDEN, "corrections are the server's")
    check_amount(op.amount)
    check_memo(op.memo)
    _known(plan, op.debit)
    _known(plan, op.credit)
    if REWARDS in (op.debit, op.credit) or ESCROW in (op.debit, op.credit):
        raise Refused(ErrorCode.FORBIDDEN, "rewards and escrow move by their own rules")
    t = move(
        plan, op.debit, op.credit, op.amount, CODE_REVERSAL, ref=op.ref, memo=op.memo, key=op.key
    )
    op.result = {"transfer": transfer_map(plan.username, t)}
    keep_answer(plan, op, params)
