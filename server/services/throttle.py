"""Failed-login throttling: at most N failures per key within a sliding window.

Keys are account names and peer addresses. Once a key has N failures inside the window,
attempts are refused (THROTTLED, with retry_after) until the oldest failure leaves the
window; a successful login clears the account's failures. Time is passed in.
"""

from __future__ import annotations

from collections import deque


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
