"""Throttles for LOGIN and REGISTER. Time is always passed in (`now`, seconds).

FailureWindow: at most N failures per key within a sliding window; once a key has N
failures inside the window, attempts are refused until the oldest failure leaves it.

LoginThrottle (section 9.4 of SPEC.md): failed logins slow down the (account, address) pair
that made them, with a delay that doubles per failure past a few free ones, rather than
locking the account; an address and an account (over all addresses) each also have a much
higher ceiling within a window. An attempt is counted when it is *reserved*, before the
password is verified, and handed back if the password was right, so parallel guesses cannot
all pass the check before the first failure is recorded.

KeyedBuckets: one TokenBucket per key (registrations per address), bounded in number.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

from liaotian.protocol import ErrorCode, RequestError


class FailureWindow:
    def __init__(
        self, max_failures: int, window: float, max_keys: int = 100_000, busy_wait: float = 1.0
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self.max_keys = max_keys
        self.busy_wait = busy_wait
        self._failures: dict[str, deque[float]] = {}
        # attempts being verified now: they count against the ceiling until their verdict,
        # but refuse others only for `busy_wait` seconds (a verdict comes within that), so
        # many users logging in at once behind one address are slowed, never locked out
        self._pending: dict[str, int] = {}

    def retry_after(self, key: str, now: float) -> float | None:
        """Seconds until `key` may try again, or None if it may try now."""
        q = self._failures.get(key)
        if q is not None:
            while q and q[0] <= now - self.window:
                q.popleft()
            if not q:
                del self._failures[key]
                q = None
        failed = len(q) if q is not None else 0
        if q is not None and failed >= self.max_failures:
            return max(q[0] + self.window - now, 0.001)
        if failed + self._pending.get(key, 0) >= self.max_failures:
            return self.busy_wait
        return None

    def hold(self, key: str) -> None:
        """An attempt of `key` is being verified."""
        self._pending[key] = self._pending.get(key, 0) + 1

    def release(self, key: str) -> None:
        """A held attempt has its verdict (record a failure with `fail`)."""
        n = self._pending.get(key, 0) - 1
        if n > 0:
            self._pending[key] = n
        else:
            self._pending.pop(key, None)

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


@dataclass(slots=True)
class _Pair:
    failures: int
    last: float  # when the newest failure (or reservation) was counted


class LoginThrottle:
    """Throttles password attempts by (account, address), address and account.

    * (account, address): `free_failures` failures cost nothing; after that each attempt
      must wait `base_delay` * 2 ** (failures - free_failures) seconds (at most `max_delay`)
      since the previous failure. A pair without a failure for `window` seconds is forgotten;
      a correct password forgets it at once.
    * address: at most `per_address` failures within `window` (over all accounts).
    * account: at most `per_account` failures within `window` (over all addresses), a
      ceiling well above what one pair can reach, for guessing spread over many addresses.

    `reserve` counts an attempt as a failure of its pair before it is verified (`succeeded`
    hands it back), and as in flight for the address and account ceilings; `failed` records
    the failure there. Parallel guesses at one account from one address are thus delayed from
    the first; many users logging in at once behind one address are not (an attempt in flight
    holds others back for at most `busy_wait`, never for the window).
    """

    def __init__(
        self,
        *,
        free_failures: int,
        base_delay: float,
        max_delay: float,
        per_account: int,
        per_address: int,
        window: float,
        max_keys: int = 100_000,
    ) -> None:
        self.free_failures = free_failures
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.window = window
        self.max_keys = max_keys
        self.by_account = FailureWindow(per_account, window, max_keys)
        self.by_address = FailureWindow(per_address, window, max_keys)
        self._pairs: OrderedDict[tuple[str, str], _Pair] = OrderedDict()

    def delay(self, failures: int) -> float:
        """Seconds a pair with `failures` failures waits after its newest one."""
        over = failures - self.free_failures
        if over < 0:
            return 0.0
        return min(self.base_delay * 2.0 ** min(over, 64), self.max_delay)

    def _pair(self, key: tuple[str, str], now: float) -> _Pair | None:
        pair = self._pairs.get(key)
        if pair is not None and now - pair.last >= self.window:
            del self._pairs[key]
            return None
        return pair

    def retry_after(self, account: str, address: str, now: float) -> float | None:
        """Seconds until this pair may try again, or None if it may try now."""
        wait = 0.0
        pair = self._pair((account, address), now)
        if pair is not None:
            wait = pair.last + self.delay(pair.failures) - now
        wait = max(
            wait,
            self.by_account.retry_after(account, now) or 0.0,
            self.by_address.retry_after(address, now) or 0.0,
        )
        return max(wait, 0.001) if wait > 0 else None

    def reserve(self, account: str, address: str, now: float) -> float | None:
        """Count an attempt before verifying it. None: go ahead (call `succeeded` with the
        same `now` if the password is right); otherwise the seconds to wait, nothing counted."""
        wait = self.retry_after(account, address, now)
        if wait is not None:
            return wait
        key = (account, address)
        pair = self._pairs.get(key)
        if pair is None:
            if len(self._pairs) >= self.max_keys:  # bound memory under a spray of names
                self._pairs.popitem(last=False)
            pair = self._pairs[key] = _Pair(0, now)
        else:
            self._pairs.move_to_end(key)
        pair.failures += 1
        pair.last = now
        self.by_account.hold(account)
        self.by_address.hold(address)
        return None

    def succeeded(self, account: str, address: str) -> None:
        """The reserved attempt had the right password: forget the pair's failures. The
        account's and address's recorded failures stay."""
        self._pairs.pop((account, address), None)
        self.by_account.release(account)
        self.by_address.release(address)

    def failed(self, account: str, address: str, now: float) -> None:
        """The reserved attempt had a wrong password (the pair counted it already)."""
        self.abandoned(account, address)
        self.by_account.fail(account, now)
        self.by_address.fail(address, now)

    def abandoned(self, account: str, address: str) -> None:
        """The reserved attempt got no verdict (the store failed, the connection went): the
        pair keeps it counted, the ceilings forget it."""
        self.by_account.release(account)
        self.by_address.release(address)


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


class KeyedBuckets:
    """One TokenBucket per key, at most `max_keys` of them (the least recently used goes)."""

    def __init__(self, rate: float, burst: float, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def take(self, key: str, now: float, cost: float = 1.0) -> float | None:
        """Spend `cost` from key's bucket; None if allowed, else the seconds to wait."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._buckets.popitem(last=False)
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, now)
        else:
            self._buckets.move_to_end(key)
        return bucket.take(now, cost)


class WriteBudget:
    """Per-user budgets for writes (all of a user's devices together), two token buckets:

    * requests: every write request other than SEND (SEND has its own `send_rate`);
    * rows: the update-log rows a write fans out to, SEND included (a group event or a group
      message costs one row per member, a contact change one row per party).

    Time is passed in. Idle users' buckets are full, so forgetting the least recently used
    one beyond `max_users` loses nothing."""

    def __init__(
        self,
        request_rate: float,
        request_burst: float,
        rows_rate: float,
        rows_burst: float,
        max_users: int = 100_000,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.request_rate = request_rate
        self.request_burst = request_burst
        self.rows_rate = rows_rate
        self.rows_burst = rows_burst
        self.max_users = max_users
        self._users: dict[int, tuple[TokenBucket, TokenBucket]] = {}
        self.clock = clock  # for take_rows, the chat core's RowBudget (chat/policy.py)

    def _of(self, uid: int, now: float) -> tuple[TokenBucket, TokenBucket]:
        b = self._users.pop(uid, None)  # re-inserted last: the dict is in LRU order
        if b is None:
            if len(self._users) >= self.max_users:
                self._users.pop(next(iter(self._users)))
            b = (
                TokenBucket(self.request_rate, self.request_burst, now),
                TokenBucket(self.rows_rate, self.rows_burst, now),
            )
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

    def charge(self, uid: int, now: float) -> None:
        """request(), refused as every handler refuses it: 4001 with `retry_after`."""
        refuse(self.request(uid, now))

    def charge_rows(self, uid: int, now: float, count: float) -> None:
        """rows(), refused as charge() is."""
        refuse(self.rows(uid, now, count))

    def rows(self, uid: int, now: float, count: float) -> float | None:
        """Spend `count` rows; None if allowed, else the seconds until it would be."""
        return self._of(uid, now)[1].take(now, count)

    def take_rows(self, uid: int, rows: int) -> float | None:
        """`rows` now (the clock given at construction); see rows()."""
        assert self.clock is not None, "WriteBudget made without a clock"
        return self.rows(uid, self.clock(), rows)

    def refund_rows(self, uid: int, count: float) -> None:
        b = self._users.get(uid)
        if b is not None:
            b[1].tokens = min(b[1].burst, b[1].tokens + count)


def refuse(wait: float | None) -> None:
    """A write budget's answer as the handlers give it (SPEC.md 14.2): nothing when the
    write may go, else 4001 RATE_LIMITED with the seconds to wait (to the millisecond)."""
    if wait is not None:
        raise RequestError(ErrorCode.RATE_LIMITED, "writing too fast", retry_after=round(wait, 3))
