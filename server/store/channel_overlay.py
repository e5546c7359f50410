"""The channel half of a batch being planned (overlay.py): chat.plan.ChannelPlan.

Channel state is read and written by key, one row at a time, in seven tables of
`ChannelTables`: the channels, (channel, user) member rows and bans, (channel, pos)
posts, (channel, pos, user) likes, (channel, pos, n) comments and (channel, author,
cmid) posts by client message id. A lookup goes batch -> parent batch -> committed, as
for groups. A value of None (False for bans and likes) is a row known to be absent: a
store that loads lazily (SQLite) records what it looked up and did not find, so a key is
"loaded" when any layer holds it, or always in a store that holds everything (memory).

Writes replace the frozen rows (dataclasses.replace in the rules), recorded for undo by
the overlay's `_set`, and are kept by the store's `_keep_channel_*` hooks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from ..chat.model import ChannelMember, ChannelState, CommentState, PostState


@dataclass(slots=True, eq=False)
class ChannelTables:
    channels: dict[int, ChannelState | None] = field(default_factory=dict)
    members: dict[tuple[int, int], ChannelMember | None] = field(default_factory=dict)
    bans: dict[tuple[int, int], bool] = field(default_factory=dict)
    posts: dict[tuple[int, int], PostState | None] = field(default_factory=dict)
    likes: dict[tuple[int, int, int], bool] = field(default_factory=dict)
    comments: dict[tuple[int, int, int], CommentState | None] = field(default_factory=dict)
    post_cmids: dict[tuple[int, int, str], int | None] = field(default_factory=dict)

    def update(self, other: ChannelTables) -> None:
        for f in TABLES:
            getattr(self, f).update(getattr(other, f))


TABLES = tuple(f.name for f in fields(ChannelTables))
_EMPTY = ChannelTables()


class ChannelOverlay:
    """Mixed into Overlay: the ChannelPlan reads and named writes."""

    ch: ChannelTables  # this batch's
    base_ch: ChannelTables  # the parent batch's (read-only here)
    committed_ch: ChannelTables  # the committed rows loaded so far
    complete: bool  # the committed tables hold every row (absent: no such row)
    next_item_id: int
    ts: int

    def _init_channels(
        self,
        committed_ch: ChannelTables,
        complete: bool,
        next_item_id: int,
        parent: ChannelOverlay | None,
    ) -> None:
        self.ch = ChannelTables()
        self.committed_ch = committed_ch
        self.complete = complete
        if parent is None:
            self.base_ch = _EMPTY
            self.next_item_id = next_item_id
        else:
            self.base_ch = parent.ch
            self.next_item_id = parent.next_item_id

    # provided by Overlay
    def _set(self, d: dict[Any, Any], key: Any, value: Any) -> None:
        raise NotImplementedError

    def _on_undo(self, fn: Callable[[], None]) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ lookups

    def _find(self, table: str, key: Any) -> tuple[bool, Any]:
        for t in (self.ch, self.base_ch, self.committed_ch):
            d = getattr(t, table)
            if key in d:
                return True, d[key]
        return False, None

    def has_channel_row(self, table: str, key: Any) -> bool:
        """Whether the batch can answer for this key without loading it."""
        return self.complete or self._find(table, key)[0]

    def channel(self, conv: int) -> ChannelState | None:
        v: ChannelState | None = self._find("channels", conv)[1]
        return v

    def channel_member(self, conv: int, uid: int) -> ChannelMember | None:
        v: ChannelMember | None = self._find("members", (conv, uid))[1]
        return v

    def channel_banned(self, conv: int, uid: int) -> bool:
        return bool(self._find("bans", (conv, uid))[1])

    def channel_post(self, conv: int, pos: int) -> PostState | None:
        v: PostState | None = self._find("posts", (conv, pos))[1]
        return v

    def channel_liked(self, conv: int, pos: int, uid: int) -> bool:
        return bool(self._find("likes", (conv, pos, uid))[1])

    def channel_comment(self, conv: int, pos: int, n: int) -> CommentState | None:
        v: CommentState | None = self._find("comments", (conv, pos, n))[1]
        return v

    def channel_post_by_cmid(self, conv: int, author: int, cmid: str) -> int | None:
        v: int | None = self._find("post_cmids", (conv, author, cmid))[1]
        return v

    def new_item_id(self) -> int:
        item = self.next_item_id
        self.next_item_id += 1
        self._on_undo(lambda: setattr(self, "next_item_id", item))
        return item

    # ------------------------------------------------------------------ named writes

    def put_channel(self, ch: ChannelState, *, new: bool = False) -> None:
        self._set(self.ch.channels, ch.conv, ch)
        self._keep_channel(ch, new=new)

    def put_channel_member(self, conv: int, uid: int, m: ChannelMember | None) -> None:
        self._set(self.ch.members, (conv, uid), m)
        self._keep_channel_member(conv, uid, m)

    def set_channel_ban(self, conv: int, uid: int, banned: bool, by: int) -> None:
        self._set(self.ch.bans, (conv, uid), banned)
        self._keep_channel_ban(conv, uid, banned, by)

    def add_post(self, conv: int, pos: int, post: PostState, cmid: str, text: str) -> None:
        self._set(self.ch.posts, (conv, pos), post)
        self._set(self.ch.post_cmids, (conv, post.author, cmid), pos)
        self._keep_post(conv, pos, post, cmid, text)

    def put_post(self, conv: int, pos: int, post: PostState) -> None:
        self._set(self.ch.posts, (conv, pos), post)
        self._keep_post_state(conv, pos, post)

    def set_like(self, conv: int, pos: int, uid: int, liked: bool) -> None:
        self._set(self.ch.likes, (conv, pos, uid), liked)
        self._keep_like(conv, pos, uid, liked)

    def add_comment(self, conv: int, pos: int, n: int, c: CommentState, text: str) -> None:
        self._set(self.ch.comments, (conv, pos, n), c)
        self._keep_comment(conv, pos, n, c, text)

    def put_comment(self, conv: int, pos: int, n: int, c: CommentState) -> None:
        self._set(self.ch.comments, (conv, pos, n), c)
        self._keep_comment_state(conv, pos, n, c)

    # ------------------------------------------------------------------ how writes are kept

    def _keep_channel(self, ch: ChannelState, *, new: bool) -> None:
        raise NotImplementedError

    def _keep_channel_member(self, conv: int, uid: int, m: ChannelMember | None) -> None:
        raise NotImplementedError

    def _keep_channel_ban(self, conv: int, uid: int, banned: bool, by: int) -> None:
        raise NotImplementedError

    def _keep_post(self, conv: int, pos: int, post: PostState, cmid: str, text: str) -> None:
        raise NotImplementedError

    def _keep_post_state(self, conv: int, pos: int, post: PostState) -> None:
        raise NotImplementedError

    def _keep_like(self, conv: int, pos: int, uid: int, liked: bool) -> None:
        raise NotImplementedError

    def _keep_comment(self, conv: int, pos: int, n: int, c: CommentState, text: str) -> None:
        raise NotImplementedError

    def _keep_comment_state(self, conv: int, pos: int, n: int, c: CommentState) -> None:
        raise NotImplementedError
