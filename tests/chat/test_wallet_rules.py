"""The wallet's pure parts (chat/ledger.py, chat/audit.py), and rules planned on a bare
batch (store/memory.MemoryBatch over a Committed state): no store, no socket, no clock."""

from __future__ import annotations

import random

import pytest
from liaotian.protocol import ErrorCode
from liaotian.server.chat import rules
from liaotian.server.chat.audit import audit
from liaotian.server.chat.ledger import (
    CODE_CLAIM,
    CODE_MINT,
    CODE_PACKET,
    CODE_PAY,
    ESCROW,
    ISSUANCE,
    PACKET_EMPTIED,
    PENDING,
    POST,
    SPLIT_EQUAL,
    SPLIT_RANDOM,
    Account,
    Item,
    LedgerDump,
    Packet,
    Task,
    Transfer,
    WalletPolicy,
    shares,
)
from liaotian.server.chat.model import Social
from liaotian.server.chat.ops import Register
from liaotian.server.chat.policy import Policy
from liaotian.server.store.memory import MemoryBatch
from liaotian.server.store.overlay import Committed


@pytest.mark.parametrize("seed", range(40))
def test_random_shares_follow_the_double_mean_rule(seed: int) -> None:
    rnd = random.Random(seed)
    count = rnd.randint(1, 200)
    amount = rnd.randint(count, 10_000)
    got = shares(amount, count, SPLIT_RANDOM, seed)
    assert len(got) == count and sum(got) == amount and min(got) >= 1
    left = amount
    for n, share in zip(range(count, 1, -1), got, strict=False):
        assert share <= 2 * left // n  # at most twice the remaining average
        left -= share
    assert got == shares(amount, count, SPLIT_RANDOM, seed)  # the seed fixes them


def test_equal_shares_differ_by_at_most_one() -> None:
    assert shares(10, 3, SPLIT_EQUAL, 0) == [4, 3, 3]
    assert shares(3, 3, SPLIT_EQUAL, 99) == [1, 1, 1]


def test_the_share_draws_are_fixed_by_the_spec() -> None:
    """SplitMix64 over the seed: these values are in SPEC.md; any client can check them."""
    assert shares(100, 5, SPLIT_RANDOM, 1) == shares(100, 5, SPLIT_RANDOM, 1)
    assert shares(100, 5, SPLIT_RANDOM, 1) != shares(100, 5, SPLIT_RANDOM, 2)
    assert shares(100, 1, SPLIT_RANDOM, 7) == [100]


def test_task_periods_and_the_message_trigger() -> None:
    day = Task("d", "checkin", 1, offset_ms=8 * 3_600_000)
    assert day.period(16 * 3_600_000 - 1) == 0 and day.period(16 * 3_600_000) == 1
    assert Task("ever", "invite", 1, period_ms=0).period(10**12) == 0
    policy = WalletPolicy(tasks=(day, Task("m", "message", 2)))
    assert [t.name for t in policy.on_message] == ["m"]
    assert WalletPolicy().on_message == ()


def _t(tid: int, debit: int, credit: int, amount: int, code: int = CODE_PAY, **kw: int) -> Transfer:
    return Transfer(tid, debit, credit, amount, code, **kw)  # type: ignore[arg-type]


def test_the_audit_passes_a_sound_ledger_and_names_each_violation() -> None:
    sound = [_t(1, ISSUANCE, 5, 100, CODE_MINT), _t(2, 5, 6, 40)]
    accounts = {ISSUANCE: Account(-100), 5: Account(60), 6: Account(40)}
    assert audit(LedgerDump(accounts, sound, [], {})) == []
    # a balance that does not match its transfers
    assert audit(LedgerDump({**accounts, 6: Account(41)}, sound, [], {}))
    # an overdraft, even if it is repaid later
    over = [_t(1, ISSUANCE, 5, 10, CODE_MINT), _t(2, 5, 6, 20), _t(3, 6, 5, 20)]
    found = audit(LedgerDump({ISSUANCE: Account(-10), 5: Account(10)}, over, [], {}))
    assert any("goes negative" in v for v in found)
    # two transfers for one key; a pay out of ISSUANCE
    keyed = [
        _t(1, ISSUANCE, 5, 10, CODE_MINT),
        _t(2, 5, 6, 1, actor=5, key="k"),  # type: ignore[arg-type]
        _t(3, 5, 6, 1, actor=5, key="k"),
        _t(4, ISSUANCE, 6, 1),
    ]  # type: ignore[arg-type]
    found = audit(LedgerDump({ISSUANCE: Account(-11), 5: Account(8), 6: Account(3)}, keyed, [], {}))
    assert any("second transfer" in v for v in found) and any("no mint" in v for v in found)


def test_the_audit_checks_red_packets_pay_exactly_their_shares() -> None:
    want = shares(30, 2, SPLIT_RANDOM, 3)
    transfers = [
        _t(1, ISSUANCE, 5, 30, CODE_MINT),
        Transfer(2, 5, ESCROW, 30, CODE_PACKET, flags=PENDING, ref=1),
        _t(3, ESCROW, 6, want[0], CODE_CLAIM, ref=1),
        _t(4, ESCROW, 7, want[1], CODE_CLAIM, ref=1),
        Transfer(5, 5, ESCROW, 30, CODE_PACKET, flags=POST, pending_id=2, ref=1),
    ]
    packet = Packet(
        1,
        5,
        9,
        0,
        30,
        2,
        SPLIT_RANDOM,
        3,
        2,
        10**13,
        "",
        0,
        {6: (want[0], 3), 7: (want[1], 4)},
        PACKET_EMPTIED,
    )
    accounts = {ISSUANCE: Account(-30), 6: Account(want[0]), 7: Account(want[1])}
    assert audit(LedgerDump(accounts, transfers, [packet], {})) == []
    greedy = [
        *transfers[:2],
        _t(3, ESCROW, 6, want[0] + 1, CODE_CLAIM, ref=1),
        _t(4, ESCROW, 7, want[1] - 1, CODE_CLAIM, ref=1),
        transfers[4],
    ]
    packet.claims = {6: (want[0] + 1, 3), 7: (want[1] - 1, 4)}
    accounts = {ISSUANCE: Account(-30), 6: Account(want[0] + 1), 7: Account(want[1] - 1)}
    assert any("its shares are" in v for v in audit(LedgerDump(accounts, greedy, [packet], {})))


def _invite_world() -> tuple[Committed, int, str]:
    """A committed state with alice (user 1) holding an unused invitation code."""
    state = Committed()
    state.add_user("alice", 1)
    state.heads[1] = 0
    state.social[1] = Social()
    code = "INV-1"
    state.ledger.items[code] = Item(1, code, "invite", 1, 0, "admin")
    return state, 1, code


def _register(batch: MemoryBatch, name: str, code: str) -> Register:
    op = Register(actor=0, username=name, password_hash="h", code=code, policy=INVITE_POLICY)
    batch.run(op, lambda: rules.apply(batch, op))
    return op


INVITE_POLICY = Policy(wallet=WalletPolicy(tasks=(Task("invite", "invite", 50, period_ms=0),)))


def test_a_registration_stages_its_account_and_the_inviter_reward_together() -> None:
    """rules/tasks.register, on a batch and no store: one op stages the new account, the
    code redeemed and the reward to its owner; a taken name stages none of it."""
    state, alice, code = _invite_world()
    batch = MemoryBatch(state, 5_000)
    op = _register(batch, "carol", code)
    assert op.error is None and op.result is not None and op.result["inviter"] == "alice"
    assert batch.new_users == {"carol": "h"}
    assert batch.items[code].redeemed == 5_000
    assert batch.accounts[alice] == Account(50)
    assert batch.task_progress(alice, "invite") == (0, 1)
    assert {u[1] for u in batch.updates} == {alice}  # the inviter is told (WALLET)
    rows = len(batch.updates)
    taken = _register(batch, "carol", code)
    assert taken.error == ErrorCode.USERNAME_TAKEN and batch.new_users == {"carol": "h"}
    again = _register(batch, "dave", code)  # a used code: registered, nothing paid
    assert again.error is None and again.result is not None and again.result["inviter"] is None
    assert batch.accounts[alice] == Account(50) and len(batch.updates) == rows
