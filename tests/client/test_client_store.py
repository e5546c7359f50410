"""Session stores: FileStore round-trips atomically (temp file + os.replace)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from liaotian.client.cursor import FileStore, MemoryStore, SessionState, SessionStore


def test_memory_store_round_trip() -> None:
    store = MemoryStore()
    assert store.load() == SessionState()
    state = SessionState(username="alice", device="d1", token="t", cursor=7)
    store.save(state)
    assert store.load() == state
    assert isinstance(store, SessionStore)


def test_file_store_missing_file_is_empty(tmp_path: Path) -> None:
    assert FileStore(tmp_path / "nope.json").load() == SessionState()


def test_file_store_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "dir" / "session.json"
    store = FileStore(path)
    state = SessionState(
        username="alice",
        device="laptop",
        token="secret",
        cursor=42,
        extra={"host": "127.0.0.1", "port": 7420},
    )
    store.save(state)
    assert FileStore(path).load() == state
    data = json.loads(path.read_text())
    assert data["token"] == "secret" and data["cursor"] == 42 and data["version"] == 1
    # Overwrite: the new content wins, no temporary files are left behind.
    store.save(state.with_changes(cursor=43, token=None))
    again = FileStore(path).load()
    assert again.cursor == 43 and again.token is None and again.username == "alice"
    assert sorted(p.name for p in path.parent.iterdir()) == ["session.json"]
    assert isinstance(store, SessionStore)


def test_file_store_is_private(tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "session.json"
    FileStore(path).save(SessionState(token="secret"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_file_store_writes_through_os_replace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file is never written in place: a new file is renamed over the old one."""
    path = tmp_path / "session.json"
    store = FileStore(path)
    store.save(SessionState(cursor=1))
    calls: list[tuple[str, str]] = []
    real_replace = os.replace

    def spy(src: str, dst: str) -> None:
        calls.append((os.fspath(src), os.fspath(dst)))
        # At the moment of the rename the target still holds the old, complete state.
        assert json.loads(Path(dst).read_text())["cursor"] == 1
        assert json.loads(Path(src).read_text())["cursor"] == 2
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    store.save(SessionState(cursor=2))
    assert len(calls) == 1
    src, dst = calls[0]
    assert dst == os.fspath(path)
    assert Path(src).parent == path.parent and src != dst
    assert FileStore(path).load().cursor == 2


def test_failed_write_keeps_the_old_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "session.json"
    store = FileStore(path)
    store.save(SessionState(token="old", cursor=5))

    def crash(src: str, dst: str) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk on fire"):
        store.save(SessionState(token="new", cursor=6))
    monkeypatch.undo()
    assert FileStore(path).load() == SessionState(token="old", cursor=5)
    assert [p.name for p in tmp_path.iterdir()] == ["session.json"]  # temp file removed


def test_corrupt_file_is_an_error_not_a_fresh_start(tmp_path: Path) -> None:
    path = tmp_path / "session.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="unreadable"):
        FileStore(path).load()
    path.write_text(json.dumps({"cursor": "seven"}))
    with pytest.raises(ValueError):
        FileStore(path).load()
    path.write_text(json.dumps({"cursor": -1}))
    with pytest.raises(ValueError):
        FileStore(path).load()


def test_unknown_keys_and_missing_keys_are_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "session.json"
    path.write_text(json.dumps({"token": "t", "future_field": [1, 2]}))
    assert FileStore(path).load() == SessionState(token="t")


def test_clear_removes_the_file(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "s.json")
    store.save(SessionState(token="t"))
    store.clear()
    store.clear()  # idempotent
    assert store.load() == SessionState()


def test_an_older_login_never_replaces_a_newer_one(tmp_path: Path) -> None:
    """Issue 11 item 11: a process still holding an earlier login (a running `listen`) saves
    its cursor after another process logged in again: the newer session stays."""
    path = tmp_path / "session.json"
    first = SessionState(username="alice", device="cli", token="t1", cursor=3).new_login()
    FileStore(path).save(first)
    listener = FileStore(path)
    running = listener.load()
    assert running == first
    newer = SessionState(username="alice", device="laptop", token="t2").new_login(running)
    assert newer.login > running.login
    FileStore(path).save(newer)
    listener.save(running.with_changes(cursor=9))  # refused: the file holds a newer login
    assert FileStore(path).load() == newer
    assert listener.skipped == 1
    listener.save(running.with_changes(cursor=10))
    assert listener.skipped == 2 and FileStore(path).load() == newer
    # the same generation (the same login's later cursor) and newer ones are written
    FileStore(path).save(newer.with_changes(cursor=5))
    assert FileStore(path).load().cursor == 5
    assert json.loads(path.read_text())["login"] == newer.login


def test_generations_increase_even_if_the_clock_goes_back(tmp_path: Path) -> None:
    future = SessionState(login=2**62)
    assert SessionState().new_login(future).login == 2**62 + 1
    assert future.new_login().login == 2**62 + 1
    assert SessionState.from_json({"version": 1}).login == 0  # files written before
