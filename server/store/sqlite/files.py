"""The database's files: one server per database, and nobody else may read them.

A server holds an exclusive lock on `<database>.lock` (flock) from opening the store until
closing it: a second server on the same database stops at start-up instead of writing
beside the first (its ids collided with the first's: every send failed). The lock file is
left in place: removing it on exit would let a third server lock a new file while a
second still holds the old one. The kernel drops the lock when the process exits, however
it exits. SQLite's own locks are POSIX locks on the database file, which any close of a
descriptor of that file drops (see checkpoint.py); flock on another file is independent of
them. `liaotian-server backup` reads through SQLite and takes no lock, so it works beside
a running server.

The database file is created 0600 before SQLite opens it: SQLite creates the -wal, -shm
and -journal files with the database file's permissions, so they are 0600 too, whatever
the umask. They hold password and token hashes and every message.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import stat

from ..contract import StoreOpenError

log = logging.getLogger("liaotian.store")

PRIVATE = 0o600  # owner read/write only


class DatabaseInUse(StoreOpenError):
    """Another process (a server) holds the database's lock."""


def lock_path(db_path: str) -> str:
    return db_path + ".lock"


class DatabaseLock:
    """An exclusive lock on a database for as long as it is held (see the module text)."""

    def __init__(self, db_path: str) -> None:
        self.db_path = db_path
        self.path = lock_path(db_path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Lock, or raise StoreOpenError (DatabaseInUse if another process holds it)."""
        if self._fd is not None:
            return
        directory = os.path.dirname(os.path.abspath(self.db_path))
        if not os.path.isdir(directory):
            raise StoreOpenError(
                f"cannot open database {self.db_path}: directory {directory} "
                "does not exist (the server creates no directories)"
            )
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE)
        except OSError as exc:
            raise StoreOpenError(
                f"cannot open database {self.db_path}: cannot create its "
                f"lock file {self.path}: {exc.strerror}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read_pid(fd)
            os.close(fd)
            by = f" (pid {holder})" if holder else ""
            raise DatabaseInUse(
                f"database {self.db_path} is in use by another "
                f"liaotian-server{by}; it holds {self.path}"
            ) from None
        # Who holds it, for the next one's message; only a hint, the lock is the flock.
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Idempotent; closing the descriptor drops the flock."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else None
    except OSError:
        return None


def create_private(db_path: str) -> bool:
    """Create an empty database file 0600 unless one exists; whether it was created.
    SQLite takes an empty file for an empty database."""
    try:
        fd = os.open(db_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE)
    except FileExistsError:
        if os.path.isdir(db_path):
            raise StoreOpenError(f"cannot open database {db_path}: it is a directory") from None
        return False
    except OSError as exc:
        raise StoreOpenError(f"cannot create database {db_path}: {exc.strerror}") from None
    os.close(fd)
    return True


def warn_if_shared(db_path: str) -> None:
    """Log a warning if users other than the owner may read the database (a file made
    before the server created them 0600, or by hand): its -wal and -shm files get the
    same mode."""
    with contextlib.suppress(OSError):
        mode = stat.S_IMODE(os.stat(db_path).st_mode)
        if mode & 0o077:
            log.warning(
                "database %s has mode %04o: other users may read it and its -wal "
                "and -shm files; chmod 600 it",
                db_path,
                mode,
            )


def file_sizes(db_path: str) -> tuple[int, int]:
    """Bytes of the database file and of its WAL (0 when missing)."""
    sizes = []
    for path in (db_path, db_path + "-wal"):
        try:
            sizes.append(os.stat(path).st_size)
        except OSError:
            sizes.append(0)
    return sizes[0], sizes[1]
