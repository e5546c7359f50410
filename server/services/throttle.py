"""Failed-login throttling: at most N failures per key within a sliding window.

Keys are account names and peer addresses. Once a key has N failures inside the window,
attempts are refused (THROTTLED, with retry_after) until the oldest failure leaves the
window; a successful login clears the account's failures. Time is passed in.
"""

from __future__ import annotations

from collections import deque
from typing import Any, NoReturn

from liaotian.protocol import ErrorCode

from ..store.base import Refused


class FailureWindow:
    def __init__(self, max_failures: int, window: float, max_keys: int = 100_000) -> None:
        self.max_failures = max_failures
        self.window = window
        self.max_keys = max_keys
        self._failures: dict[str, deque[float]] = {}

    def retry_after(self, key: str, now: float) -> float | None:
        """Seconds until `key` may try again, or None if it may try now."""
        q = self._failures.get(key)
        if q is None:
            return None
        while q and q[0] <= now - self.window:
            q.popleft()
        if not q:
            del self._failures[key]
            return None
        if len(q) < self.max_failures:
            return None
        return max(q[0] + self.window - now, 0.001)

    def fail(self, key: str, now: float) -> None:
        q = self._failures.get(key)
        if q is None:
            if len(self._failures) >= self.max_keys:  # bound memory under a spray of names
                self._failures.pop(next(iter(self._failures)))
            q = self._failures[key] = deque()
        q.append(now)
        while len(q) > self.max_failures:
            q.popleft()

    def clear(self, key: str) -> None:
        self._failures.pop(key, None)


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up. Time is passed in."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = now

    def take(self, now: float, cost: float = 1.0) -> float | None:
        """Spend `cost`; None if allowed, else the seconds until it would be."""
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= cost:
            self.tokens -= cost
            return None
        return (cost - self.tokens) / self.rate


class WriteBudget:
    """Per-user budgets for writes (all of a user's devices together), two token buckets:

    * requests: every write request other than SEND (SEND has its own `send_rate`);
    * rows: the update-log rows a write fans out to, SEND included (a group event or a group
      message costs one row per member, a contact change one row per party).

    Time is passed in. Idle users' buckets are full, so forgetting the least recently used
    one beyond `max_users` loses nothing."""

    def __init__(self, request_rate: float, request_burst: float, rows_rate: float,
                 rows_burst: float, max_users: int = 100_000) -> None:
        self.request_rate = request_rate
        self.request_burst = request_burst
        self.rows_rate = rows_rate
        self.rows_burst = rows_burst
        self.max_users = max_users
        self._users: dict[int, tuple[TokenBucket, TokenBucket]] = {}

    def _of(self, uid: int, now: float) -> tuple[TokenBucket, TokenBucket]:
        b = self._users.pop(uid, None)  # re-inserted last: the dict is in LRU order
        if b is None:
            if len(self._users) >= self.max_users:
                self._users.pop(next(iter(self._users)))
            b = (TokenBucket(self.request_rate, self.request_burst, now),
                 TokenBucket(self.rows_rate, self.rows_burst, now))
        self._users[uid] = b
        return b

    def request(self, uid: int, now: float) -> float | None:
        """Spend one write request; refused (seconds to wait) while either bucket is out.
        The rows are charged later, when the write knows how many it fans out to."""
        requests, rows = self._of(uid, now)
        wait = rows.take(now, 0.0)
        if wait is None and rows.tokens < 1.0:
            wait = (1.0 - rows.tokens) / rows.rate
        if wait is None:
            wait = requests.take(now)
        return wait

    def rows(self, uid: int, now: float, count: float) -> float | None:
        """Spend `count` rows; None if allowed, else the seconds until it would be."""
        return self._of(uid, now)[1].take(now, count)

    def refund_rows(self, uid: int, count: float) -> None:
        b = self._users.get(uid)
        if b is not None:
            b[1].tokens = min(b[1].burst, b[1].tokens + count)


def refuse(op: Any, code: ErrorCode, message: str, *, retry_after: float | None = None,
           data: dict[str, Any] | None = None) -> NoReturn:
    """Refuse a WriteOp in its plan with an ERROR that carries `retry_after` or `data`
    (a plain Refused carries a code and a message only)."""
    op.error_retry_after = retry_after
    op.error_data = data
    raise Refused(code, message)


def limit_reached(op: Any, setting: str, value: int, message: str) -> NoReturn:
    """3009 LIMIT_REACHED for a per-user bound: data {"limit": setting name, "max": value}."""
    refuse(op, ErrorCode.LIMIT_REACHED, message, data={"limit": setting, "max": value})


def charge_rows(op: Any, budget: WriteBudget, now: float) -> None:
    """Last step of a WriteOp's plan: charge its actor the update-log rows it staged (one at
    least: every write costs a statement), or refuse it (RATE_LIMITED, nothing staged).

    The store plans a batch again when the batch before it did not commit as planned; the
    earlier charge of the same op is given back first, so a write is charged once."""
    uid: int = op.actor
    charged: int = getattr(op, "rows_charged", 0)
    if charged:
        budget.refund_rows(uid, charged)
        op.rows_charged = 0
    rows = max(1, len(op.pushes))
    wait = budget.rows(uid, now, rows)
    if wait is not None:
        refuse(op, ErrorCode.RATE_LIMITED, f"writing too fast ({rows} update rows)",
               retry_after=round(wait, 3))
    op.rows_charged = rows
