"""Online backup: a consistent copy of the database while the server keeps running.

SQLite's backup API copies the pages under one read transaction; in WAL mode that read
does not block the server's writer, and the copy is the database exactly as of one
commit. The copy is checked with PRAGMA integrity_check before it is reported good.
It takes no lock of the server's (store/files.py), so it runs beside a running server.

The copy is created 0600, whatever the umask: it holds the same secrets as the database.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from pathlib import Path

from .files import PRIVATE


class BackupError(Exception):
    """The backup was not made; the text (one line) says why, naming the file."""


def backup(db_path: str, dest: str) -> dict[str, object]:
    """Copy `db_path` to `dest` (which must not exist); returns what was copied."""
    if os.path.lexists(dest):
        raise BackupError(f"{dest} exists; refusing to overwrite it")
    if not os.path.exists(db_path):
        raise BackupError(
            f"no database at {db_path} to back up (choose it with --db-path, "
            "LIAOTIAN_DB_PATH or db_path in --config)"
        )
    if not os.path.isfile(db_path):
        raise BackupError(f"{db_path} is not a database file")
    started = time.monotonic()
    tmp = dest + ".partial"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE)
    except FileExistsError:
        raise BackupError(
            f"{tmp} exists (left by an interrupted backup?); remove it first"
        ) from None
    except OSError as exc:
        raise BackupError(f"cannot create {tmp}: {exc.strerror}") from None
    os.close(fd)
    try:
        check, version, messages = _copy(db_path, tmp)
        if check != "ok":
            raise BackupError(f"backup failed its integrity check: {check}")
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    return {
        "dest": dest,
        "schema_version": version,
        "messages": messages,
        "bytes": os.path.getsize(dest),
        "seconds": round(time.monotonic() - started, 3),
    }


def _copy(db_path: str, tmp: str) -> tuple[str, int, int]:
    """Copy into `tmp` (an empty file of ours); the integrity check, schema version and
    message count of the copy."""
    uri = Path(db_path).resolve().as_uri() + "?mode=ro"
    try:
        src = sqlite3.connect(uri, uri=True, timeout=30)
    except sqlite3.Error as exc:
        raise BackupError(f"cannot open {db_path}: {exc}") from None
    try:
        out = sqlite3.connect(tmp)
        try:
            try:
                src.backup(out)  # pages=-1: every page in one step, one snapshot
            except sqlite3.Error as exc:
                raise BackupError(f"cannot read {db_path}: {exc}") from None
            out.execute("PRAGMA journal_mode=DELETE")  # a self-contained single file
            check = out.execute("PRAGMA integrity_check").fetchone()[0]
            version = out.execute("PRAGMA user_version").fetchone()[0]
            try:
                messages = out.execute("SELECT count(*) FROM messages").fetchone()[0]
            except sqlite3.OperationalError:
                raise BackupError(
                    f"{db_path} is not a liaotian database (it has no messages table)"
                ) from None
        except sqlite3.Error as exc:
            raise BackupError(f"cannot write {tmp}: {exc}") from None
        finally:
            out.close()
    finally:
        src.close()
    return str(check), int(version), int(messages)
