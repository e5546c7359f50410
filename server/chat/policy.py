"""The bounds the rules enforce, and the write budget they charge.

A `Policy` is built once from the server's settings and shared by every operation. The
budget is the server's (per-user token buckets, with its own clock); the core only asks
it. Without one (tests, the simulation) writes are not budgeted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .ledger import WalletPolicy


class RowBudget(Protocol):
    """Per-user budget of update-log rows (server/handlers/throttle.py's WriteBudget)."""

    def take_rows(self, uid: int, rows: int) -> float | None:
        """Spend `rows`: None if allowed, else the seconds until it would be."""

    def refund_rows(self, uid: int, rows: int) -> None: ...


@dataclass(frozen=True, slots=True)
class Policy:
    max_group_size: int = 500  # members, owner included
    max_groups_owned: int = 100
    max_groups_joined: int = 1000
    max_contacts: int = 5000
    max_outgoing_requests: int = 1000
    max_channel_members: int = 100_000  # members of one channel, owner included
    max_channel_pins: int = 10  # pinned posts of one channel
    budget: RowBudget | None = None
    wallet: WalletPolicy = WalletPolicy()


DEFAULT_POLICY = Policy()
