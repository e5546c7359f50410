"""The SQLite store's reads, on the reader connections (readers.py).

A read never fills the writer's caches (a read racing a commit could plant stale state);
it uses them when they hold the value and otherwise asks the database. A device's
position counts as acknowledged from the moment it is recorded (caches.Positions), before
the commit that keeps it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import aiosqlite
from liaotian.protocol import encode_update

from ...chat.model import KIND_GROUP, REL_REQUESTED, GroupState, Member, Social
from ...chat.plan import pair
from ..contract import (
    ConversationRow,
    DeviceRecord,
    GroupRow,
    UpdatePage,
    UserRecord,
    read_owner,
)
from .caches import Caches, Positions
from .channels import ChannelReads
from .chat_list import chat_page
from .readers import FairReaders
from .sql import chunks
from .tail import UpdateTail


class Reads(ChannelReads):
    """Every read of the contract, over the writer's caches and the reader connections."""

    def __init__(
        self,
        cache: Caches,
        tail: UpdateTail,
        positions: Positions,
        readers: FairReaders[aiosqlite.Connection],
    ) -> None:
        self.cache = cache
        self.tail = tail
        self.positions = positions
        self.readers = readers

    async def _rows(self, sql: str, args: Any = ()) -> list[Any]:
        """One statement on a reader connection (its own snapshot), taken in turn with
        the other owners' reads (readers.py); the owner is the request's user."""
        readers = self.readers
        conn = await readers.acquire(read_owner.get())
        try:
            return list(await conn.execute_fetchall(sql, args))
        finally:
            readers.release(conn)

    async def _row(self, sql: str, args: Any = ()) -> Any:
        rows_ = await self._rows(sql, args)
        return rows_[0] if rows_ else None

    def _cache_user(self, name: str, uid: int) -> None:
        self.cache.add_user(name, uid)

    def cached_head(self, user_id: int) -> int | None:
        """The committed head if known; the writer's cache is the truth once loaded."""
        return self.cache.heads.get(user_id)

    def known_user(self, username: str) -> bool:
        """Whether the name is cached as a user's (resolved before: no syntax check)."""
        return username in self.cache.user_ids

    def members_hint(self, conv: int) -> int | None:
        """The group's member count in the writer's image, if loaded."""
        g = self.cache.groups.get(conv)
        return len(g.members) if g is not None else None

    async def head(self, user_id: int) -> int:
        """The newest committed seq. Read-side lookups never fill the writer's caches: a
        read racing a commit could otherwise plant a stale head."""
        h = self.cache.heads.get(user_id)
        if h is not None:
            return h
        row = await self._row(
            "SELECT log_floor, (SELECT coalesce(max(seq), 0) FROM updates WHERE user_id = ?) "
            "FROM users WHERE id = ?",
            (user_id, user_id),
        )
        h = self.cache.heads.get(user_id)  # a commit may have landed meanwhile
        if h is not None:
            return h
        return max(row[0], row[1]) if row else 0

    async def committed_head(self, user_id: int) -> int:
        """The newest seq in the database, which may be ahead of the published head by
        the batch committed a moment ago and not yet published (rows written straight into
        `updates`, see tail.py; journal rows are read only from the tail, published)."""
        row = await self._row(
            "SELECT log_floor, (SELECT coalesce(max(seq), 0) FROM updates WHERE user_id = ?) "
            "FROM users WHERE id = ?",
            (user_id, user_id),
        )
        stored = max(row) if row else 0
        return max(stored, self.cache.heads.get(user_id, 0))

    async def floor(self, user_id: int) -> int:
        f = self.cache.floors.get(user_id)
        if f is not None:
            return f
        row = await self._row("SELECT log_floor FROM users WHERE id = ?", (user_id,))
        return int(row[0]) if row else 0

    async def user_by_name(self, username: str) -> UserRecord | None:
        row = await self._row(
            "SELECT id, username, password_hash FROM users WHERE username=?",
            (username,),
        )
        if row is None:
            return None
        self._cache_user(row[1], row[0])
        return UserRecord(*row)

    async def user_id(self, username: str) -> int | None:
        uid = self.cache.user_ids.get(username)
        if uid is None:
            rec = await self.user_by_name(username)
            uid = rec.id if rec else None
        return uid

    async def device_by_token(self, token_hash: bytes) -> tuple[UserRecord, DeviceRecord] | None:
        row = await self._row(
            "SELECT u.id, u.username, u.password_hash, d.device, d.created, d.last_seen, d.acked "
            "FROM devices d JOIN users u ON u.id = d.user_id WHERE d.token_hash = ?",
            (token_hash,),
        )
        if row is None:
            return None
        user = UserRecord(row[0], row[1], row[2])
        acked = max(row[6], self.positions.of(row[0], row[3]))
        return user, DeviceRecord(row[0], row[3], row[4], row[5], acked)

    async def device(self, user_id: int, device: str) -> DeviceRecord | None:
        row = await self._row(
            "SELECT device, created, last_seen, acked FROM devices WHERE user_id=? AND device=?",
            (user_id, device),
        )
        if row is None:
            return None
        return DeviceRecord(
            user_id, row[0], row[1], row[2], max(row[3], self.positions.of(user_id, row[0]))
        )

    async def devices_of(self, user_id: int) -> list[DeviceRecord]:
        rows_ = await self._rows(
            "SELECT device, created, last_seen, acked FROM devices WHERE user_id=? "
            "ORDER BY created, device",
            (user_id,),
        )
        rows = rows_
        return [
            DeviceRecord(user_id, d, c, s, max(a, self.positions.of(user_id, d)))
            for d, c, s, a in rows
        ]

    async def read_updates(
        self, user_id: int, since: int, limit: int, max_bytes: int = 1 << 62
    ) -> UpdatePage:
        """Updates after `since`, oldest first, at most `limit` of them and (beyond the first)
        at most `max_bytes` encoded; resync if `since` is below the retained log."""
        if since < await self.floor(user_id):
            return UpdatePage([], since, resync=True)
        recent = self.tail.after(user_id, since)  # before the database read: see tail.py
        rows: list[Any] = []
        if not recent or recent[0][0] > since + 1:  # the tail does not start the page
            rows = await self._rows(
                "SELECT u.seq, u.kind, coalesce(m.body, u.data) FROM updates u "
                "LEFT JOIN messages m ON m.id = u.message_id "
                "WHERE u.user_id = ? AND u.seq > ? ORDER BY u.seq LIMIT ?",
                (user_id, since, limit),
            )
        if recent and len(rows) < limit:
            last = rows[-1][0] if rows else since
            rows += [r for r in recent if r[0] > last][: limit - len(rows)]
        if not rows:
            return UpdatePage([], since)
        if rows[0][0] > since + 1:  # pruned meanwhile (another server's retention pass:
            return UpdatePage([], since, resync=True)  # the floor read above was older)
        out: list[bytes] = []
        size = 0
        last = since
        for seq, kind, data in rows:
            upd = encode_update(seq, kind, data)
            size += len(upd)
            if out and size > max_bytes:
                break
            out.append(upd)
            last = seq
        return UpdatePage(out, last)

    async def direct_conv(self, a: int, b: int) -> int | None:
        key = pair(a, b)
        conv = self.cache.direct.get(key)
        if conv is not None:
            return conv
        row = await self._row(
            "SELECT id FROM conversations WHERE user_a=? AND user_b=? AND kind=1", key
        )
        return row[0] if row else None

    async def history(
        self,
        conv: int,
        before: int | None,
        after: int | None,
        limit: int,
        max_bytes: int = 1 << 62,
        min_pos: int = 1,
    ) -> tuple[list[bytes], bool]:
        """A page of a conversation in ascending position, nearest the anchor first when cut
        by `limit` or `max_bytes`; the flag says more exist in that direction. Positions
        below `min_pos` (before a member joined) do not exist for the reader."""
        if after is not None:
            sql = "SELECT body FROM messages WHERE conv_id=? AND pos>? ORDER BY pos LIMIT ?"
            args: tuple[int, ...] = (conv, max(after, min_pos - 1), limit + 1)
        else:
            sql = (
                "SELECT body FROM messages WHERE conv_id=? AND pos<? AND pos>=? "
                "ORDER BY pos DESC LIMIT ?"
            )
            args = (conv, before if before is not None else 1 << 62, min_pos, limit + 1)
        rows_ = await self._rows(sql, args)
        rows = [r[0] for r in rows_]
        more = len(rows) > limit
        rows = rows[:limit]
        size = 0
        for i, body in enumerate(rows):
            size += len(body)
            if i and size > max_bytes:
                rows, more = rows[:i], True
                break
        if after is None:
            rows.reverse()
        return rows, more

    # ------------------------------------------------------------------ social reads

    async def group_state(self, conv: int) -> GroupState | None:
        """The writer's image if loaded, else a fresh read (never cached from here)."""
        g = self.cache.groups.get(conv)
        if g is not None:
            return g
        row = await self._row(
            "SELECT g.name, g.topic, g.owner_id, c.created FROM groups g "
            "JOIN conversations c ON c.id = g.conv_id WHERE g.conv_id = ?",
            (conv,),
        )
        if row is None:
            return None
        g = GroupState(conv, row[0], row[1], row[2], row[3])
        rows_ = await self._rows(
            "SELECT user_id, role, joined_pos, joined FROM members WHERE conv_id = ?", (conv,)
        )
        for uid, role, jpos, joined in rows_:
            g.members[uid] = Member(role, jpos, joined)
        return self.cache.groups.get(conv) or g

    async def social_of(self, uid: int) -> Social:
        soc = self.cache.social.get(uid)
        if soc is not None:
            return soc
        row = await self._row(
            "SELECT privacy_presence, privacy_profile, privacy_messages, privacy_groups, "
            "privacy_receipts, privacy_coins, privacy_nearby FROM users WHERE id = ?",
            (uid,),
        )
        soc = (
            Social(
                presence=row[0],
                profile=row[1],
                messages=row[2],
                groups=row[3],
                receipts=row[4],
                coins=row[5],
                nearby=row[6],
            )
            if row
            else Social()
        )
        rows_ = await self._rows("SELECT other_id, kind FROM relations WHERE user_id = ?", (uid,))
        for other, kind in rows_:
            soc.add_relation(other, kind)
        rows_ = await self._rows(
            f"SELECT user_id FROM relations WHERE other_id = ? AND kind = {REL_REQUESTED}", (uid,)
        )
        soc.incoming.update(r[0] for r in rows_)
        return self.cache.social.get(uid) or soc

    async def last_pos(self, conv: int) -> int:
        last = self.cache.conv_last.get(conv)
        if last is not None:
            return last
        row = await self._row(
            "SELECT coalesce(max(pos), 0) FROM messages WHERE conv_id = ?", (conv,)
        )
        return max(int(row[0]), self.cache.conv_last.get(conv, 0))

    async def usernames(self, ids: Iterable[int]) -> dict[int, str]:
        out = {}
        missing = []
        for uid in ids:
            name = self.cache.usernames.get(uid)
            if name is None:
                missing.append(uid)
            else:
                out[uid] = name
        for chunk in chunks(missing):
            marks = ",".join("?" * len(chunk))
            rows_ = await self._rows(f"SELECT id, username FROM users WHERE id IN ({marks})", chunk)
            for uid, name in rows_:
                out[uid] = name
                self._cache_user(name, uid)  # names never change: safe to cache
        return out

    async def profile(self, uid: int) -> tuple[str, str, int]:
        """(display name, status, last seen ms)."""
        row = await self._row(
            "SELECT display_name, status, last_seen FROM users WHERE id = ?", (uid,)
        )
        return (row[0], row[1], row[2]) if row else ("", "", 0)

    async def groups_of(
        self, uid: int, *, limit: int | None = None, after: int = 0
    ) -> list[GroupRow]:
        """(group, name, topic, my role, member count) for the groups the user is in, by
        group id: those after `after`, at most `limit` of them (None: all)."""
        rows_ = await self._rows(
            "SELECT g.conv_id, g.name, g.topic, m.role, "
            "(SELECT count(*) FROM members x WHERE x.conv_id = g.conv_id) "
            "FROM members m JOIN groups g ON g.conv_id = m.conv_id "
            "WHERE m.user_id = ? AND m.conv_id > ? ORDER BY m.conv_id LIMIT ?",
            (uid, after, -1 if limit is None else limit),
        )
        return [tuple(r) for r in rows_]

    async def conversation(self, conv: int) -> tuple[int, int | None, int | None] | None:
        """(kind, user_a, user_b) of a conversation."""
        row = await self._row(
            "SELECT kind, user_a, user_b FROM conversations WHERE id = ?", (conv,)
        )
        if row is None and conv in self.cache.groups:
            return (KIND_GROUP, None, None)
        return (row[0], row[1], row[2]) if row else None

    async def read_marker(self, uid: int, conv: int) -> int:
        row = await self._row(
            "SELECT pos FROM read_markers WHERE user_id = ? AND conv_id = ?",
            (uid, conv),
        )
        return int(row[0]) if row else 0

    async def read_markers(self, conv: int) -> dict[int, int]:
        rows_ = await self._rows("SELECT user_id, pos FROM read_markers WHERE conv_id = ?", (conv,))
        return {u: p for u, p in rows_}

    async def delivered_pos(self, uid: int, conv: int) -> int:
        """The highest position in `conv` whose entry in uid's log a device acknowledged.

        The chat list's index holds the user's newest entry for the conversation: when a
        device acknowledged it (the usual case), that is the answer, in one lookup. Only
        a user with unacknowledged entries in `conv` has the log walked back, from the
        acknowledged seq to the conversation's entry before it."""
        acked = await self._row(
            "SELECT coalesce(max(acked), 0) FROM devices WHERE user_id = ?", (uid,)
        )
        pending = self.positions.of_user(uid)
        upto = max(acked[0], pending)
        # `updates` may hold rows newer than the tail's (a batch written directly, committed
        # and not yet published): the newer of the two answers
        recent = self.tail.last_in_conv(uid, upto, conv)
        chat = await self._row(
            "SELECT seq, pos FROM chats WHERE user_id = ? AND conv_id = ?", (uid, conv)
        )
        if chat is not None and 0 < chat[0] <= upto:
            row: tuple[int, int] | None = (chat[0], chat[1])
        else:
            found = await self._row(
                "SELECT u.seq, m.pos FROM updates u JOIN messages m ON m.id = u.message_id "
                "WHERE u.user_id = ? AND u.seq <= ? AND m.conv_id = ? "
                "ORDER BY u.seq DESC LIMIT 1",
                (uid, upto, conv),
            )
            row = (found[0], found[1]) if found is not None else None
        best = max(x for x in (recent, row, (0, 0)) if x is not None)
        return int(best[1])

    async def conversations_of(
        self, uid: int, limit: int, before: tuple[int, int] | None
    ) -> list[ConversationRow]:
        """(conv, kind, peer id, group name, ts, last body, last pos, read pos, joined pos)
        newest first by (ts, conv), strictly before `before`: a page of the chat list's
        index (chat_list.py), whose cost follows the page, not the user's conversations."""
        return await chat_page(self._rows, self.tail, uid, limit, before)

    async def unread_count(self, uid: int, conv: int, after: int, cap: int | None = None) -> int:
        """Messages after `after` not sent by uid (events excluded), counted up to `cap`."""
        if cap is None:
            row = await self._row(
                "SELECT count(*) FROM messages WHERE conv_id = ? "
                "AND pos > ? AND sender_id != ? AND cmid NOT LIKE '#event:%'",
                (conv, after, uid),
            )
        else:
            row = await self._row(
                "SELECT count(*) FROM (SELECT 1 FROM messages WHERE conv_id = ? "
                "AND pos > ? AND sender_id != ? AND cmid NOT LIKE '#event:%' LIMIT ?) m",
                (conv, after, uid, cap),
            )
        return int(row[0])

    async def relations_list(self, uid: int) -> Social:
        return await self.social_of(uid)
