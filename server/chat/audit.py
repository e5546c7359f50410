"""The wallet's invariants, checked over everything a store holds (`LedgerDump`).

`audit` replays every transfer in id order (the order they were planned in) and reports
each violation it finds, as one line of text; an empty list means the ledger is sound:

- every transfer moves a positive amount between two different accounts; a pending
  transfer is closed at most once, by a post of at most its amount or a void;
- no account that must not go negative ever does, at any point of the replay (users:
  posted balance less reservations; ESCROW: its pending credits cover what it paid);
- the replayed balances equal the stored ones, they sum to 0 (double entry) and the
  reservations out equal the reservations in;
- ISSUANCE is debited only by mints and REWARDS only by rewards (audited issuance);
- each (actor, idempotency key) made at most one transfer;
- a red packet pays out exactly its shares, never more than it holds; a closed one's
  reservation was posted for exactly what was claimed (the rest back to the sender), an
  open one's is still open;
- a task paid at most its cap in each period (given the catalogue).
"""

from __future__ import annotations

from collections import Counter

from .ledger import (
    CODE_CLAIM,
    CODE_MINT,
    CODE_REWARD,
    ESCROW,
    ISSUANCE,
    PACKET_OPEN,
    PENDING,
    POST,
    REWARDS,
    VOID,
    Account,
    LedgerDump,
    Task,
    Transfer,
    available,
    may_go_negative,
    shares,
)


def audit(dump: LedgerDump, tasks: tuple[Task, ...] = ()) -> list[str]:
    bad: list[str] = []
    acc: dict[int, Account] = {}
    open_: dict[int, Transfer] = {}
    closed_by: dict[int, Transfer] = {}
    keys: set[tuple[int, str]] = set()
    claims: dict[int, list[Transfer]] = {}
    rewards: Counter[tuple[int, str, int]] = Counter()
    by_task = {t.name: t for t in tasks}

    def get(a: int) -> Account:
        found = acc.get(a)
        if found is None:
            found = acc[a] = Account()
        return found

    last = 0
    for t in dump.transfers:
        if t.id <= last:
            bad.append(f"transfer {t.id}: ids out of order")
        last = t.id
        if t.debit == t.credit:
            bad.append(f"transfer {t.id}: debits and credits the same account")
        if t.key:
            if (t.actor, t.key) in keys:
                bad.append(f"transfer {t.id}: a second transfer for key {t.key!r}")
            keys.add((t.actor, t.key))
        d, c = get(t.debit), get(t.credit)
        if t.flags & PENDING:
            if t.amount <= 0:
                bad.append(f"transfer {t.id}: pending amount {t.amount}")
            d.pending_out += t.amount
            c.pending_in += t.amount
            open_[t.id] = t
        elif t.flags & (POST | VOID):
            p = open_.pop(t.pending_id, None)
            if p is None:
                bad.append(f"transfer {t.id}: closes {t.pending_id}, not an open pending one")
                continue
            moved = t.amount if t.flags & POST else 0
            if not 0 < moved <= p.amount and t.flags & POST:
                bad.append(f"transfer {t.id}: posts {moved} of {p.amount}")
            if (t.debit, t.credit) != (p.debit, p.credit):
                bad.append(f"transfer {t.id}: closes {p.id} between other accounts")
            closed_by[p.id] = t
            d.pending_out -= p.amount
            c.pending_in -= p.amount
            d.balance -= moved
            c.balance += moved
        else:
            if t.amount <= 0:
                bad.append(f"transfer {t.id}: amount {t.amount}")
            d.balance -= t.amount
            c.balance += t.amount
        if t.debit == ISSUANCE and t.code != CODE_MINT:
            bad.append(f"transfer {t.id}: debits ISSUANCE but is no mint")
        if t.debit == REWARDS and t.code != CODE_REWARD:
            bad.append(f"transfer {t.id}: debits REWARDS but is no reward")
        if t.code == CODE_CLAIM:
            claims.setdefault(t.ref, []).append(t)
        if t.code == CODE_REWARD and t.memo in by_task:
            rewards[(t.credit, t.memo, by_task[t.memo].period(t.ts))] += 1
        for a in (t.debit, t.credit):
            if not may_go_negative(a) and available(a, acc[a]) < 0:
                bad.append(f"transfer {t.id}: account {a} goes negative")

    stored = {a: v for a, v in dump.accounts.items() if v != Account()}
    replayed = {a: v for a, v in acc.items() if v != Account()}
    if stored != replayed:
        for a in sorted(stored.keys() | replayed.keys()):
            if stored.get(a) != replayed.get(a):
                bad.append(f"account {a}: stored {stored.get(a)}, replayed {replayed.get(a)}")
    if sum(a.balance for a in acc.values()):
        bad.append(f"balances sum to {sum(a.balance for a in acc.values())}, not 0")
    if sum(a.pending_out for a in acc.values()) != sum(a.pending_in for a in acc.values()):
        bad.append("reservations out and in differ")
    for a, v in dump.accounts.items():
        if not may_go_negative(a) and available(a, v) < 0:
            bad.append(f"account {a} is negative: {v}")

    for pk in dump.packets:
        paid = claims.get(pk.id, [])
        want = shares(pk.amount, pk.count, pk.split, pk.seed)
        got = [t.amount for t in paid]
        if got != want[: len(got)] or len(got) > pk.count:
            bad.append(f"packet {pk.id}: paid {got}, its shares are {want}")
        if sum(got) != pk.claimed or len(paid) != len(pk.claims):
            bad.append(f"packet {pk.id}: claims and claim transfers differ")
        if any(t.debit != ESCROW for t in paid):
            bad.append(f"packet {pk.id}: a claim not paid by ESCROW")
        if pk.state == PACKET_OPEN:
            if pk.pending not in open_:
                bad.append(f"packet {pk.id}: open, but its reservation is closed")
        else:
            closing = closed_by.get(pk.pending)
            moved = 0 if closing is None or not closing.flags & POST else closing.amount
            if closing is None or moved != sum(got):
                bad.append(f"packet {pk.id}: settled for {moved}, claimed {sum(got)}")

    for (uid, name, period), n in rewards.items():
        if n > by_task[name].cap:
            bad.append(f"task {name}: user {uid} paid {n} times in period {period}")
    for (uid, name), (_period, n) in dump.progress.items():
        if name in by_task and n > by_task[name].cap:
            bad.append(f"task {name}: user {uid} counted {n} completions")
    return bad
