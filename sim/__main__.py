"""python -m liaotian.sim: run, replay and search simulation seeds.

    python -m liaotian.sim --seed 42            replay one seed (the trace with --trace)
    python -m liaotian.sim --seeds 0..499       a range of seeds
    python -m liaotian.sim --long 3600          random seeds for an hour

A failure prints the seed, the broken invariant, the shrunk run's trace and the command
that replays it; the exit status is 1. The process re-executes itself with
PYTHONHASHSEED=0 (unless it is already set to 0), so a seed replays the same in any process.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time

from .mutations import MUTATIONS
from .shrink import replay_command, shrink
from .world import DEFAULT_STEPS, SimOptions, SimResult, run

TRACE_TAIL = 60  # trace lines shown before the failure (all of them with --trace)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    base = SimOptions(
        seed=0,
        steps=args.steps,
        users=args.users,
        faults=not args.no_faults,
        skip=frozenset(args.skip),
        mutation=args.mutation,
    )
    if args.seed is not None:
        res = run(_with_seed(base, args.seed))
        if args.trace or res.failure is None:
            _print_trace(res, full=args.trace)
        _summary(res)
        if res.failure is not None:
            _report(res, shrinking=not args.no_shrink)
            return 1
        return 0
    if args.seeds is not None:
        first, last = args.seeds
        seeds: list[int] | None = list(range(first, last + 1))
        deadline = None
    else:
        seeds, deadline = None, time.monotonic() + args.long
    start = args.start if args.start is not None else random.SystemRandom().randrange(1 << 31)
    if seeds is None:
        print(f"random seeds from {start} for {args.long:.0f} s")
    n = 0
    began = time.monotonic()
    next_note = began + 60.0
    while True:
        if seeds is not None:
            if n >= len(seeds):
                break
            seed = seeds[n]
        else:
            if deadline is not None and time.monotonic() >= deadline:
                break
            seed = start + n
        n += 1
        res = run(_with_seed(base, seed))
        if res.failure is not None:
            _summary(res)
            _report(res, shrinking=not args.no_shrink)
            return 1
        if args.verbose:
            _summary(res)
        elif deadline is not None and time.monotonic() >= next_note:
            took = time.monotonic() - began
            print(f"{n} seeds passed in {took:.0f} s", flush=True)
            next_note += 60.0
    took = time.monotonic() - began
    print(f"{n} seeds passed in {took:.1f} s ({n / took:.1f} seeds/s)")
    return 0


def _with_seed(base: SimOptions, seed: int) -> SimOptions:
    from dataclasses import replace

    return replace(base, seed=seed)


def _summary(res: SimResult) -> None:
    o = res.options
    state = "ok" if res.failure is None else f"FAILED {res.failure.invariant}"
    print(
        f"seed {o.seed}: {state} ({res.steps_run} steps, {len(res.faults)} faults, "
        f"{res.virtual_seconds:.1f} virtual s, trace {res.digest:016x})"
    )


def _print_trace(res: SimResult, full: bool) -> None:
    lines = res.trace if full else res.trace[-TRACE_TAIL:]
    if not full and len(res.trace) > TRACE_TAIL:
        print(f"... ({len(res.trace) - TRACE_TAIL} earlier lines; --trace shows all)")
    for line in lines:
        print(line)


def _report(res: SimResult, shrinking: bool) -> None:
    assert res.failure is not None
    small = shrink(res) if shrinking else res
    print()
    print(f"FAILED seed {res.options.seed}: {res.failure.invariant}")
    print(f"  {res.failure.detail}")
    if small is not res:
        print(
            f"shrunk from {res.options.steps} steps and {len(res.faults)} faults to "
            f"{small.options.steps} steps ({len(small.options.skip)} left out) and "
            f"{len(small.faults)} faults: {small.failure}"
        )
    print("trace of the shortest failing run:")
    _print_trace(small, full=len(small.trace) <= 400)
    print(f"replay: {replay_command(small.options)} --trace")
    if small is not res:
        print(
            f"original: python -m liaotian.sim --seed {res.options.seed}"
            + (f" --mutation {res.options.mutation}" if res.options.mutation else "")
        )


def _range(text: str) -> tuple[int, int]:
    a, sep, b = text.partition("..")
    if not sep:
        raise argparse.ArgumentTypeError("expected A..B")
    return int(a), int(b)


def _steps(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m liaotian.sim",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--seed", type=int, help="run (replay) one seed")
    which.add_argument("--seeds", type=_range, help="run seeds A..B (inclusive)")
    which.add_argument(
        "--long", type=float, metavar="SECONDS", help="run random seeds until the time is up"
    )
    p.add_argument("--start", type=int, help="--long: the first seed (default: random)")
    p.add_argument(
        "--steps", type=int, default=DEFAULT_STEPS, help=f"steps per run (default {DEFAULT_STEPS})"
    )
    p.add_argument("--users", type=int, default=0, help="users (default: 2..5 from the seed)")
    p.add_argument("--skip", type=_steps, default=[], help="steps to leave out: 3,17,40")
    p.add_argument("--no-faults", action="store_true", help="no network faults or crashes")
    p.add_argument(
        "--mutation", choices=sorted(MUTATIONS), help="re-introduce a known bug (see mutations.py)"
    )
    p.add_argument("--trace", action="store_true", help="print the whole trace")
    p.add_argument("--no-shrink", action="store_true", help="report failures unshrunk")
    p.add_argument("-v", "--verbose", action="store_true", help="one line per seed")
    return p


def _reexec_with_fixed_hash_seed() -> None:
    if os.environ.get("PYTHONHASHSEED") != "0":
        env = dict(os.environ, PYTHONHASHSEED="0")
        argv = list(sys.orig_argv)  # with the interpreter's own options (-W error, ...)
        os.execve(sys.executable, [sys.executable, *argv[1:]], env)


if __name__ == "__main__":
    _reexec_with_fixed_hash_seed()
    sys.exit(main())
