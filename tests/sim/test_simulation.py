"""The deterministic simulation (liaotian.sim, sim/README.md) in CI.

Many seeds pass; a seed replays to the same trace in this process and in another one with
another hash seed; a failure shrinks to a shorter run that fails the same way; and each of
five bugs this project has had, re-introduced as a monkeypatch (sim/mutations.py), makes
the simulation fail within MUTATION_SEEDS seeds.

Mutation record (120 steps per seed, seeds from 0 on; "first": the first seed that fails,
"caught at": when in that run, "wall": CPU time from seed 0 to the catch on a loaded
2-core machine, "of 100": how many of seeds 0..99 fail; measured on the build of this
commit, where a change to the server's timing moves them):

| mutation         | first | caught at       | fails with     | wall  | of 100 |
|------------------|-------|-----------------|----------------|-------|--------|
| `sync-race`      | 6     | step 18 (1.3 s) | no-gap         | 0.4 s | 17     |
| `half-open-drop` | 1     | step 20 (1.2 s) | no-gap         | 0.2 s | 58     |
| `cmid-retry`     | 0     | the end (26 s)  | cmid-once      | 0.1 s | 51     |
| `join-history`   | 0     | the end (26 s)  | history-joined | 0.1 s | 34     |
| `batch-removal`  | 10    | step 19 (1.3 s) | members-only   | 0.6 s | 22     |
| `key-forget`     | 1     | step 38 (1.7 s) | wallet-ledger  | 0.1 s | 9      |

- `sync-race` (7e4c54a): an empty SYNC page read while a commit lands is answered as
  caught up, so what committed during the read is never sent.
- `half-open-drop`: pushes go to one connection per device, the oldest; while it is
  half-open the device's new connection gets nothing.
- `cmid-retry`: a retry of a committed send (after a lost SENT) is stored again.
- `join-history`: HISTORY shows a member added at P the timeline before P.
- `batch-removal`: a group send planned on the group as committed, not as its batch has it
  so far: a member removed earlier in the same batch still gets the message.
- `key-forget`: PAY ignores its idempotency key, so a retry pays again.

Re-measured for every row when the wallet's actions joined the workload (which moves
every seed's steps).

"the end": found by the checks after the last sync at quiescence; the times in
parentheses are virtual. A run stops at the first broken invariant.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from liaotian.sim.mutations import MUTATIONS
from liaotian.sim.shrink import replay_command, shrink
from liaotian.sim.world import SimOptions, SimResult, run

CI_SEEDS = range(0, 250)  # every one must pass
MUTATION_SEEDS = 40  # each mutation must be caught by one of the first this many seeds


def _report(res: SimResult) -> str:
    assert res.failure is not None
    small = shrink(res, max_seconds=20.0)
    tail = "\n".join(small.trace[-40:])
    return (
        f"seed {res.options.seed} broke {res.failure}\n"
        f"shrunk: {small.failure}\n{tail}\n"
        f"replay: {replay_command(small.options)} --trace"
    )


def test_seeds_pass() -> None:
    started = time.perf_counter()
    for seed in CI_SEEDS:
        res = run(SimOptions(seed=seed))
        if res.failure is not None:
            pytest.fail(_report(res), pytrace=False)
    took = time.perf_counter() - started
    print(f"{len(CI_SEEDS)} seeds in {took:.1f} s: {len(CI_SEEDS) / took:.1f} seeds/s")


# what each mutation breaks (a failure of another invariant would be a wrong catch)
CAUGHT_AS = {
    "sync-race": {"no-gap", "live-complete"},
    "half-open-drop": {"no-gap", "live-complete"},
    "cmid-retry": {"cmid-once", "exactly-once"},
    "join-history": {"history-joined"},
    "batch-removal": {"members-only"},
    "key-forget": {"wallet-key-once", "wallet-ledger"},
}


def test_every_mutation_has_an_expectation() -> None:
    assert set(CAUGHT_AS) == set(MUTATIONS)


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_each_reintroduced_bug_is_caught(mutation: str) -> None:
    for seed in range(MUTATION_SEEDS):
        res = run(SimOptions(seed=seed, mutation=mutation))
        if res.failure is not None:
            print(f"{mutation}: seed {seed} fails {res.failure.invariant}: {res.failure.detail}")
            assert res.failure.invariant in CAUGHT_AS[mutation], res.failure
            return
    pytest.fail(f"no seed of the first {MUTATION_SEEDS} catches mutation {mutation}")


def test_a_seed_replays_to_the_same_trace() -> None:
    first = run(SimOptions(seed=7))
    again = run(SimOptions(seed=7))
    other = run(SimOptions(seed=8))
    assert first.ok and again.ok
    assert first.trace == again.trace and first.digest == again.digest
    assert other.digest != first.digest


def test_a_seed_replays_in_another_process_with_another_hash_seed() -> None:
    code = (
        "from liaotian.sim.world import SimOptions, run; "
        "r = run(SimOptions(seed=11, mutation='batch-removal')); print(r.digest)"
    )
    digests = set()
    for hash_seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            check=True,
        )
        digests.add(out.stdout.strip())
    digests.add(str(run(SimOptions(seed=11, mutation="batch-removal")).digest))
    assert len(digests) == 1


def _first_failure(mutation: str) -> SimResult:
    for seed in range(MUTATION_SEEDS):
        res = run(SimOptions(seed=seed, mutation=mutation))
        if res.failure is not None:
            return res
    raise AssertionError(f"{mutation} is not caught")


def test_a_failure_shrinks_to_a_shorter_run_failing_the_same_way() -> None:
    res = _first_failure("cmid-retry")
    assert res.failure is not None
    small = shrink(res, max_seconds=30.0)
    assert small.failure is not None and small.failure.invariant == res.failure.invariant
    assert small.options.steps <= res.options.steps
    assert small.options.steps < res.options.steps or small.options.skip
    again = run(small.options)  # the shrunk options replay it
    assert again.failure is not None and again.digest == small.digest
    assert f"--seed {res.options.seed}" in replay_command(small.options)


def test_the_cli_replays_a_seed_and_reports_a_failure() -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}  # it re-executes
    ok = subprocess.run(
        [sys.executable, "-m", "liaotian.sim", "--seed", "3", "--steps", "30"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "seed 3: ok" in ok.stdout
    res = _first_failure("join-history")
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "liaotian.sim",
            "--seed",
            str(res.options.seed),
            "--mutation",
            "join-history",
            "--no-shrink",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert f"FAILED seed {res.options.seed}: history-joined" in bad.stdout
    assert "replay: python -m liaotian.sim --seed" in bad.stdout
    assert f"trace {res.digest:016x}" in bad.stdout  # the same run as in this process
