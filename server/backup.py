"""Online backup: a consistent copy of the database while the server keeps running.

SQLite's backup API copies the pages under one read transaction; in WAL mode that read
does not block the server's writer, and the copy is the database exactly as of one
commit. The copy is checked with PRAGMA integrity_check before it is reported good.
"""

from __future__ import annotations

import os
import sqlite3
import time


def backup(db_path: str, dest: str) -> dict[str, object]:
    """Copy `db_path` to `dest` (which must not exist); returns what was copied."""
    if os.path.exists(dest):
        raise FileExistsError(f"{dest} exists; refusing to overwrite it")
    if not os.path.exists(db_path):
        raise FileNotFoundError(db_path)
    started = time.monotonic()
    src = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    tmp = dest + ".partial"
    try:
        out = sqlite3.connect(tmp)
        try:
            src.backup(out)  # pages=-1: every page in one step, one snapshot
            out.execute("PRAGMA journal_mode=DELETE")  # a self-contained single file
            check = out.execute("PRAGMA integrity_check").fetchone()[0]
            version = out.execute("PRAGMA user_version").fetchone()[0]
            messages = out.execute("SELECT count(*) FROM messages").fetchone()[0]
        finally:
            out.close()
    finally:
        src.close()
    if check != "ok":
        os.remove(tmp)
        raise RuntimeError(f"backup failed its integrity check: {check}")
    os.replace(tmp, dest)
    return {"dest": dest, "schema_version": version, "messages": messages,
            "bytes": os.path.getsize(dest), "seconds": round(time.monotonic() - started, 3)}
