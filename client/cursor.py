"""Where a device stands in its update log, and where that is remembered between runs.

Two separate concerns live here, both free of I/O on the network:

* `CursorTracker` is the exactly-once bookkeeping. The server numbers every entry of a user's
  update log (`seq`) and may send the same entry twice (a SYNC page after a reconnect repeats
  what a push already carried, a SENT of our own send names an entry the next SYNC also
  returns). The tracker keeps a *contiguous cursor* (every entry <= cursor has been given to
  the application, or was our own send) and the set of entries above it already seen, so each
  entry reaches the application once and in order.
* `SessionStore` (`MemoryStore`, `FileStore`) persists token, device and cursor, so that a new
  process resumes where the last one stopped instead of replaying or skipping messages.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
from collections import deque
from collections.abc import Container, Iterator
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from liaotian.protocol import Update, UpdateKind

__all__ = [
    "DATA_KINDS",
    "CursorTracker",
    "FileStore",
    "MemoryStore",
    "SessionState",
    "SessionStore",
    "Verdict",
    "classify_update",
]

log = logging.getLogger("liaotian.client")


# --------------------------------------------------------------------------- stores


@dataclass(frozen=True, slots=True)
class SessionState:
    """What a device needs to resume: who it is, its session token and its log position.

    `cursor` is None until the device has a position at all; the client then picks the
    starting point from the server's answer (see `Client`). `extra` is free for applications
    (the CLI keeps the server address there).

    `login` is the session's generation: the time (ns since the epoch) of the explicit login
    that created it, 0 when unknown. A `FileStore` never replaces a session with one of an
    older generation, so a long-running process that still holds an earlier login cannot
    overwrite a newer one made meanwhile by another process (`new_login()`).
    """

    username: str | None = None
    device: str | None = None
    token: str | None = None
    cursor: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    login: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "username": self.username,
            "device": self.device,
            "token": self.token,
            "cursor": self.cursor,
            "extra": self.extra,
            "login": self.login,
        }

    @classmethod
    def from_json(cls, data: Any) -> SessionState:
        if not isinstance(data, dict):
            raise ValueError("session state must be a JSON object")

        def opt(key: str, typ: type) -> Any:
            v = data.get(key)
            if v is not None and (type(v) is not typ):
                raise ValueError(f"session state field {key!r} must be {typ.__name__}")
            return v

        cursor = opt("cursor", int)
        if cursor is not None and cursor < 0:
            raise ValueError("session state cursor must be >= 0")
        extra = data.get("extra") or {}
        if not isinstance(extra, dict):
            raise ValueError("session state field 'extra' must be an object")
        login = opt("login", int) or 0
        return cls(
            username=opt("username", str),
            device=opt("device", str),
            token=opt("token", str),
            cursor=cursor,
            extra=extra,
            login=login,
        )

    def with_changes(self, **changes: Any) -> SessionState:
        return replace(self, **changes)

    def new_login(self, previous: SessionState | None = None) -> SessionState:
        """This state as a new login: a generation above `previous`'s and above any
        earlier one (the clock, or one more than the previous generation if the clock is
        behind)."""
        floor = max(self.login, previous.login if previous is not None else 0)
        return replace(self, login=max(time.time_ns(), floor + 1))


@runtime_checkable
class SessionStore(Protocol):
    """Persistence for `SessionState`. Calls are synchronous and must be cheap: the client
    saves at most about once a second (at its ACK points) and on close."""

    def load(self) -> SessionState: ...

    def save(self, state: SessionState) -> None: ...


class MemoryStore:
    """The default store: remembers the session for the life of the process only.

    Good enough for a client object that reconnects (the cursor survives reconnects because
    it lives in the client anyway), and for tests.
    """

    def __init__(self, state: SessionState | None = None) -> None:
        self._state = state if state is not None else SessionState()

    def load(self) -> SessionState:
        return self._state

    def save(self, state: SessionState) -> None:
        self._state = state


class FileStore:
    """A JSON file holding one device session.

    Written atomically: the new content goes to a temporary file in the same directory,
    which is fsynced and then renamed over the old one with `os.replace`. A crash or a full
    disk therefore leaves either the old state or the new one, never a torn file that would
    lose the token or rewind the cursor. The file is created mode 0600 (it holds a bearer
    token) inside a directory created mode 0700.

    Several processes may share the file (the CLI's `listen` runs while `login` saves a new
    session). `save` re-reads the file under an exclusive lock on the directory and does not
    replace a session of a newer generation (`SessionState.login`) with an older one: that
    save is skipped (logged once per store) and `skipped` counts it.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        self.skipped = 0  # saves refused because the file held a newer login

    def load(self) -> SessionState:
        """The stored state, or an empty one if the file does not exist.

        A file that exists but cannot be parsed raises ValueError rather than being
        treated as empty: silently starting over would drop the token and the cursor.
        """
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return SessionState()
        try:
            return SessionState.from_json(json.loads(text))
        except (ValueError, json.JSONDecodeError) as exc:
            raise ValueError(f"{self.path}: unreadable session state: {exc}") from exc

    def save(self, state: SessionState) -> None:
        """Write `state`, unless the file holds a newer login (see the class docstring)."""
        directory = self.path.parent
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        with _locked(directory):
            try:
                current = self.load()
            except ValueError:
                current = SessionState()  # a torn or foreign file: replace it
            if current.login > state.login:
                self.skipped += 1
                if self.skipped == 1:
                    log.warning(
                        "liaotian: %s holds a newer login (%s on %s); this process "
                        "keeps its own session without saving it",
                        self.path,
                        current.username,
                        current.device,
                    )
                return
            self._write(directory, state)

    def _write(self, directory: Path, state: SessionState) -> None:
        data = json.dumps(state.to_json(), indent=2, sort_keys=True) + "\n"
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_dir(directory)

    def clear(self) -> None:
        """Forget the session entirely (remove the file)."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """An exclusive advisory lock on the directory (flock), so that re-reading the file and
    replacing it is one step for every process using FileStore; no lock where the platform
    has none."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable; best effort (not every platform allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- cursor


class CursorTracker:
    """Exactly-once, in-order bookkeeping over one user's update log.

    Every entry passes through three stages: *seen* (accepted into the event queue, or known
    to be our own send), *handed* (the application took it from the queue) and finally
    *below the cursor*. The cursor is what gets acknowledged and persisted, so it only ever
    covers entries the application has been given or that it produced itself: a crash loses
    at most what sat in the queue, and that is delivered again by the next SYNC.

    The cursor advances by two rules, both safe on their own:

    * contiguity: while `cursor + 1` is seen and handed, step over it (the server numbers a
      user's log 1, 2, 3, ... without holes);
    * a watermark: `received_through(w)` says every entry <= w that exists has been seen (a
      SYNC page covers `(since, last]` completely; a live push arrives with no gap), so the
      cursor may move up to w, stopping below the oldest entry still waiting in the queue.
      This keeps the client correct even against a log with holes in its numbering.

    When the queue is full the client drops new entries (`drop`) instead of blocking its
    reader; from then on nothing new is accepted and the watermark is frozen, so the cursor
    stays below the dropped entries until `begin_sync` starts fetching them again.
    """

    def __init__(self, cursor: int = 0) -> None:
        if cursor < 0:
            raise ValueError("cursor must be >= 0")
        self._cursor = cursor
        self._received = cursor  # watermark: every existing entry <= this has been seen
        self._seen: set[int] = set()  # seen entries above the cursor
        self._unhanded: deque[int] = deque()  # seen entries still in the queue, ascending
        self._unhanded_set: set[int] = set()
        self._overflow_from: int | None = None

    # ---------------------------------------------------------------- queries

    @property
    def cursor(self) -> int:
        """Every entry <= cursor was given to the application or was our own send."""
        return self._cursor

    @property
    def received(self) -> int:
        """The watermark: every entry <= this has been seen (it may still be queued)."""
        return self._received

    @property
    def overflowing(self) -> bool:
        """True after a drop, until `begin_sync`: new entries must be dropped too."""
        return self._overflow_from is not None

    @property
    def refetch_since(self) -> int:
        """The SYNC position that fetches the dropped entries again: the cursor, not the
        first dropped entry. A SYNC also records its `since` as the device's position on the
        server, which must not get ahead of what the application was given; the entries it
        repeats (still queued) are recognized as seen."""
        return self._cursor

    @property
    def pending(self) -> int:
        """Entries seen but not yet handed to the application."""
        return len(self._unhanded_set)

    def is_new(self, seq: int) -> bool:
        """Whether an entry has neither been seen nor passed by the cursor."""
        return seq > self._cursor and seq not in self._seen

    # ---------------------------------------------------------------- changes

    def accept(self, seq: int) -> bool:
        """The entry goes into the event queue. False (and no change) if it is a duplicate."""
        if not self.is_new(seq):
            return False
        self._seen.add(seq)
        if self._unhanded and seq < self._unhanded[-1]:
            # Never expected (the queue is filled in log order), but stay correct if it is.
            self._unhanded.append(seq)
            self._unhanded = deque(sorted(self._unhanded))
        else:
            self._unhanded.append(seq)
        self._unhanded_set.add(seq)
        return True

    def skip(self, seq: int) -> bool:
        """The entry needs no delivery (our own send, or a kind this client does not know):
        seen and handled at once. False if it was already seen."""
        if not self.is_new(seq):
            return False
        self._seen.add(seq)
        self._advance()
        return True

    def handed(self, seq: int) -> None:
        """The application took the entry from the queue."""
        if seq not in self._unhanded_set:
            return
        self._unhanded_set.discard(seq)
        if self._unhanded and self._unhanded[0] == seq:
            self._unhanded.popleft()
        else:
            self._unhanded.remove(seq)
        self._advance()

    def drop(self, seq: int) -> None:
        """The entry could not be queued (queue full): remember to fetch it again."""
        if self._overflow_from is None or seq < self._overflow_from:
            self._overflow_from = seq

    def received_through(self, seq: int) -> None:
        """Every existing entry <= seq has now been seen (or dropped while overflowing)."""
        if self._overflow_from is not None:
            return  # frozen: entries after the first drop were not all seen
        if seq > self._received:
            self._received = seq
            self._advance()

    def begin_sync(self) -> None:
        """A SYNC from `refetch_since` (or lower) is starting: dropped entries will come
        again, so new entries may be accepted once more."""
        self._overflow_from = None

    def reset(self, head: int) -> None:
        """The server could not replay the log (resync, or a cursor ahead of the log):
        continue from `head`, forgetting everything seen."""
        self._cursor = head
        self._received = head
        self._seen.clear()
        self._unhanded.clear()
        self._unhanded_set.clear()
        self._overflow_from = None

    def _advance(self) -> None:
        new = self._cursor
        limit = self._received
        if self._unhanded:
            limit = min(limit, self._unhanded[0] - 1)
        new = max(new, limit)
        seen, unhanded = self._seen, self._unhanded_set
        while (new + 1) in seen and (new + 1) not in unhanded:
            new += 1
        if new > self._cursor:
            self._cursor = new
            if self._received < new:
                self._received = new
            self._seen = {s for s in seen if s > new}


# --------------------------------------------------------------------------- routing


class Verdict(Enum):
    """What the client does with one update it received."""

    DUPLICATE = "duplicate"  # seen before or below the cursor: ignore
    OWN_SEND = "own_send"  # an entry of a send this device still awaits: resolve it
    UNKNOWN_KIND = "unknown_kind"  # nothing to show: mark handled
    DELIVER = "deliver"  # give it to the application


# Update kinds without a message that the client turns into events (READ, CONTACT, WALLET).
DATA_KINDS = frozenset(
    int(k)
    for k in (
        UpdateKind.READ,
        UpdateKind.CONTACT,
        UpdateKind.WALLET,
        UpdateKind.CHANNEL,
        UpdateKind.CALLBACK,  # the bots' (SPEC.md 26)
        UpdateKind.CALLBACK_ANSWER,
        UpdateKind.MESSAGE_EDITED,
    )
)


def classify_update(
    update: Update, tracker: CursorTracker, me: str | None, pending_cmids: Container[str]
) -> Verdict:
    """Decide an update's fate without changing anything (the client applies the verdict).

    An entry written by this account whose cmid belongs to a send still in flight on this
    device is the answer to that send (the SENT frame was lost with a connection): it
    resolves the send instead of being shown as an incoming message (a group timeline event
    never does: its cmid is empty). READ and CONTACT
    entries are delivered like messages (as ReadReceipt and ContactEvent); kinds this
    client does not know are skipped but still counted by the cursor.
    """
    if not tracker.is_new(update.seq):
        return Verdict.DUPLICATE
    msg = update.message
    if msg is None:
        return Verdict.DELIVER if update.kind in DATA_KINDS else Verdict.UNKNOWN_KIND
    if me is not None and msg.sender == me and msg.event is None and msg.cmid in pending_cmids:
        return Verdict.OWN_SEND
    return Verdict.DELIVER
