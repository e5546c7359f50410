"""Request deadlines that count connected time only, and the waits a server advises.

A request's timeout says how long the application is willing to wait for the server's
answer. While the client has no live connection (it is reconnecting with backoff, or the
server is restarting) the server cannot answer, so that time is not charged: the deadline
is paused around every wait for a connection and resumes with what was left.

A request refused with `4001 RATE_LIMITED` or `2007 THROTTLED` changed nothing on the
server (SPEC.md 14.2) and may be made again after `retry_after`: `advised_wait` says how
long, or that the wait would outlast the deadline (then the refusal is the answer).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

from liaotian.protocol import ErrorCode, RequestError

__all__ = ["DEFAULT_RETRY_AFTER", "WAIT_AND_RETRY", "advised_wait", "paused"]

# Refusals after which the same request may be made again after `retry_after`.
WAIT_AND_RETRY = frozenset({ErrorCode.RATE_LIMITED, ErrorCode.THROTTLED})
DEFAULT_RETRY_AFTER = 1.0  # seconds, for a RATE_LIMITED without one (SPEC.md 3.3)


def advised_wait(exc: RequestError, deadline: asyncio.Timeout | None) -> float | None:
    """Seconds to wait before making a refused request again, or None if it should not
    be: a refusal of another kind, or a wait that would end after the deadline."""
    if exc.code not in WAIT_AND_RETRY:
        return None
    wait = exc.retry_after if exc.retry_after is not None else DEFAULT_RETRY_AFTER
    when = deadline.when() if deadline is not None else None
    if when is not None and asyncio.get_running_loop().time() + wait > when:
        return None
    return wait


@contextlib.contextmanager
def paused(deadline: asyncio.Timeout | None) -> Iterator[None]:
    """Inside the block `deadline` cannot expire; afterwards it is moved later by the time
    the block took. Nothing happens for no deadline, one without a time, or one already
    expired (its cancellation is on its way)."""
    if deadline is None or deadline.expired():
        yield
        return
    when = deadline.when()
    if when is None:
        yield
        return
    loop = asyncio.get_running_loop()
    remaining = max(0.0, when - loop.time())
    deadline.reschedule(None)
    try:
        yield
    finally:
        if not deadline.expired():
            deadline.reschedule(loop.time() + remaining)
