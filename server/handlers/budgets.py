"""The users' media byte buckets (SPEC.md 27.4): upload and download bytes per day.

Charged in memory on the request's path (an UPLOAD_BEGIN, each DOWNLOAD range) and stored
in the background: the buckets charged since the last save go to the store in one commit
every BUDGET_SAVE seconds, and once more at shutdown. A user's buckets come from the store
the first time they are needed after a start, so a restart goes on from what was left
rather than handing every user a fresh day's bytes. A crash (no shutdown) forgets at most
the last BUDGET_SAVE seconds of charges; the writer sees one small commit a second at
most, never one per chunk.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Protocol

from ..media.limits import MediaLimits
from ..media.uploads import ByteBudget
from ..store.contract import BudgetRow

log = logging.getLogger("liaotian.media")

BUDGET_SAVE = 1.0  # seconds a charged bucket may wait before it is stored
MAX_CACHED = 100_000  # users' buckets kept in memory (the uncharged ones are dropped beyond)


class BudgetStore(Protocol):
    async def media_budget(self, uid: int) -> BudgetRow | None: ...
    async def save_media_budgets(self, rows: list[BudgetRow]) -> None: ...


@dataclass(slots=True)
class Budgets:
    """One user's buckets; the handlers replace them as they charge."""

    upload: ByteBudget
    download: ByteBudget


class MediaBudgets:
    """The buckets of every user, loaded once, stored soon after each charge."""

    def __init__(self, store: BudgetStore, limits: MediaLimits) -> None:
        self.store = store
        self.limits = limits
        self._budgets: dict[int, Budgets] = {}
        self._charged: set[int] = set()  # users charged since the last save

    async def get(self, uid: int, now_ms: int) -> Budgets:
        """The user's buckets: from memory, else as last stored (a lowered limit caps
        what was left), else full."""
        b = self._budgets.get(uid)
        if b is not None:
            return b
        row = await self.store.media_budget(uid)
        b = self._budgets.get(uid)  # loaded by another request meanwhile: that one counts
        if b is not None:
            return b
        if len(self._budgets) >= MAX_CACHED:
            for k in [k for k in self._budgets if k not in self._charged]:
                del self._budgets[k]
        lim = self.limits
        up = ByteBudget.full(lim.upload_bytes_per_day, now_ms)
        down = ByteBudget.full(lim.download_bytes_per_day, now_ms)
        if row is not None:
            up = ByteBudget(up.capacity, float(min(row.up_level, up.capacity)), row.up_at)
            down = ByteBudget(down.capacity, float(min(row.down_level, down.capacity)), row.down_at)
        b = self._budgets[uid] = Budgets(up, down)
        return b

    def charged(self, uid: int) -> None:
        """The user's buckets changed: store them with the next save."""
        self._charged.add(uid)

    async def save(self) -> int:
        """Store the buckets charged since the last save, in one commit; how many."""
        if not self._charged:
            return 0
        uids, self._charged = self._charged, set()
        rows = [
            BudgetRow(
                uid, int(b.upload.level), b.upload.at_ms, int(b.download.level), b.download.at_ms
            )
            for uid in sorted(uids)
            if (b := self._budgets.get(uid)) is not None
        ]
        try:
            await self.store.save_media_budgets(rows)
        except BaseException:
            self._charged |= uids  # tried again with the next save
            raise
        return len(rows)

    async def run(self) -> None:
        """Save every BUDGET_SAVE seconds (until cancelled)."""
        while True:
            await asyncio.sleep(BUDGET_SAVE)
            try:
                await self.save()
            except Exception:
                log.exception("storing the media byte budgets failed")
