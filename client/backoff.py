"""Jittered exponential backoff for reconnecting.

"Full jitter" (AWS architecture blog, *Exponential Backoff And Jitter*): the n-th delay is
drawn uniformly from ``[0, min(cap, base * factor**n)]``. Drawing from the whole interval,
rather than adding a little noise to a fixed delay, is what spreads a crowd of clients that
all lost the same server at the same instant: after a restart they come back spread over
the window instead of in synchronized waves.
"""

from __future__ import annotations

import math
import random

__all__ = ["DEFAULT_BASE", "DEFAULT_CAP", "Backoff"]

DEFAULT_BASE = 0.1  # seconds: the first retry comes almost at once
DEFAULT_CAP = 30.0  # seconds: never wait longer than this between attempts


class Backoff:
    """Delays for successive attempts; `reset()` after a success starts over.

    `rng` is injectable so tests can check the bounds deterministically.
    """

    def __init__(
        self,
        base: float = DEFAULT_BASE,
        cap: float = DEFAULT_CAP,
        *,
        factor: float = 2.0,
        rng: random.Random | None = None,
    ) -> None:
        if base <= 0 or cap <= 0 or factor < 1:
            raise ValueError("backoff needs base > 0, cap > 0 and factor >= 1")
        self.base = float(base)
        self.cap = float(max(cap, base))
        self.factor = float(factor)
        self._rng = rng if rng is not None else random.Random()
        self._attempts = 0

    @property
    def attempts(self) -> int:
        """How many delays were handed out since the last reset."""
        return self._attempts

    def ceiling(self, attempt: int) -> float:
        """The upper bound of the delay for the given attempt number (0-based)."""
        if attempt < 0:
            raise ValueError("attempt must be >= 0")
        # Compare exponents instead of computing factor**attempt, which overflows a float
        # after about a thousand attempts of a client that never gives up.
        if self.factor > 1 and attempt * math.log(self.factor) >= math.log(self.cap / self.base):
            return self.cap
        return min(self.cap, self.base * self.factor**attempt)

    def next_delay(self) -> float:
        """The delay before the next attempt, in seconds; advances the attempt counter."""
        delay = self._rng.uniform(0.0, self.ceiling(self._attempts))
        self._attempts += 1
        return delay

    def reset(self) -> None:
        """Start over from the base delay (call after a successful connection)."""
        self._attempts = 0
