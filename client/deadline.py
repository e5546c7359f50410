"""Request deadlines that count connected time only.

A request's timeout says how long the application is willing to wait for the server's
answer. While the client has no live connection (it is reconnecting with backoff, or the
server is restarting) the server cannot answer, so that time is not charged: the deadline
is paused around every wait for a connection and resumes with what was left.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

__all__ = ["paused"]


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
