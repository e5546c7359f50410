"""Channels on SQLite (schema migration 10): the named writes as statements, the loaders
that fill the writer's channel rows by key, and the reads.

    ChannelBatch   mixed into Batch: each named write of chat.plan.ChannelPlan, staged
    fetch_channel  in the writer thread: the rows a batch's channel operations consult
    ChannelReads   mixed into Reads: pages of posts and comments, likes, search, lists

Every statement goes by key through a primary key or unique index: a post touches its
own row and the channel's; nothing reads or writes the member list as a whole.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

from ...chat.model import KIND_CHANNEL, ChannelMember, ChannelState, CommentState, PostState
from ..channel_overlay import ChannelTables
from ..contract import ChannelRow, CommentRecord, PostRecord, SearchHit
from ..search import fts_match, query_words
from .sql import INSERT_CONVERSATION, Rows, _select

INSERT_CHANNEL = (
    "INSERT INTO channels (conv_id, name, about, rules, owner_id, created, open, "
    "members_post, slow_mode, invite, members, last_pos, last_ts, pins) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
UPDATE_CHANNEL = (
    "UPDATE channels SET name = ?, about = ?, rules = ?, owner_id = ?, open = ?, "
    "members_post = ?, slow_mode = ?, invite = ?, members = ?, last_pos = ?, last_ts = ?, "
    "pins = ? WHERE conv_id = ?"
)
UPSERT_MEMBER = (
    "INSERT INTO channel_members (conv_id, user_id, role, read_pos, joined, last_post) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (conv_id, user_id) DO UPDATE SET "
    "role = excluded.role, read_pos = excluded.read_pos, last_post = excluded.last_post"
)
DELETE_MEMBER = "DELETE FROM channel_members WHERE conv_id = ? AND user_id = ?"
INSERT_BAN = "INSERT OR REPLACE INTO channel_bans (conv_id, user_id, by_id, ts) VALUES (?,?,?,?)"
DELETE_BAN = "DELETE FROM channel_bans WHERE conv_id = ? AND user_id = ?"
INSERT_POST = (
    "INSERT INTO channel_posts (id, conv_id, pos, author_id, cmid, ts, text) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
UPDATE_POST = (
    "UPDATE channel_posts SET deleted = ?, likes = ?, comments = ?, "
    "text = CASE WHEN ? != 0 THEN '' ELSE text END WHERE conv_id = ? AND pos = ?"
)
INSERT_COMMENT = (
    "INSERT INTO channel_comments (id, conv_id, pos, n, author_id, ts, text) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
DELETE_COMMENT_TEXT = (
    "UPDATE channel_comments SET deleted = 1, text = '' WHERE conv_id = ? AND pos = ? AND n = ?"
)
INSERT_LIKE = "INSERT OR IGNORE INTO channel_likes (conv_id, pos, user_id, ts) VALUES (?, ?, ?, ?)"
DELETE_LIKE = "DELETE FROM channel_likes WHERE conv_id = ? AND pos = ? AND user_id = ?"
INDEX_TEXT = "INSERT INTO channel_search (rowid, chan, text) VALUES (?, ?, ?)"
UNINDEX_TEXT = "DELETE FROM channel_search WHERE rowid = ?"
_CHANNEL_COLUMNS = (
    "conv_id, name, about, rules, owner_id, created, open, members_post, "
    "slow_mode, invite, members, last_pos, pins, last_ts"
)


def _pins(ch: ChannelState) -> str:
    return ",".join(map(str, ch.pins))


def channel_state(row: Any) -> ChannelState:
    """A ChannelState from a row of _CHANNEL_COLUMNS."""
    (
        conv,
        name,
        about,
        rules,
        owner,
        created,
        open_,
        members_post,
        slow,
        invite,
        members,
        last_pos,
        pins,
        last_ts,
    ) = row
    return ChannelState(
        conv,
        name,
        about,
        rules,
        owner,
        created,
        bool(open_),
        bool(members_post),
        slow,
        invite,
        members,
        last_pos,
        tuple(int(p) for p in pins.split(",") if p),
        last_ts,
    )


class ChannelBatch:
    """Mixed into Batch: the channel writes as statements."""

    ts: int

    def _stage(self, statement: str, params: tuple[Any, ...]) -> None:
        raise NotImplementedError

    def _keep_channel(self, ch: ChannelState, *, new: bool) -> None:
        if new:
            self._stage(INSERT_CONVERSATION, (ch.conv, KIND_CHANNEL, None, None, ch.created))
            self._stage(
                INSERT_CHANNEL,
                (
                    ch.conv,
                    ch.name,
                    ch.about,
                    ch.rules,
                    ch.owner,
                    ch.created,
                    ch.open,
                    ch.members_post,
                    ch.slow_mode,
                    ch.invite,
                    ch.members,
                    ch.last_pos,
                    ch.last_ts,
                    _pins(ch),
                ),
            )
        else:
            self._stage(
                UPDATE_CHANNEL,
                (
                    ch.name,
                    ch.about,
                    ch.rules,
                    ch.owner,
                    ch.open,
                    ch.members_post,
                    ch.slow_mode,
                    ch.invite,
                    ch.members,
                    ch.last_pos,
                    ch.last_ts,
                    _pins(ch),
                    ch.conv,
                ),
            )

    def _keep_channel_member(self, conv: int, uid: int, m: ChannelMember | None) -> None:
        if m is None:
            self._stage(DELETE_MEMBER, (conv, uid))
        else:
            self._stage(UPSERT_MEMBER, (conv, uid, m.role, m.read_pos, m.joined, m.last_post))

    def _keep_channel_ban(self, conv: int, uid: int, banned: bool, by: int) -> None:
        if banned:
            self._stage(INSERT_BAN, (conv, uid, by, self.ts))
        else:
            self._stage(DELETE_BAN, (conv, uid))

    def _keep_post(self, conv: int, pos: int, post: PostState, cmid: str, text: str) -> None:
        self._stage(INSERT_POST, (post.id, conv, pos, post.author, cmid, post.ts, text))
        self._stage(INDEX_TEXT, (post.id, f"c{conv}", text))

    def _keep_post_state(self, conv: int, pos: int, post: PostState) -> None:
        self._stage(UPDATE_POST, (post.deleted, post.likes, post.comments, post.deleted, conv, pos))
        if post.deleted:
            self._stage(UNINDEX_TEXT, (post.id,))

    def _keep_like(self, conv: int, pos: int, uid: int, liked: bool) -> None:
        if liked:
            self._stage(INSERT_LIKE, (conv, pos, uid, self.ts))
        else:
            self._stage(DELETE_LIKE, (conv, pos, uid))

    def _keep_comment(self, conv: int, pos: int, n: int, c: CommentState, text: str) -> None:
        self._stage(INSERT_COMMENT, (c.id, conv, pos, n, c.author, self.ts, text))
        self._stage(INDEX_TEXT, (c.id, f"c{conv}", text))

    def _keep_comment_state(self, conv: int, pos: int, n: int, c: CommentState) -> None:
        if c.deleted:
            self._stage(DELETE_COMMENT_TEXT, (conv, pos, n))
            self._stage(UNINDEX_TEXT, (c.id,))


# ---------------------------------------------------------------------- loaders (writer thread)

# What a batch's channel operations consult and the caches lack, by table (the keys of
# channel_overlay.ChannelTables, in its order).
ChannelKeys = tuple[
    list[int],
    list[tuple[int, int]],
    list[tuple[int, int]],
    list[tuple[int, int, int]],
    list[tuple[int, int, int]],
    list[tuple[int, int, str]],
]


def fetch_channel(db: sqlite3.Connection, keys: ChannelKeys) -> ChannelTables:
    """The rows for the keys, absent ones recorded as None (False for bans and likes)."""
    channels, members, posts, likes, comments, cmids = keys
    t = ChannelTables()
    t.channels.update(dict.fromkeys(channels))
    for row in _select(
        db, f"SELECT {_CHANNEL_COLUMNS} FROM channels WHERE conv_id IN ({{marks}})", channels
    ):
        t.channels[row[0]] = channel_state(row)
    t.members.update(dict.fromkeys(members))
    t.bans.update(dict.fromkeys(members, False))
    for conv, uid, role, read_pos, joined, last_post in _select(
        db,
        "WITH k(c, u) AS (VALUES {marks}) SELECT m.conv_id, m.user_id, m.role, "
        "m.read_pos, m.joined, m.last_post FROM k JOIN channel_members m "
        "ON m.conv_id = k.c AND m.user_id = k.u",
        members,
        "(?,?)",
    ):
        t.members[(conv, uid)] = ChannelMember(role, read_pos, joined, last_post)
    for conv, uid in _select(
        db,
        "WITH k(c, u) AS (VALUES {marks}) SELECT b.conv_id, "
        "b.user_id FROM k JOIN channel_bans b ON b.conv_id = k.c "
        "AND b.user_id = k.u",
        members,
        "(?,?)",
    ):
        t.bans[(conv, uid)] = True
    t.post_cmids.update(dict.fromkeys(cmids))
    found_posts = _select(
        db,
        "WITH k(c, a, m) AS (VALUES {marks}) SELECT p.conv_id, p.pos, "
        "p.id, p.author_id, p.ts, p.deleted, p.likes, p.comments, p.cmid "
        "FROM k JOIN channel_posts p ON p.conv_id = k.c "
        "AND p.author_id = k.a AND p.cmid = k.m",
        cmids,
        "(?,?,?)",
    )
    for row in found_posts:
        t.post_cmids[(row[0], row[3], row[8])] = row[1]
    t.posts.update(dict.fromkeys(posts))
    found_posts += _select(
        db,
        "WITH k(c, p) AS (VALUES {marks}) SELECT p.conv_id, p.pos, "
        "p.id, p.author_id, p.ts, p.deleted, p.likes, p.comments, "
        "p.cmid FROM k JOIN channel_posts p ON p.conv_id = k.c "
        "AND p.pos = k.p",
        posts,
        "(?,?)",
    )
    for conv, pos, item, author, ts, deleted, n_likes, n_comments, _cmid in found_posts:
        t.posts[(conv, pos)] = PostState(item, author, ts, bool(deleted), n_likes, n_comments)
    t.likes.update(dict.fromkeys(likes, False))
    for key in _select(
        db,
        "WITH k(c, p, u) AS (VALUES {marks}) SELECT l.conv_id, l.pos, "
        "l.user_id FROM k JOIN channel_likes l ON l.conv_id = k.c "
        "AND l.pos = k.p AND l.user_id = k.u",
        likes,
        "(?,?,?)",
    ):
        t.likes[tuple(key)] = True
    t.comments.update(dict.fromkeys(comments))
    for conv, pos, n, item, author, deleted in _select(
        db,
        "WITH k(c, p, n) AS (VALUES {marks}) SELECT x.conv_id, x.pos, x.n, x.id, "
        "x.author_id, x.deleted FROM k JOIN channel_comments x ON x.conv_id = k.c "
        "AND x.pos = k.p AND x.n = k.n",
        comments,
        "(?,?,?)",
    ):
        t.comments[(conv, pos, n)] = CommentState(item, author, bool(deleted))
    return t


def next_item_id(db: sqlite3.Connection) -> int:
    """The next free post or comment id."""
    (top,) = db.execute(
        "SELECT max(coalesce((SELECT max(id) FROM channel_posts), 0), "
        "coalesce((SELECT max(id) FROM channel_comments), 0))"
    ).fetchone()
    return int(top) + 1


# ---------------------------------------------------------------------- reads (reader connections)

_POST_COLUMNS = (
    "p.pos, p.id, u.username, p.ts, p.text, p.deleted, p.likes, p.comments "
    "FROM channel_posts p JOIN users u ON u.id = p.author_id"
)


def _post(row: Any) -> PostRecord:
    pos, item, author, ts, text, deleted, likes, comments = row
    return PostRecord(pos, item, author, ts, text, bool(deleted), likes, comments)


class ChannelReads:
    """Mixed into Reads (its `_rows` and `_row` run on the reader connections)."""

    async def _rows(self, sql: str, args: Any = ()) -> list[Any]:
        raise NotImplementedError

    async def _row(self, sql: str, args: Any = ()) -> Any:
        raise NotImplementedError

    async def channel(self, conv: int) -> ChannelState | None:
        row = await self._row(f"SELECT {_CHANNEL_COLUMNS} FROM channels WHERE conv_id = ?", (conv,))
        return channel_state(row) if row is not None else None

    async def channel_member(self, conv: int, uid: int) -> ChannelMember | None:
        row = await self._row(
            "SELECT role, read_pos, joined, last_post FROM channel_members "
            "WHERE conv_id = ? AND user_id = ?",
            (conv, uid),
        )
        return ChannelMember(*row) if row is not None else None

    async def channel_banned(self, conv: int, uid: int) -> bool:
        return (
            await self._row(
                "SELECT 1 FROM channel_bans WHERE conv_id = ? AND user_id = ?", (conv, uid)
            )
            is not None
        )

    async def channels_of(self, uid: int) -> list[ChannelRow]:
        rows = await self._rows(
            "SELECT c.conv_id, c.name, m.role, c.members, c.last_pos, m.read_pos, "
            "CASE WHEN c.last_ts > 0 THEN c.last_ts ELSE c.created END AS ts "
            "FROM channel_members m JOIN channels c ON c.conv_id = m.conv_id "
            "WHERE m.user_id = ? ORDER BY ts DESC, c.conv_id DESC",
            (uid,),
        )
        return [tuple(r) for r in rows]

    async def channel_members(
        self, conv: int, after: int, limit: int
    ) -> list[tuple[int, str, int]]:
        rows = await self._rows(
            "SELECT m.user_id, u.username, m.role FROM channel_members m JOIN users u "
            "ON u.id = m.user_id WHERE m.conv_id = ? AND m.user_id > ? ORDER BY m.user_id "
            "LIMIT ?",
            (conv, after, limit),
        )
        return [tuple(r) for r in rows]

    async def channel_posts(
        self, conv: int, *, before: int | None = None, after: int | None = None, limit: int = 50
    ) -> list[PostRecord]:
        if limit <= 0:
            return []
        if after is not None:
            rows = await self._rows(
                f"SELECT {_POST_COLUMNS} WHERE p.conv_id = ? AND p.pos > ? ORDER BY p.pos LIMIT ?",
                (conv, after, limit),
            )
        else:
            rows = await self._rows(
                f"SELECT {_POST_COLUMNS} WHERE p.conv_id = ? AND p.pos < ? "
                "ORDER BY p.pos DESC LIMIT ?",
                (conv, 1 << 62 if before is None else before, limit),
            )
            rows.reverse()
        return [_post(r) for r in rows]

    async def channel_comments(
        self, conv: int, post: int, after: int, limit: int
    ) -> list[CommentRecord]:
        rows = await self._rows(
            "SELECT x.pos, x.n, x.id, u.username, x.ts, x.text, x.deleted FROM channel_comments x "
            "JOIN users u ON u.id = x.author_id WHERE x.conv_id = ? AND x.pos = ? AND x.n > ? "
            "ORDER BY x.n LIMIT ?",
            (conv, post, after, limit),
        )
        return [
            CommentRecord(pos, n, item, author, ts, text, bool(deleted))
            for pos, n, item, author, ts, text, deleted in rows
        ]

    async def channel_liked(self, conv: int, uid: int, posts: Iterable[int]) -> set[int]:
        found: set[int] = set()
        wanted = sorted(set(posts))
        for i in range(0, len(wanted), 400):
            chunk = wanted[i : i + 400]
            marks = ",".join("?" * len(chunk))
            rows = await self._rows(
                f"SELECT pos FROM channel_likes WHERE conv_id = ? AND pos IN ({marks}) "
                "AND user_id = ?",
                (conv, *chunk, uid),
            )
            found.update(r[0] for r in rows)
        return found

    async def channel_search(
        self, conv: int, query: str, limit: int, before_id: int | None = None
    ) -> list[SearchHit]:
        terms = query_words(query)
        if not terms or limit <= 0:
            return []
        rows: Rows = await self._rows(
            "SELECT s.rowid, coalesce(p.pos, x.pos), coalesce(x.n, 0), u.username, "
            "coalesce(p.ts, x.ts), coalesce(p.text, x.text) FROM channel_search s "
            "LEFT JOIN channel_posts p ON p.id = s.rowid "
            "LEFT JOIN channel_comments x ON x.id = s.rowid "
            "JOIN users u ON u.id = coalesce(p.author_id, x.author_id) "
            "WHERE channel_search MATCH ? AND s.rowid < ? ORDER BY s.rowid DESC LIMIT ?",
            (fts_match(conv, terms), 1 << 62 if before_id is None else before_id, limit),
        )
        return [
            SearchHit(pos, n, item, author, ts, text) for item, pos, n, author, ts, text in rows
        ]
