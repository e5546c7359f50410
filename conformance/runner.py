"""Runs the selected checks one after another, each bounded in time, and collects results."""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from . import wire
from .registry import Check, Context, Fail, Skip, all_checks
from .wire import Target

PASS, FAIL, SKIP, KNOWN = "pass", "fail", "skip", "known"


@dataclass
class Result:
    check: Check
    status: str  # pass, fail, skip, or known (a failure listed as a known defect)
    detail: str
    seconds: float

    def counts(self, strict: bool) -> bool:
        """Whether this result makes the run fail."""
        return self.status == FAIL and (strict or self.check.level == "MUST")


@dataclass
class Options:
    target: Target
    small_target: Target | None = None
    timeout: float = 5.0  # seconds for any one awaited frame
    check_timeout: float = 60.0  # seconds for a whole check
    only: tuple[str, ...] = ()


def select(only: tuple[str, ...]) -> list[Check]:
    return [c for c in all_checks() if c.selected(list(only))]


async def run_one(c: Check, opts: Options) -> Result:
    ctx = Context(opts.target, opts.timeout, opts.small_target)
    start = time.monotonic()
    status, detail = PASS, ""
    try:
        await asyncio.wait_for(c.func(ctx), opts.check_timeout)
    except Skip as exc:
        status, detail = SKIP, str(exc)
    except Fail as exc:
        status, detail = FAIL, str(exc)
    except TimeoutError as exc:
        status, detail = FAIL, f"timeout: {exc}" if str(exc) else "check timed out"
    except wire.Ended as exc:
        status, detail = FAIL, f"connection ended: {exc}"
    except wire.Violation as exc:
        status, detail = FAIL, f"invalid server frame: {exc}"
    except OSError as exc:
        status, detail = FAIL, f"connection error: {exc!r}"
    except Exception as exc:  # a bug in the check or an unexpected answer shape
        tb = traceback.extract_tb(exc.__traceback__)[-1]
        status, detail = FAIL, f"{type(exc).__name__}: {exc} ({tb.name}:{tb.lineno})"
    finally:
        await ctx.close_all()
    if c.known_failure and status == FAIL:
        status, detail = KNOWN, f"known failure ({c.known_failure}): {detail}"
    elif c.known_failure and status == PASS:
        detail = f"passes although listed as a known failure ({c.known_failure})"
    return Result(c, status, detail, time.monotonic() - start)


async def run(opts: Options, on_result: Callable[[Result], None] | None = None) -> list[Result]:
    results = []
    for c in select(opts.only):
        if c.small and opts.small_target is None:
            r = Result(c, SKIP, "needs --small-limits-server", 0.0)
        else:
            r = await run_one(c, opts)
        results.append(r)
        if on_result is not None:
            on_result(r)
    return results
