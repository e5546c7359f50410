"""MemoryStore's channels: the batch's channel writes as rows, their tables and reads.

The committed channel state the rules consult lives in the overlay's `ChannelTables`
(state.ch, always complete here); this module keeps what only the reads need: post and
comment texts, the search index (store/search.py's words), and each user's channels.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..chat.model import KIND_CHANNEL, ChannelMember, ChannelState, CommentState, PostState
from .contract import ChannelRow, CommentRecord, PostRecord, SearchHit
from .overlay import Committed
from .search import query_words, words

# A staged channel write: (what, args...), applied in order at publish.
ChannelWrite = tuple[Any, ...]


class MemoryChannelBatch:
    """Mixed into MemoryBatch: the channel writes, staged as rows."""

    channel_rows: list[ChannelWrite]
    ts: int

    def _keep_channel(self, ch: ChannelState, *, new: bool) -> None:
        if new:
            self.channel_rows.append(("conv", ch.conv, ch.created))

    def _keep_channel_member(self, conv: int, uid: int, m: ChannelMember | None) -> None:
        self.channel_rows.append(("member", conv, uid, m is not None))

    def _keep_channel_ban(self, conv: int, uid: int, banned: bool, by: int) -> None:
        pass  # the batch's ban table is what is published

    def _keep_post(self, conv: int, pos: int, post: PostState, cmid: str, text: str) -> None:
        self.channel_rows.append(("post", conv, pos, post.id, post.author, self.ts, text))

    def _keep_post_state(self, conv: int, pos: int, post: PostState) -> None:
        if post.deleted:
            self.channel_rows.append(("gone", (conv, pos, 0), post.id))

    def _keep_like(self, conv: int, pos: int, uid: int, liked: bool) -> None:
        pass

    def _keep_comment(self, conv: int, pos: int, n: int, c: CommentState, text: str) -> None:
        self.channel_rows.append(("comment", conv, pos, n, c.id, c.author, self.ts, text))

    def _keep_comment_state(self, conv: int, pos: int, n: int, c: CommentState) -> None:
        if c.deleted:
            self.channel_rows.append(("gone", (conv, pos, n), c.id))


class MemoryChannels:
    """Mixed into MemoryStore: the channel tables beside the committed state, and reads."""

    state: Committed
    convs: dict[int, tuple[int, int | None, int | None, int]]

    def _init_channels(self) -> None:
        # (channel, pos, n) -> (id, author, ts, text); n = 0 for the post itself
        self.texts: dict[tuple[int, int, int], tuple[int, int, int, str]] = {}
        self.index: dict[int, tuple[int, tuple[int, int, int], frozenset[str]]] = {}
        self.user_channels: dict[int, set[int]] = {}

    def _publish_channels(self, rows: list[ChannelWrite]) -> None:
        for row in rows:
            what = row[0]
            if what == "conv":
                self.convs[row[1]] = (KIND_CHANNEL, None, None, row[2])
            elif what == "member":
                _w, conv, uid, present = row
                mine = self.user_channels.setdefault(uid, set())
                if present:
                    mine.add(conv)
                else:
                    mine.discard(conv)
            elif what in ("post", "comment"):
                if what == "post":
                    _w, conv, pos, item, author, ts, text = row
                    key = (conv, pos, 0)
                else:
                    _w, conv, pos, n, item, author, ts, text = row
                    key = (conv, pos, n)
                self.texts[key] = (item, author, ts, text)
                self.index[item] = (conv, key, frozenset(words(text)))
            elif what == "gone":
                _w, key, item = row
                item_, author, ts, _text = self.texts[key]
                self.texts[key] = (item_, author, ts, "")
                self.index.pop(item, None)

    def _name(self, uid: int) -> str:
        return self.state.usernames.get(uid, "")

    # ------------------------------------------------------------------ reads

    async def channel(self, conv: int) -> ChannelState | None:
        return self.state.ch.channels.get(conv)

    async def channel_member(self, conv: int, uid: int) -> ChannelMember | None:
        return self.state.ch.members.get((conv, uid))

    async def channel_banned(self, conv: int, uid: int) -> bool:
        return self.state.ch.bans.get((conv, uid), False)

    async def channels_of(self, uid: int) -> list[ChannelRow]:
        out: list[ChannelRow] = []
        for conv in self.user_channels.get(uid, ()):
            ch = self.state.ch.channels[conv]
            m = self.state.ch.members[(conv, uid)]
            assert ch is not None and m is not None
            out.append(
                (
                    conv,
                    ch.name,
                    m.role,
                    ch.members,
                    ch.last_pos,
                    m.read_pos,
                    ch.last_ts or ch.created,
                )
            )
        out.sort(key=lambda r: (r[6], r[0]), reverse=True)
        return out

    async def channels_named(self, name: str, limit: int) -> list[ChannelState]:
        want = _ascii_fold(name)
        found = [
            ch
            for ch in self.state.ch.channels.values()
            if ch is not None and ch.open and _ascii_fold(ch.name) == want
        ]
        found.sort(key=lambda ch: (-ch.members, ch.conv))
        return found[:limit]

    async def channel_members(
        self, conv: int, after: int, limit: int
    ) -> list[tuple[int, str, int]]:
        found = sorted(
            (u, m.role)
            for (c, u), m in self.state.ch.members.items()
            if c == conv and m is not None and u > after
        )
        return [(u, self._name(u), role) for u, role in found[:limit]]

    def _post(self, conv: int, pos: int) -> PostRecord | None:
        p = self.state.ch.posts.get((conv, pos))
        if p is None:
            return None
        text = "" if p.deleted else self.texts[(conv, pos, 0)][3]
        return PostRecord(
            pos, p.id, self._name(p.author), p.ts, text, p.deleted, p.likes, p.comments
        )

    async def channel_posts(
        self, conv: int, *, before: int | None = None, after: int | None = None, limit: int = 50
    ) -> list[PostRecord]:
        ch = self.state.ch.channels.get(conv)
        if ch is None or limit <= 0:
            return []
        if after is not None:
            positions = range(after + 1, min(ch.last_pos, after + limit) + 1)
        else:
            top = ch.last_pos if before is None else min(before - 1, ch.last_pos)
            positions = range(max(1, top - limit + 1), top + 1)
        return [p for p in (self._post(conv, pos) for pos in positions) if p is not None]

    async def channel_comments(
        self, conv: int, post: int, after: int, limit: int
    ) -> list[CommentRecord]:
        p = self.state.ch.posts.get((conv, post))
        if p is None:
            return []
        out = []
        for n in range(after + 1, min(p.comments, after + limit) + 1):
            c = self.state.ch.comments.get((conv, post, n))
            if c is None:
                continue
            item, author, ts, text = self.texts[(conv, post, n)]
            out.append(
                CommentRecord(
                    post, n, item, self._name(author), ts, "" if c.deleted else text, c.deleted
                )
            )
        return out

    async def channel_liked(self, conv: int, uid: int, posts: Iterable[int]) -> set[int]:
        likes = self.state.ch.likes
        return {pos for pos in posts if likes.get((conv, pos, uid), False)}

    async def channel_search(
        self, conv: int, query: str, limit: int, before_id: int | None = None
    ) -> list[SearchHit]:
        terms = query_words(query)
        if not terms:
            return []
        hits: list[SearchHit] = []
        for item in sorted(self.index, reverse=True):
            if before_id is not None and item >= before_id:
                continue
            c, key, found = self.index[item]
            if c != conv or not all(t in found for t in terms):
                continue
            _item, author, ts, text = self.texts[key]
            hits.append(SearchHit(key[1], key[2], item, self._name(author), ts, text))
            if len(hits) >= limit:
                break
        return hits


def _ascii_fold(name: str) -> str:
    """Lower case for ASCII letters only, as SQLite's NOCASE does."""
    return name.translate(_LOWER)


_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}
