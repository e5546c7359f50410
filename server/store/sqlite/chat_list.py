"""The chat list (LIST_CONVERSATIONS) from its index: a page costs what the page holds.

`chats` (schema migration 12) keeps, per user and conversation, the time of its last
message and the user's newest log entry in it. Commits keep it when they fold log rows
into `updates` (tail.py, sql.upsert_chats), so it lags the update-log tail by the fold
delay, as `updates` does; a page is the union of the two, as a SYNC is. Ordering all of
a user's conversations (what the list did before, a few index steps each) made a user
with thousands of them slow everyone's reads; now the database reads one page of the
index, plus one row for each conversation with rows still in the tail.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ..contract import ConversationRow
from .tail import UpdateTail

Rows = Callable[[str, Any], Awaitable[list[Any]]]

# Newest first by (ts, conv), strictly before (bts, bconv).
PAGE_SQL = (
    "SELECT conv_id, ts FROM chats WHERE user_id = ? AND ts <= ? AND (ts < ? OR conv_id < ?) "
    "ORDER BY ts DESC, conv_id DESC LIMIT ?"
)
# The chosen page, completed: {values} is "(?,?),..." (conv, ts); the user is the last
# parameter, numbered {me}.
COMPLETE_SQL = """
    WITH page(conv, ts) AS (VALUES {values})
    SELECT p.conv, c.kind,
           CASE WHEN c.kind = 1 THEN iif(c.user_a = ?{me}, c.user_b, c.user_a) END,
           g.name, p.ts, m.body, coalesce(m.pos, 0), coalesce(r.pos, 0),
           coalesce(mem.joined_pos, 1)
    FROM page p
    JOIN conversations c ON c.id = p.conv
    LEFT JOIN groups g ON c.kind = 2 AND g.conv_id = p.conv
    LEFT JOIN members mem ON c.kind = 2 AND mem.conv_id = p.conv AND mem.user_id = ?{me}
    LEFT JOIN messages m ON m.id = (SELECT id FROM messages WHERE conv_id = p.conv
                                    ORDER BY pos DESC LIMIT 1)
    LEFT JOIN read_markers r ON r.user_id = ?{me} AND r.conv_id = p.conv
    ORDER BY p.ts DESC, p.conv DESC
"""


async def chat_page(
    rows: Rows, tail: UpdateTail, uid: int, limit: int, before: tuple[int, int] | None
) -> list[ConversationRow]:
    """Up to limit + 1 rows of uid's chat list, newest first by (ts, conv), strictly
    before `before` (the extra row tells the caller there is more).

    The tail's conversations are the user's newest (its rows are the newest of the log),
    so only its first limit + 1 still joined are candidates; the index's page, as long
    as there are candidates, is searched for the rest (a joining is indexed at once, and
    may be newer); a tail conversation beyond the candidates ranks below all of them."""
    b_ts, b_conv = before if before is not None else (1 << 62, 1 << 62)
    in_tail = tail.chats_of(uid)  # taken before the database is asked (see tail.py)
    pending = sorted(
        ((ts, conv) for conv, ts in in_tail.items() if (ts, conv) < (b_ts, b_conv)), reverse=True
    )
    keys, looked = await _candidates(rows, uid, pending, limit + 1, (b_ts, b_conv))
    # the index's rows of tail conversations are stale: skipped (the looked-at ones are
    # in `keys` already, the rest rank below them)
    page = await rows(PAGE_SQL, (uid, b_ts, b_ts, b_conv, limit + 1 + looked))
    for conv, ts in page:
        if conv not in in_tail:
            keys[conv] = ts
    chosen = sorted(((ts, conv) for conv, ts in keys.items()), reverse=True)[: limit + 1]
    if not chosen:
        return []
    values = ",".join(["(?,?)"] * len(chosen))
    args = [v for ts, conv in chosen for v in (conv, ts)]
    found = await rows(COMPLETE_SQL.format(values=values, me=len(args) + 1), (*args, uid))
    return [tuple(r) for r in found]


async def _candidates(
    rows: Rows, uid: int, pending: list[tuple[int, int]], want: int, before: tuple[int, int]
) -> tuple[dict[int, int], int]:
    """{conv: key} of the first `want` tail conversations (newest first) the user still
    belongs to (a removal's event reaches the removed member's log too); a key is the
    newer of the tail's and the index's (a joining, indexed at once, may be newer). And
    how many tail conversations that took looking at."""
    keys: dict[int, int] = {}
    at = 0
    while len(keys) < want and at < len(pending):
        part = pending[at : at + want - len(keys)]
        at += len(part)
        convs = [conv for _ts, conv in part]
        live = await rows(
            "SELECT id, (SELECT ts FROM chats WHERE user_id = ?1 AND conv_id = c.id) "
            f"FROM conversations c WHERE id IN ({','.join('?' * len(convs))}) AND (kind = 1 "
            "OR EXISTS (SELECT 1 FROM members WHERE conv_id = c.id AND user_id = ?1))",
            (uid, *convs),
        )
        indexed = {conv: ts or 0 for conv, ts in live}
        for ts, conv in part:
            if conv in indexed:
                key = max(ts, indexed[conv])
                if (key, conv) < before:
                    keys[conv] = key
    return keys, at
