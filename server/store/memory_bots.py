"""MemoryStore's bots (SPEC.md 26): bot rows, the groups whose bots see everything, edits.

A bot is a user with BOT_PASSWORD_HASH and one device, BOT_DEVICE, whose session token is
the bot token; the rows here are what only bots have.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from typing import Any

from ..chat.model import PendingCallback
from .bot_overlay import BotOverlay
from .contract import BOT_DEVICE, BOT_PASSWORD_HASH, BotRecord, StoreClosed, tombstone_name


class MemoryBots:
    """Mixed into MemoryStore (which provides the user and device writes used here)."""

    _accepting: bool
    clock: Callable[[], int]
    devices: dict[tuple[int, str], Any]
    bot_rows: dict[int, BotRecord]
    bot_groups: set[int]
    callbacks: dict[int, PendingCallback]
    bot_deleted: dict[int, int]
    messages: dict[int, Any]  # MemoryStore's message rows by id
    timelines: dict[int, list[Any]]
    by_cmid: dict[tuple[int, str], Any]

    def _init_bots(self) -> None:
        self.bot_rows = {}
        self.bot_groups = set()
        self.callbacks = {}
        self.bot_deleted = {}  # deleted bots whose names are in quarantine: uid -> ms

    def _publish_bots(self, batch: BotOverlay) -> None:
        """A committed batch's edits replace the stored messages; its callbacks are kept
        pending or closed."""
        for mid, conv, pos, body in batch.edits:
            old = self.messages.get(mid)
            if old is None:
                continue
            row = (*old[:7], body)
            self.messages[mid] = row
            timeline = self.timelines[conv]
            i = bisect.bisect_left(timeline, pos, key=_pos)
            if i < len(timeline) and timeline[i] is old:
                timeline[i] = row
            key = (old[3], old[5])
            if self.by_cmid.get(key) is old:
                self.by_cmid[key] = row
        for cb in batch.callbacks_added:
            self.callbacks[cb.id] = cb
        for callback in batch.callbacks_dropped:
            self.callbacks.pop(callback, None)

    async def create_user(self, username: str, password_hash: str) -> int:
        raise NotImplementedError

    async def set_device_token(
        self, user_id: int, device: str, token_hash: bytes, *, max_devices: int = 0
    ) -> int | None:
        raise NotImplementedError

    async def delete_device(self, user_id: int, device: str) -> bool:
        raise NotImplementedError

    async def create_bot(self, name: str, owner: int, token_hash: bytes) -> int:
        uid = await self.create_user(name, BOT_PASSWORD_HASH)  # nothing awaits in between:
        await self.set_device_token(uid, BOT_DEVICE, token_hash)  # one step, as a commit
        self.bot_rows[uid] = BotRecord(uid, name, owner, self.clock())
        return uid

    async def delete_bot(self, uid: int) -> bool:
        if not self._accepting:
            raise StoreClosed()
        if self.bot_rows.pop(uid, None) is None:
            return False
        self.bot_deleted[uid] = self.clock()
        for device in [d for u, d in self.devices if u == uid]:
            await self.delete_device(uid, device)
        for c in [c for c in self.callbacks.values() if c.bot == uid]:
            del self.callbacks[c.id]
        return True

    async def free_bot_names(self, deleted_before: int) -> list[str]:
        if not self._accepting:
            raise StoreClosed()
        freed = []
        for uid, deleted in list(self.bot_deleted.items()):
            if deleted < deleted_before:
                del self.bot_deleted[uid]
                freed.append(self._rename_user(uid, tombstone_name(uid)))
        return freed

    def _rename_user(self, uid: int, new: str) -> str:
        """The user's old name (MemoryStore renames its user records)."""
        raise NotImplementedError

    async def bot_by_id(self, uid: int) -> BotRecord | None:
        return self.bot_rows.get(uid)

    async def bots_of(self, owner: int) -> list[BotRecord]:
        return [b for b in self.bot_rows.values() if b.owner == owner]

    async def all_bots(self) -> list[BotRecord]:
        return list(self.bot_rows.values())

    async def set_bot_commands(self, uid: int, commands: tuple[tuple[str, str], ...]) -> None:
        if not self._accepting:
            raise StoreClosed()
        b = self.bot_rows.get(uid)
        if b is not None:
            self.bot_rows[uid] = BotRecord(b.id, b.name, b.owner, b.created, tuple(commands))

    async def set_group_bots(self, conv: int, see_all: bool) -> None:
        if not self._accepting:
            raise StoreClosed()
        if see_all:
            self.bot_groups.add(conv)
        else:
            self.bot_groups.discard(conv)

    async def bot_open_groups(self) -> set[int]:
        return set(self.bot_groups)

    async def bot_callback(self, callback: int) -> PendingCallback | None:
        return self.callbacks.get(callback)

    async def bot_callbacks(self, bot: int, limit: int) -> list[PendingCallback]:
        mine = sorted((c for c in self.callbacks.values() if c.bot == bot), key=_age)
        return mine[:limit]

    async def sweep_callbacks(self, before: int, keep: int) -> int:
        if not self._accepting:
            raise StoreClosed()
        gone = [c.id for c in self.callbacks.values() if c.created < before]
        per_bot: dict[int, list[PendingCallback]] = {}
        for c in self.callbacks.values():
            per_bot.setdefault(c.bot, []).append(c)
        for cbs in per_bot.values():
            if len(cbs) > keep:
                gone += [c.id for c in sorted(cbs, key=_age)[: len(cbs) - keep]]
        for callback in set(gone):
            del self.callbacks[callback]
        return len(set(gone))


def _age(c: PendingCallback) -> int:
    return c.seq


def _pos(m: Any) -> int:
    return int(m[2])
