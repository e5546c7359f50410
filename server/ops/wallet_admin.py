"""The wallet's operator commands (`liaotian-server admin mint|grant|wallet-report`), run by
admin.py on a running server or on a stopped server's database.

mint [to, amount, memo, key]: coins from ISSUANCE to a user or "*rewards": the only way
coins are created. It is planned like any operation (chat/rules/wallet.py), kept as a
transfer with the memo (the audit: who got how much and why; the caller says why) and
logged. grant [to, kind]: a new item (an F code, an invitation code) for a user.
wallet_report [tasks]: the invariants of chat/audit.py over the whole ledger (one read
snapshot), with totals; `tasks` is the task catalogue's JSON (the server's own when
running), for the per-period caps.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from ..chat import ops
from ..chat.audit import audit
from ..chat.ledger import ESCROW, ISSUANCE, REWARDS, Task, WalletPolicy
from ..chat.policy import Policy
from ..config import parse_tasks
from ..store import SQLiteStore

log = logging.getLogger("liaotian.admin")


class WalletAdminError(Exception):
    """A wallet command was refused; the text says why."""


async def _run(store: SQLiteStore, op: ops.WalletOp) -> dict[str, Any]:
    """Submit `op` and wait for the commit that answers it."""
    store.submit(op)
    await store.drain()  # FIFO: the op's batch has committed when this returns
    if op.error is not None:
        raise WalletAdminError(f"{op.error.name}: {op.error_message}")
    assert op.result is not None
    return op.result


async def mint(store: SQLiteStore, args: dict[str, Any]) -> dict[str, Any]:
    to, amount, memo = args.get("to"), args.get("amount"), args.get("memo")
    if not isinstance(to, str) or not to:
        raise WalletAdminError("to is required (a username, or *rewards)")
    if type(amount) is not int or amount <= 0:
        raise WalletAdminError("amount must be a whole number of coins above 0")
    if not isinstance(memo, str) or not memo:
        raise WalletAdminError("memo is required: say why the coins are made")
    key = args.get("key") or ""
    result = await _run(store, ops.Mint(actor=0, to=to, amount=amount, memo=memo, key=str(key)))
    log.info(
        "admin: minted %d coins to %s (%s), transfer %d", amount, to, memo, result["transfer"]["id"]
    )
    return result


async def grant(store: SQLiteStore, args: dict[str, Any], secret: bytes | None) -> Any:
    to, kind = args.get("to"), args.get("kind")
    if not isinstance(to, str) or not isinstance(kind, str) or not to or not kind:
        raise WalletAdminError("to and kind are required")
    policy = Policy(wallet=WalletPolicy(item_secret=secret or os.urandom(32)))
    result = await _run(store, ops.GrantItem(actor=0, to=to, kind=kind, policy=policy))
    log.info("admin: granted a %s item to %s", kind, to)
    return result


async def report(
    store: SQLiteStore, args: dict[str, Any], tasks: tuple[Task, ...] | None
) -> dict[str, Any]:
    if tasks is None:
        text = args.get("tasks")
        tasks = parse_tasks(text) if isinstance(text, str) else ()
    dump = await store.ledger_dump()
    problems = audit(dump, tasks)
    accounts = dump.accounts
    users = [a for acct, a in accounts.items() if acct > 0]
    return {
        "ok": not problems,
        "violations": len(problems),
        "problems": problems[:100],
        "transfers": len(dump.transfers),
        "minted": -accounts[ISSUANCE].balance if ISSUANCE in accounts else 0,
        "rewarded": -accounts[REWARDS].balance if REWARDS in accounts else 0,
        "held_by_users": sum(a.balance for a in users),
        "reserved": sum(a.pending_out for a in users),
        "in_escrow": accounts[ESCROW].balance if ESCROW in accounts else 0,
        "open_packets": sum(1 for p in dump.packets if p.state == 0),
    }
