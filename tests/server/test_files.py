"""The database's files: one store per database at a time (an flock on <db>.lock, held
from open to close), and 0600 modes for the database, its -wal and -shm, the lock file and
backups, whatever the umask."""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from liaotian.server.store import SQLiteStore
from liaotian.server.store.sqlite.backup import BackupError, backup
from liaotian.server.store.sqlite.files import DatabaseInUse, DatabaseLock, StoreOpenError
from liaotian.server.store.sqlite.schema import MIGRATIONS


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The common default, under which files used to be created 0644."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path | str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


async def test_a_second_store_on_the_same_database_is_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "liaotian.db")
    first = SQLiteStore(path)
    await first.open()
    try:
        second = SQLiteStore(path)
        with pytest.raises(
            DatabaseInUse, match=f"in use by another liaotian-server \\(pid {os.getpid()}\\)"
        ):
            await second.open()
        await second.close()  # harmless after a refused open
        assert await first.create_user("alice", "hash")  # the first still writes
    finally:
        await first.close()
    again = SQLiteStore(path)  # closed: free again
    await again.open()
    try:
        assert (await again.user_by_name("alice")) is not None
    finally:
        await again.close()


async def test_a_failed_open_lets_go_of_the_lock(tmp_path: Path) -> None:
    path = str(tmp_path / "liaotian.db")
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={len(MIGRATIONS) + 1}")
    db.close()
    s = SQLiteStore(path)
    with pytest.raises(RuntimeError, match="newer"):
        await s.open()
    assert not s.is_open
    lock = DatabaseLock(path)
    lock.acquire()
    lock.release()


def test_the_lock_is_per_open_file_not_per_process(tmp_path: Path) -> None:
    """flock: two locks in one process conflict too (so two Server objects do)."""
    one, two = DatabaseLock(str(tmp_path / "x.db")), DatabaseLock(str(tmp_path / "x.db"))
    one.acquire()
    try:
        with pytest.raises(DatabaseInUse):
            two.acquire()
    finally:
        one.release()
    two.acquire()
    two.release()
    two.release()  # idempotent


def test_a_missing_directory_is_named_and_not_created(tmp_path: Path) -> None:
    lock = DatabaseLock(str(tmp_path / "missing" / "x.db"))
    with pytest.raises(StoreOpenError, match=f"directory {tmp_path / 'missing'} does not exist"):
        lock.acquire()
    assert not (tmp_path / "missing").exists()


async def test_database_wal_shm_and_lock_are_created_0600(tmp_path: Path, umask_022) -> None:
    """Regression: 0644 under umask 022; they hold password and token hashes and messages."""
    path = tmp_path / "liaotian.db"
    s = SQLiteStore(str(path))
    await s.open()
    try:
        await s.create_user("alice", "hash")
        names = sorted(p.name for p in tmp_path.iterdir())
        assert names == ["liaotian.db", "liaotian.db-shm", "liaotian.db-wal", "liaotian.db.lock"]
        assert {n: oct(mode(tmp_path / n)) for n in names} == {n: "0o600" for n in names}
    finally:
        await s.close()
    assert mode(path) == 0o600


async def test_an_existing_readable_database_is_warned_about_not_changed(
    tmp_path: Path, caplog, umask_022
) -> None:
    path = tmp_path / "liaotian.db"
    sqlite3.connect(path).close()
    os.chmod(path, 0o644)
    s = SQLiteStore(str(path))
    with caplog.at_level(logging.WARNING, logger="liaotian.store"):
        await s.open()
    await s.close()
    assert "has mode 0644: other users may read it" in caplog.text
    assert mode(path) == 0o644  # the operator's file: told, not changed


async def test_a_backup_is_created_0600(tmp_path: Path, umask_022) -> None:
    path = str(tmp_path / "liaotian.db")
    s = SQLiteStore(path)
    await s.open()
    try:
        await s.create_user("alice", "hash")
        result = backup(path, str(tmp_path / "copy.db"))  # beside the open store
    finally:
        await s.close()
    assert result["schema_version"] == len(MIGRATIONS)
    assert mode(tmp_path / "copy.db") == 0o600
    assert not (tmp_path / "copy.db.partial").exists()


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "no database at {db} to back up"),
        ("not sqlite", "cannot read {db}: file is not a database"),
        ("other sqlite", "{db} is not a liaotian database"),
        ("dest exists", "{dest} exists; refusing to overwrite it"),
    ],
)
def test_backup_failures_say_what_is_wrong(tmp_path: Path, setup: str, message: str) -> None:
    db, dest = str(tmp_path / "src.db"), str(tmp_path / "copy.db")
    if setup == "not sqlite":
        Path(db).write_text("hello\n" * 1000)
    elif setup == "other sqlite":
        con = sqlite3.connect(db)
        con.execute("CREATE TABLE t (x)")
        con.commit()
        con.close()
    elif setup == "dest exists":
        sqlite3.connect(db).close()
        Path(dest).write_text("mine")
    with pytest.raises(BackupError) as exc:
        backup(db, dest)
    assert message.format(db=db, dest=dest) in str(exc.value)
    assert not os.path.exists(dest + ".partial")
    if setup == "dest exists":
        assert Path(dest).read_text() == "mine"
    else:
        assert not os.path.exists(dest)
