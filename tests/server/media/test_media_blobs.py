"""The blob store on a real temporary directory: layout and modes, verified atomic
completion, dedup of stored content, ranged reads, journal recovery (torn tails, lost
unsynced records), removal, expiry, the free-disk floor."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from liaotian.server.media import blobs as blobs_mod
from liaotian.server.media.blobs import BlobStore, Partial
from liaotian.server.media.errors import (
    BlobError,
    CorruptPartial,
    StorageFull,
    UnknownPartial,
)
from liaotian.server.media.ranges import RangeSet

CHUNK = 16 * 1024


def content(n: int, seed: int = 1) -> bytes:
    out = bytearray()
    block = hashlib.sha256(seed.to_bytes(4, "big")).digest()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:n])


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def mode(path: str | Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def store(tmp_path: Path, umask_022: None) -> Iterator[BlobStore]:
    s = BlobStore(tmp_path / "media", sync_every=2 * CHUNK)
    s.open()
    yield s
    for upload_id in s.open_partial_ids():
        s.close_partial(upload_id)


def begin(
    store: BlobStore,
    data: bytes,
    upload_id: str = "up1",
    digest: bytes | None = None,
) -> Partial:
    return store.create_partial(
        upload_id, size=len(data), sha256=digest or sha(data), chunk_size=CHUNK, created_ms=1000
    )


def send(p: Partial, data: bytes, order: list[int] | None = None) -> None:
    starts = list(range(0, len(data), CHUNK))
    for i in order if order is not None else range(len(starts)):
        p.write(starts[i], data[starts[i] : starts[i] + CHUNK])


def listing(root: str) -> list[str]:
    return sorted(str(Path(d, f).relative_to(root)) for d, _, fs in os.walk(root) for f in fs)


def test_layout_and_modes(store: BlobStore) -> None:
    data = content(3 * CHUNK + 5)
    p = begin(store, data)
    part = Path(store.partial_dir, "up1.part")
    assert mode(part) == 0o600 and mode(Path(store.partial_dir, "up1.jnl")) == 0o600
    assert part.stat().st_size == len(data)  # sized at once, sparse
    send(p, data)
    done = p.finish()
    assert done.ok and done.created and done.size == len(data)
    h = sha(data).hex()
    path = Path(store.blob_dir, h[:2], h[2:4], h)
    assert path.read_bytes() == data
    assert store.blob_path(sha(data)) == str(path)
    assert mode(path) == 0o600
    for d in (store.root, store.blob_dir, store.partial_dir, path.parent, path.parent.parent):
        assert mode(d) == 0o700
    assert os.listdir(store.partial_dir) == []  # partial and journal gone
    assert p.closed and store.open_partial_ids() == []


def test_open_needs_the_parent_directory(tmp_path: Path) -> None:
    with pytest.raises(BlobError):
        BlobStore(tmp_path / "missing" / "media").open()
    s = BlobStore(tmp_path / "media")
    s.open()
    os.chmod(s.blob_dir, 0o755)
    s.open()  # idempotent, and puts the mode back
    assert mode(s.blob_dir) == 0o700


def test_chunks_out_of_order_are_verified_from_the_file(store: BlobStore) -> None:
    data = content(5 * CHUNK)
    p = begin(store, data)
    send(p, data, order=[4, 2, 0, 1, 3])
    assert p.finish().ok
    assert store.read(sha(data), 0, len(data)) == data


def test_a_wrong_hash_stores_nothing(store: BlobStore) -> None:
    data = content(2 * CHUNK)
    p = begin(store, data, digest=sha(b"something else"))
    send(p, data)
    done = p.finish()
    assert not done.ok and not done.created
    assert listing(store.root) == []
    with pytest.raises(UnknownPartial):
        store.open_partial("up1")


def test_content_already_stored_is_kept_once(store: BlobStore) -> None:
    data = content(2 * CHUNK + 1)
    first = begin(store, data, "a")
    send(first, data)
    assert first.finish().created
    second = begin(store, data, "b")  # another uploader sends every byte
    send(second, data)
    done = second.finish()
    assert done.ok and not done.created
    h = sha(data).hex()
    assert listing(store.root) == [f"blobs/{h[:2]}/{h[2:4]}/{h}"]


def test_a_damaged_stored_copy_is_replaced_by_a_verified_upload(store: BlobStore) -> None:
    data = content(CHUNK)
    p = begin(store, data, "a")
    send(p, data)
    p.finish()
    Path(store.blob_path(sha(data))).write_bytes(data[:10])  # truncated on disk
    p = begin(store, data, "b")
    send(p, data)
    assert p.finish().created
    assert store.verify_blob(sha(data))


def test_writes_are_checked(store: BlobStore) -> None:
    data = content(2 * CHUNK)
    p = begin(store, data)
    with pytest.raises(BlobError):
        p.write(len(data) - 1, b"xy")  # past the end
    with pytest.raises(BlobError):
        p.write(-1, b"x")
    p.write(0, data[:CHUNK])
    with pytest.raises(BlobError):
        p.write(CHUNK // 2, data[:CHUNK])  # overlaps held bytes
    p.write(CHUNK, b"")  # nothing to write
    with pytest.raises(BlobError):
        p.finish()  # not every byte held
    p.close()
    with pytest.raises(BlobError):
        p.write(CHUNK, data[CHUNK:])


def test_ids_and_arguments_are_validated(store: BlobStore) -> None:
    for bad in ("", "../x", "a/b", "x" * 65, "a.b"):
        with pytest.raises(ValueError):
            store.create_partial(bad, size=1, sha256=sha(b"x"), chunk_size=CHUNK, created_ms=0)
    with pytest.raises(ValueError):
        store.create_partial("ok", size=1, sha256=b"short", chunk_size=CHUNK, created_ms=0)
    with pytest.raises(ValueError):
        store.create_partial("ok", size=-1, sha256=sha(b"x"), chunk_size=CHUNK, created_ms=0)
    with pytest.raises(UnknownPartial):
        store.open_partial("never")
    begin(store, b"x", "dup")
    with pytest.raises(FileExistsError):
        begin(store, b"x", "dup")
    assert store.partial_ids() == ["dup"]  # the first one's files were left alone


def test_empty_blob(store: BlobStore) -> None:
    p = begin(store, b"")
    done = p.finish()
    assert done.ok and done.created
    assert store.read(sha(b""), 0, 10) == b""


def test_ranged_reads(store: BlobStore) -> None:
    data = content(3 * CHUNK + 7)
    p = begin(store, data)
    send(p, data)
    p.finish()
    h = sha(data)
    assert store.read(h, 0, 100) == data[:100]
    assert store.read(h, CHUNK - 3, CHUNK) == data[CHUNK - 3 : 2 * CHUNK - 3]
    assert store.read(h, len(data) - 5, 100) == data[-5:]
    assert store.read(h, len(data), 100) == b""
    with store.open_blob(h) as reader:
        assert reader.size == len(data)
        assert b"".join(reader.read(o, 1000) for o in range(0, len(data), 1000)) == data
        with pytest.raises(ValueError):
            reader.read(len(data) + 1, 1)
        with pytest.raises(ValueError):
            reader.read(-1, 1)
    with pytest.raises(FileNotFoundError):
        store.read(sha(b"absent"), 0, 1)


def test_close_and_reopen_resumes_with_the_held_ranges(store: BlobStore) -> None:
    data = content(6 * CHUNK)
    p = begin(store, data)
    send(p, data, order=[0, 1, 4])
    p.close()
    assert store.open_partial_ids() == []
    fresh = BlobStore(store.root, sync_every=store.sync_every)  # a restarted server
    again = fresh.open_partial("up1").partial
    assert again is not None
    assert again.held == RangeSet([(0, 2 * CHUNK), (4 * CHUNK, 5 * CHUNK)])
    assert (again.size, again.sha256, again.chunk_size, again.created_ms) == (
        len(data),
        sha(data),
        CHUNK,
        1000,
    )
    for i in (2, 3, 5):
        again.write(i * CHUNK, data[i * CHUNK : (i + 1) * CHUNK])
    assert again.finish().ok
    assert fresh.read(sha(data), 0, len(data)) == data


def test_open_partial_returns_the_partial_already_open(store: BlobStore) -> None:
    p = begin(store, content(CHUNK))
    assert store.open_partial("up1").partial is p


def test_unsynced_writes_are_not_claimed_after_a_crash(store: BlobStore) -> None:
    data = content(5 * CHUNK)
    p = begin(store, data)  # sync_every is two chunks
    send(p, data, order=[0, 1, 2])
    assert p.durable == RangeSet([(0, 2 * CHUNK)])
    assert p.held == RangeSet([(0, 3 * CHUNK)])
    # the process dies here: no close(); a new process reads the journal
    recovered = BlobStore(store.root).open_partial("up1").partial
    assert recovered is not None and recovered.held == RangeSet([(0, 2 * CHUNK)])
    recovered.close()
    p.sync()
    assert p.durable == p.held
    recovered = BlobStore(store.root).open_partial("up1").partial
    assert recovered is not None and recovered.held == RangeSet([(0, 3 * CHUNK)])
    recovered.close()


def test_a_torn_journal_tail_is_cut_off(store: BlobStore) -> None:
    data = content(4 * CHUNK)
    p = begin(store, data)
    send(p, data, order=[0, 1])
    p.close()
    jnl = Path(store.partial_dir, "up1.jnl")
    good = jnl.stat().st_size
    with open(jnl, "ab") as f:
        f.write(b"\x00\x01\x02")  # half a record
    again = BlobStore(store.root, sync_every=1).open_partial("up1").partial
    assert again is not None and again.held == RangeSet([(0, 2 * CHUNK)])
    assert jnl.stat().st_size == good  # cut, so the next record follows a valid one
    again.write(2 * CHUNK, data[2 * CHUNK : 3 * CHUNK])
    again.close()
    third = BlobStore(store.root).open_partial("up1").partial
    assert third is not None and third.held == RangeSet([(0, 3 * CHUNK)])
    third.close()


def test_a_record_with_a_bad_checksum_ends_the_journal(store: BlobStore) -> None:
    data = content(4 * CHUNK)
    p = begin(store, data)
    p.write(0, data[:CHUNK])
    p.sync()
    p.write(2 * CHUNK, data[2 * CHUNK : 3 * CHUNK])
    p.close()
    jnl = Path(store.partial_dir, "up1.jnl")
    raw = bytearray(jnl.read_bytes())
    raw[-1] ^= 0xFF  # the second record's CRC
    jnl.write_bytes(bytes(raw))
    again = BlobStore(store.root).open_partial("up1").partial
    assert again is not None and again.held == RangeSet([(0, CHUNK)])
    again.close()


def test_a_torn_header_is_a_begin_that_never_completed(store: BlobStore) -> None:
    p = begin(store, content(CHUNK))
    p.close()
    jnl = Path(store.partial_dir, "up1.jnl")
    jnl.write_bytes(jnl.read_bytes()[:20])
    with pytest.raises(CorruptPartial):
        BlobStore(store.root).open_partial("up1")
    store.abort_partial("up1")
    assert store.partial_ids() == []


def test_a_header_with_a_bad_checksum_is_refused(store: BlobStore) -> None:
    p = begin(store, content(CHUNK))
    p.close()
    jnl = Path(store.partial_dir, "up1.jnl")
    raw = bytearray(jnl.read_bytes())
    raw[10] ^= 0x01
    jnl.write_bytes(bytes(raw))
    with pytest.raises(CorruptPartial):
        BlobStore(store.root).open_partial("up1")


def test_journal_without_partial_file_means_the_upload_completed(store: BlobStore) -> None:
    data = content(2 * CHUNK)
    p = begin(store, data)
    send(p, data)
    p.close()
    jnl = Path(store.partial_dir, "up1.jnl")
    saved = jnl.read_bytes()
    p = BlobStore(store.root).open_partial("up1").partial
    assert p is not None
    assert p.finish().ok
    jnl.write_bytes(saved)  # as if the process died between the rename and the unlink
    found = BlobStore(store.root).open_partial("up1")
    assert found.partial is None and found.finished is not None and found.finished.ok
    assert not jnl.exists()  # tidied once re-verified


def test_journal_without_partial_or_blob_starts_over(store: BlobStore) -> None:
    data = content(2 * CHUNK)
    p = begin(store, data)
    send(p, data)
    p.close()
    os.unlink(Path(store.partial_dir, "up1.part"))  # lost by hand: no blob either
    found = store.open_partial("up1")
    assert found.partial is not None and found.partial.held == RangeSet()
    send(found.partial, data)
    assert found.partial.finish().ok


def test_remove_iterate_and_verify_blobs(store: BlobStore) -> None:
    stored = []
    for i in range(3):
        data = content(CHUNK + i, seed=i)
        p = begin(store, data, f"u{i}")
        send(p, data)
        p.finish()
        stored.append((sha(data), len(data)))
    infos = list(store.iter_blobs())
    assert sorted((b.sha256, b.size) for b in infos) == sorted(stored)
    h, _ = stored[0]
    assert store.verify_blob(h)
    path = Path(store.blob_path(h))
    raw = bytearray(path.read_bytes())
    raw[0] ^= 1
    path.write_bytes(bytes(raw))
    assert not store.verify_blob(h)
    assert store.remove_blob(h)
    assert not store.remove_blob(h)
    assert not store.verify_blob(h)
    assert store.blob_size(h) is None and store.blob_size(stored[1][0]) == stored[1][1]
    Path(store.blob_dir, "stray").write_text("x")  # not a fan-out directory: skipped
    assert len(list(store.iter_blobs())) == 2


def test_expiry_removes_idle_partials_but_not_open_ones(store: BlobStore) -> None:
    old = begin(store, content(CHUNK), "old")
    old.close()
    fresh = begin(store, content(CHUNK), "fresh")
    fresh.close()
    busy = begin(store, content(CHUNK), "busy")  # open in this process
    now = 2_000_000_000.0
    for upload_id in ("old", "busy"):
        for ext in ("part", "jnl"):
            os.utime(Path(store.partial_dir, f"{upload_id}.{ext}"), (now - 90_000,) * 2)
    for ext in ("part", "jnl"):
        os.utime(Path(store.partial_dir, f"fresh.{ext}"), (now - 100,) * 2)
    assert store.expire_partials(now, 86_400) == ["old"]
    assert store.partial_ids() == ["busy", "fresh"]
    busy.close()
    assert store.expire_partials(now, 86_400) == ["busy"]


def test_partial_ids_ignore_strays(store: BlobStore) -> None:
    begin(store, b"x", "a").close()
    Path(store.partial_dir, "notes.txt").write_text("x")
    Path(store.partial_dir, "b.part").write_bytes(b"")  # a begin that died before its journal
    assert store.partial_ids() == ["a", "b"]
    with pytest.raises(UnknownPartial):
        store.open_partial("b")
    store.abort_partial("b")
    assert store.partial_ids() == ["a"]


def test_free_disk_floor(store: BlobStore) -> None:
    free = store.free_bytes()
    assert free > 0
    store.free_floor = free + 1
    assert not store.has_room(0)
    with pytest.raises(StorageFull):
        begin(store, b"x")
    assert store.partial_ids() == []
    store.free_floor = 0
    assert store.has_room(1)


def test_disk_full_while_writing_is_storage_full(
    store: BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = begin(store, content(CHUNK))

    def full(*args: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(blobs_mod.os, "pwrite", full)
    with pytest.raises(StorageFull):
        p.write(0, content(CHUNK))
    assert p.held == RangeSet()
