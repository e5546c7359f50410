"""MediaBudgets: charged buckets are stored in one write, read back after a restart (a new
instance over the same store), capped by a lowered limit, and kept for the next save when
a save fails."""

from __future__ import annotations

import pytest
from liaotian.server.handlers.budgets import MediaBudgets
from liaotian.server.media.limits import MediaLimits
from liaotian.server.store.contract import BudgetRow

LIMITS = MediaLimits(
    max_blob_size=1000,
    upload_bytes_per_day=1000,
    download_bytes_per_day=2000,
    max_download_chunk=2000,
)


class Store:
    def __init__(self) -> None:
        self.rows: dict[int, BudgetRow] = {}
        self.saves: list[list[BudgetRow]] = []
        self.fail = False

    async def media_budget(self, uid: int) -> BudgetRow | None:
        return self.rows.get(uid)

    async def save_media_budgets(self, rows: list[BudgetRow]) -> None:
        if self.fail:
            raise OSError("disk full")
        self.saves.append(rows)
        self.rows.update((r.user_id, r) for r in rows)


async def test_a_restart_goes_on_from_what_was_left() -> None:
    store = Store()
    budgets = MediaBudgets(store, LIMITS)
    b = await budgets.get(7, 0)
    taken = b.upload.take(600, 0)
    assert not isinstance(taken, float)
    b.upload = taken
    budgets.charged(7)
    await budgets.get(8, 0)  # read, never charged: not written
    assert await budgets.save() == 1
    assert await budgets.save() == 0  # nothing new
    assert store.saves == [[BudgetRow(7, 400, 0, 2000, 0)]]
    after = MediaBudgets(store, LIMITS)  # the restarted server
    b2 = await after.get(7, 0)
    assert b2.upload.available(0) == 400
    assert isinstance(b2.upload.take(600, 0), float)  # not a fresh day
    lowered = MediaBudgets(store, MediaLimits(max_blob_size=100, upload_bytes_per_day=300))
    assert (await lowered.get(7, 0)).upload.available(0) == 300


async def test_a_failed_save_is_tried_again() -> None:
    store = Store()
    budgets = MediaBudgets(store, LIMITS)
    await budgets.get(1, 0)
    budgets.charged(1)
    store.fail = True
    with pytest.raises(OSError):
        await budgets.save()
    store.fail = False
    assert await budgets.save() == 1
    assert 1 in store.rows
