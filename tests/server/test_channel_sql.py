"""Channel statements (store/sqlite/channels.py) go by key: at 100,000 members a scan of
the member table per post, join or chat list would be the cost the design avoids."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from liaotian.server.store.sqlite import channels
from liaotian.server.store.sqlite.schema import MIGRATIONS, statements


def fresh(tmp_path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(tmp_path / "plan.db", isolation_level=None)
    for migration in MIGRATIONS:
        for stmt in statements(migration):
            db.execute(stmt)
    return db


def plans(db: sqlite3.Connection, captured: list[str]) -> list[str]:
    out = []
    for q in captured:
        if q.lstrip().upper().startswith(("SELECT", "WITH", "UPDATE", "DELETE", "INSERT")):
            out.append(" | ".join(r[3] for r in db.execute("EXPLAIN QUERY PLAN " + q)))
    return out


def test_the_loaders_probe_indexes_and_scan_no_table(tmp_path: Path) -> None:
    db = fresh(tmp_path)
    captured: list[str] = []
    db.set_trace_callback(captured.append)
    channels.fetch_channel(db, ([1], [(1, 2)], [(1, 3)], [(1, 3, 2)], [(1, 3, 1)], [(1, 2, "m")]))
    db.set_trace_callback(None)
    found = plans(db, captured)
    assert len(found) == 7
    for plan in found:
        assert "SCAN channel" not in plan and "SCAN m" not in plan, plan
        assert "SEARCH" in plan, plan


def test_the_writes_and_the_chat_list_go_by_key(tmp_path: Path) -> None:
    db = fresh(tmp_path)
    for stmt in (
        channels.UPDATE_CHANNEL,
        channels.DELETE_MEMBER,
        channels.UPDATE_POST,
        channels.DELETE_LIKE,
        channels.DELETE_COMMENT_TEXT,
        channels.DELETE_BAN,
    ):
        plan = " | ".join(
            r[3] for r in db.execute("EXPLAIN QUERY PLAN " + stmt, [0] * stmt.count("?"))
        )
        assert "SCAN" not in plan, (stmt, plan)
    plan = " | ".join(
        r[3]
        for r in db.execute(
            "EXPLAIN QUERY PLAN SELECT c.conv_id FROM channel_members m JOIN channels c "
            "ON c.conv_id = m.conv_id WHERE m.user_id = ?",
            (1,),
        )
    )
    assert "channel_members_by_user" in plan and "SCAN" not in plan, plan
