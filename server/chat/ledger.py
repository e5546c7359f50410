"""The wallet's state as plain data: accounts, transfers, red packets, items, idempotency
keys and task progress, and the arithmetic of red-packet shares.

Double entry (after TigerBeetle): money exists only on accounts, and only a `Transfer`
moves it, debiting one account and crediting another by the same integer amount. A
transfer is never changed or deleted; a correction is a reversing transfer. So the sum of
every account's balance is always 0: coins held by users are matched by the (negative)
balances of the source accounts, whose every debit is audited (a mint by an admin, a
task's reward).

Accounts: a user's account has the user's id (> 0); the system's have ids below 0.

    ISSUANCE  the source of minted coins (an admin's MINT, logged): may go negative
    REWARDS   the source of task rewards (one per completion and period): may go negative
    ESCROW    red packets' coins between sending and claiming (see below)

A balance has three parts: `balance` (posted), `pending_out` (reserved by pending debits)
and `pending_in` (pending credits). What a user's account may spend is
`balance - pending_out`, never below 0 (`available`).

Two-phase transfers: a PENDING transfer reserves its amount (the debit's `pending_out`, the
credit's `pending_in`) until it is POSTed (all or part of it moves; the rest is released)
or VOIDed (nothing moves), by request or when it times out (`expires`, ms; the expiry is
an operation the server submits when it is due: the core never reads a clock).

Red packets: sending one reserves its amount as a pending transfer from the sender to
ESCROW. Each claim is a posted transfer ESCROW -> claimer of the next share; ESCROW may
pay out what its pending credits cover (`available`). When the last share is claimed or
the packet expires, the pending transfer is posted for the claimed total, which returns
ESCROW to where it was and releases the unclaimed rest to the sender: every unit ends
claimed or refunded.

Nothing here decides anything (rules/wallet.py, rules/packets.py, rules/tasks.py do) or
knows where the data lives.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from liaotian.protocol import UpdateKind
from liaotian.protocol.wallet import MAX_AMOUNT as MAX_AMOUNT  # per transfer, re-exported

WALLET_UPDATE = int(UpdateKind.WALLET)  # the update-log kind of wallet changes

ISSUANCE, REWARDS, ESCROW = -1, -2, -3
SYSTEM_ACCOUNTS = {ISSUANCE: "issuance", REWARDS: "rewards", ESCROW: "escrow"}
SOURCES = frozenset((ISSUANCE, REWARDS))  # accounts that may go negative

# transfer flags
PENDING, POST, VOID = 1, 2, 4
# what a transfer is for
CODE_MINT = 1  # ISSUANCE -> a user or REWARDS, by an admin
CODE_PAY = 2  # user -> user, with a memo
CODE_REWARD = 3  # REWARDS -> user, a task completed (memo: the task)
CODE_PACKET = 4  # user -> ESCROW: a red packet's pending transfer, and its post or void
CODE_CLAIM = 5  # ESCROW -> user: a share of a red packet
CODE_HOLD = 6  # a generic pending transfer between two accounts, and its post or void
CODE_REVERSAL = 7  # reverses a posted transfer (ref: its id)
CODE_EXPIRED = 8  # the void of a pending transfer that timed out
CODE_ORDER = 9  # buyer -> merchant: a shop order's payment (ref: the order), and its post or void
CODE_NAMES = {
    CODE_MINT: "mint",
    CODE_PAY: "pay",
    CODE_REWARD: "reward",
    CODE_PACKET: "red_packet",
    CODE_CLAIM: "claim",
    CODE_HOLD: "hold",
    CODE_REVERSAL: "reversal",
    CODE_EXPIRED: "expired",
    CODE_ORDER: "order",
}

# red packets
SPLIT_EQUAL, SPLIT_RANDOM = 0, 1
SPLIT_NAMES = {SPLIT_EQUAL: "equal", SPLIT_RANDOM: "random"}
SPLIT_BY_NAME = {v: k for k, v in SPLIT_NAMES.items()}
PACKET_OPEN, PACKET_EMPTIED, PACKET_EXPIRED = 0, 1, 2
PACKET_STATES = {PACKET_OPEN: "open", PACKET_EMPTIED: "emptied", PACKET_EXPIRED: "expired"}


def may_go_negative(account: int) -> bool:
    return account in SOURCES


@dataclass(slots=True)
class Account:
    balance: int = 0  # posted credits minus posted debits
    pending_out: int = 0  # reserved by pending debits
    pending_in: int = 0  # expected from pending credits

    def copy(self) -> Account:
        return Account(self.balance, self.pending_out, self.pending_in)


def available(account: int, a: Account) -> int:
    """What the account may still pay out (no bound for the sources): a user's posted
    balance less its reservations; ESCROW's pending credits less what it paid ahead."""
    if account == ESCROW:
        return a.balance + a.pending_in
    return a.balance - a.pending_out


@dataclass(frozen=True, slots=True)
class Transfer:
    id: int
    debit: int
    credit: int
    amount: int  # > 0 (a post may move 0 of its pending transfer: amount 0 then)
    code: int
    flags: int = 0
    pending_id: int = 0  # POST and VOID: the pending transfer they close
    expires: int = 0  # PENDING: ms at which it times out (0: never)
    ref: int = 0  # what it belongs to: a red packet, an item, the reversed transfer
    memo: str = ""
    actor: int = 0  # the user who asked for it (0: the server)
    ts: int = 0
    key: str = ""  # the actor's idempotency key: one transfer per (actor, key) at most


@dataclass(slots=True)
class Packet:
    """A red packet in a conversation (a group, or the direct conversation with `peer`):
    `count` shares of `amount`, reserved by the pending transfer `pending`; `claims` in
    claim order (user -> (amount, claim transfer))."""

    id: int
    sender: int
    conv: int
    peer: int  # a direct conversation's other participant; 0 in a group
    amount: int
    count: int
    split: int
    seed: int  # draws the random shares: the same shares on every replay
    pending: int
    expires: int
    memo: str
    created: int
    claims: dict[int, tuple[int, int]] = field(default_factory=dict)
    state: int = PACKET_OPEN
    drawn: list[int] | None = field(default=None, repr=False, compare=False)  # shares()

    def copy(self) -> Packet:
        return Packet(
            self.id,
            self.sender,
            self.conv,
            self.peer,
            self.amount,
            self.count,
            self.split,
            self.seed,
            self.pending,
            self.expires,
            self.memo,
            self.created,
            dict(self.claims),
            self.state,
            self.drawn,
        )

    @property
    def claimed(self) -> int:
        return sum(a for a, _t in self.claims.values())

    def next_share(self) -> int:
        """The amount of the next claim (the packet has a share left)."""
        if self.drawn is None:
            self.drawn = shares(self.amount, self.count, self.split, self.seed)
        return self.drawn[len(self.claims)]


@dataclass(slots=True)
class Item:
    """A virtual item (an invitation code, an F code): held by `owner`, redeemable once."""

    id: int
    code: str
    kind: str
    owner: int
    created: int
    source: str  # "admin" or "task:<name>"
    redeemed: int = 0  # ms, 0 while it can be redeemed

    def copy(self) -> Item:
        return Item(
            self.id, self.code, self.kind, self.owner, self.created, self.source, self.redeemed
        )


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """What an idempotency key did: the request's parameters and the answer it got."""

    params: bytes
    result: bytes


@dataclass(frozen=True, slots=True)
class LedgerDump:
    """The whole wallet as a store holds it, for the invariant report (chat/audit.py)."""

    accounts: dict[int, Account]
    transfers: list[Transfer]  # in id order
    packets: list[Packet]
    progress: dict[tuple[int, str], tuple[int, int]]


# ---------------------------------------------------------------------------- tasks


DAY_MS = 86_400_000
TRIGGERS = ("checkin", "message", "invite", "forum")  # what completes a task


@dataclass(frozen=True, slots=True)
class Task:
    """One task of the catalogue (the server's configuration, [[wallet.tasks]]): each
    completion by `trigger` pays `reward` from REWARDS (and grants an `item` of that kind
    if set), at most `cap` times per period. Periods are `period_ms` long, counted from
    the epoch shifted by `offset_ms` (a day starting at local midnight); 0: one period
    for ever. "first message of the day" is trigger "message", a day, cap 1."""

    name: str
    trigger: str
    reward: int
    period_ms: int = DAY_MS
    cap: int = 1
    offset_ms: int = 0
    item: str = ""

    def period(self, ts: int) -> int:
        return (ts + self.offset_ms) // self.period_ms if self.period_ms else 0


@dataclass(frozen=True, slots=True)
class WalletPolicy:
    """The wallet's settings, shared by every operation (in chat/policy.Policy)."""

    tasks: tuple[Task, ...] = ()
    packet_ttl_ms: int = DAY_MS  # a red packet's unclaimed rest returns after this
    max_packet_shares: int = 1000
    item_secret: bytes = b""  # keys the item codes (a new random one per start is fine)
    on_message: tuple[Task, ...] = field(init=False, default=())  # what a SEND completes
    on_forum: tuple[Task, ...] = field(init=False, default=())  # a channel post or comment

    def __post_init__(self) -> None:
        object.__setattr__(self, "on_message", self.triggered("message"))
        object.__setattr__(self, "on_forum", self.triggered("forum"))

    def triggered(self, trigger: str) -> tuple[Task, ...]:
        return tuple(t for t in self.tasks if t.trigger == trigger)


# ---------------------------------------------------------------------------- shares


_MASK = (1 << 64) - 1


def _splitmix64(state: int) -> tuple[int, int]:
    """One step of SplitMix64: (new state, 64-bit output). Specified in SPEC.md, so any
    implementation can check a packet's shares from its seed."""
    state = (state + 0x9E3779B97F4A7C15) & _MASK
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return state, z ^ (z >> 31)


def _uniform(state: int, n: int) -> tuple[int, int]:
    """(new state, a value uniform in 0 .. n-1), by rejection: no modulo bias."""
    limit = ((1 << 64) // n) * n
    while True:
        state, x = _splitmix64(state)
        if x < limit:
            return state, x % n


def shares(amount: int, count: int, split: int, seed: int) -> list[int]:
    """The shares of a packet, in claim order; each at least 1, summing to `amount`
    (needs amount >= count >= 1).

    Equal: amount // count each, the first amount % count shares one more.
    Random ("double mean"): each share but the last is uniform between 1 and twice the
    remaining average (bounded so that every later share can still get 1); the last takes
    the rest."""
    if split == SPLIT_EQUAL:
        q, r = divmod(amount, count)
        return [q + 1] * r + [q] * (count - r)
    out = []
    state = seed & _MASK
    left = amount
    for n in range(count, 1, -1):
        top = min(2 * left // n, left - (n - 1))
        state, x = _uniform(state, top)
        out.append(1 + x)
        left -= 1 + x
    out.append(left)
    return out
