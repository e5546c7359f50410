"""The upload rules, sans I/O: begin (limits, budgets, dedup without a cross-user oracle),
chunks, finish, reads. No files, no event loop, time passed in."""

from __future__ import annotations

import hashlib

import pytest
from liaotian.server.media.errors import MediaError, Refusal
from liaotian.server.media.limits import KIB, MIB, MediaLimits, chunk_ceiling
from liaotian.server.media.ranges import RangeSet
from liaotian.server.media.uploads import (
    DAY_MS,
    AlreadyStored,
    BeginRequest,
    ByteBudget,
    ChunkPlan,
    FinishPlan,
    ResumeUpload,
    StartUpload,
    Upload,
    UploaderState,
    UploadPhase,
    UploadRecord,
    check_read,
    plan_begin,
)

LIMITS = MediaLimits()
FRAME = 1 * MIB
NOW = 1_700_000_000_000
SHA = hashlib.sha256(b"content").digest()
FREE = 100 * 1024 * MIB


def request(size: int = 3 * MIB, chunk: int = 512 * KIB, **kw: object) -> BeginRequest:
    fields: dict[str, object] = {
        "size": size,
        "sha256": SHA,
        "media_type": "image/jpeg",
        "file_name": "photo.jpg",
        "chunk_size": chunk,
    }
    fields.update(kw)
    return BeginRequest(**fields)


def state(
    *,
    before: bool = False,
    open_upload: UploadRecord | None = None,
    active: int = 0,
    budget: ByteBudget | None = None,
) -> UploaderState:
    return UploaderState(
        before, open_upload, active, budget or ByteBudget.full(LIMITS.upload_bytes_per_day, NOW)
    )


def begin(
    req: BeginRequest,
    st: UploaderState,
    *,
    frame: int = FRAME,
    free: int = FREE,
    limits: MediaLimits = LIMITS,
) -> object:
    return plan_begin(req, st, limits=limits, frame_size=frame, now_ms=NOW, free_disk=free)


def refused(plan: object, code: MediaError) -> Refusal:
    assert isinstance(plan, Refusal), plan
    assert plan.code is code, plan
    return plan


def record(size: int = 3 * MIB, chunk: int = 512 * KIB) -> UploadRecord:
    return UploadRecord("u1", "alice", size, SHA, "image/jpeg", "photo.jpg", chunk, NOW, NOW)


# -- begin


def test_a_new_upload_starts_and_is_charged_its_size() -> None:
    plan = begin(request(), state())
    assert isinstance(plan, StartUpload)
    assert plan.chunk_size == 512 * KIB and plan.size == 3 * MIB
    assert plan.budget.available(NOW) == LIMITS.upload_bytes_per_day - 3 * MIB
    rec = plan.record("u9", "alice", NOW)
    assert (rec.upload_id, rec.owner, rec.created_ms, rec.touched_ms) == ("u9", "alice", NOW, NOW)


@pytest.mark.parametrize(
    "req, field",
    [
        (request(sha256=b"\x00" * 31), "sha256"),
        (request(size=-1), "size"),
        (request(media_type="image"), "media_type"),
        (request(media_type="Image/JPEG"), "media_type"),
        (request(media_type="image/jpeg; q=1"), "media_type"),
        (request(media_type="a/" + "b" * 200), "media_type"),
        (request(file_name="a\x1b[2Jb.jpg"), "file_name"),
        (request(file_name="x\u202egpj.exe"), "file_name"),
        (request(file_name="../etc/passwd"), "file_name"),
        (request(file_name="a\\b"), "file_name"),
        (request(file_name=".."), "file_name"),
        (request(file_name="n" * 256), "file_name"),
    ],
)
def test_malformed_begin_is_refused_naming_the_field(req: BeginRequest, field: str) -> None:
    r = refused(begin(req, state()), MediaError.INVALID_REQUEST)
    assert r.message.startswith(field)


def test_the_same_uploader_gets_stored_content_without_sending_it() -> None:
    # decided by the user's own history, before any bound of a new upload applies
    spent = ByteBudget(LIMITS.upload_bytes_per_day, 0.0, NOW)
    plan = begin(
        request(size=LIMITS.max_blob_size), state(before=True, active=99, budget=spent), free=0
    )
    assert plan == AlreadyStored(SHA, LIMITS.max_blob_size)


def test_content_the_user_never_uploaded_must_be_sent_in_full() -> None:
    # the rules take no input about other users' blobs: whether the hash is stored by
    # someone else cannot change the plan (no "does this hash exist" oracle)
    assert "stored" not in " ".join(UploaderState.__dataclass_fields__)
    assert isinstance(begin(request(), state(before=False)), StartUpload)


def test_an_unfinished_upload_of_the_same_content_is_resumed_with_its_chunk_size() -> None:
    rec = record(chunk=64 * KIB)
    spent = ByteBudget(LIMITS.upload_bytes_per_day, 0.0, NOW)
    plan = begin(
        request(chunk=512 * KIB),
        state(open_upload=rec, budget=spent, active=LIMITS.max_uploads_per_user),
    )
    assert plan == ResumeUpload(rec)  # not charged again, not counted against the bound


def test_largest_blob() -> None:
    assert isinstance(begin(request(size=LIMITS.max_blob_size), state()), StartUpload)
    r = refused(begin(request(size=LIMITS.max_blob_size + 1), state()), MediaError.BLOB_TOO_LARGE)
    assert r.data == {"limit": "max_blob_size", "max": LIMITS.max_blob_size}


@pytest.mark.parametrize("chunk", [0, 3 * KIB, 8 * KIB, 48 * KIB, 1 * MIB])
def test_chunk_size_must_be_a_power_of_two_in_range(chunk: int) -> None:
    r = refused(begin(request(chunk=chunk), state()), MediaError.BAD_CHUNK_SIZE)
    assert r.data == {"min": 16 * KIB, "max": 512 * KIB}


def test_chunk_size_must_fit_the_negotiated_frame_size() -> None:
    # a 64 KiB frame: chunk + frame overhead must fit, so 32 KiB is the largest
    assert isinstance(begin(request(chunk=32 * KIB), state(), frame=64 * KIB), StartUpload)
    r = refused(begin(request(chunk=64 * KIB), state(), frame=64 * KIB), MediaError.BAD_CHUNK_SIZE)
    assert r.data["max"] == 32 * KIB
    # a frame too small for any chunk: no upload at all
    r = refused(begin(request(chunk=16 * KIB), state(), frame=16 * KIB), MediaError.BAD_CHUNK_SIZE)
    assert r.data["max"] == 0


def test_too_many_chunks() -> None:
    limits = MediaLimits(max_chunks=4)
    assert isinstance(
        begin(request(size=64 * KIB, chunk=16 * KIB), state(), limits=limits), StartUpload
    )
    refused(
        begin(request(size=64 * KIB + 1, chunk=16 * KIB), state(), limits=limits),
        MediaError.BAD_CHUNK_SIZE,
    )


def test_concurrent_uploads_per_user() -> None:
    n = LIMITS.max_uploads_per_user
    assert isinstance(begin(request(), state(active=n - 1)), StartUpload)
    r = refused(begin(request(), state(active=n)), MediaError.TOO_MANY_UPLOADS)
    assert r.data == {"limit": "max_uploads", "max": n}


def test_daily_budget_says_when_to_retry() -> None:
    cap = LIMITS.upload_bytes_per_day
    budget = ByteBudget(cap, float(1 * MIB), NOW)
    r = refused(begin(request(size=3 * MIB), state(budget=budget)), MediaError.QUOTA_EXCEEDED)
    # 2 MiB short; a day's capacity comes back over 24 h
    assert r.retry_after == pytest.approx(2 * MIB / cap * 86400)
    assert r.data == {"limit": "upload_bytes_per_day", "max": cap}


def test_free_disk_floor() -> None:
    floor = LIMITS.free_disk_floor
    assert isinstance(begin(request(size=MIB), state(), free=floor + MIB), StartUpload)
    refused(
        begin(request(size=MIB), state(), free=floor + MIB - 1), MediaError.INSUFFICIENT_STORAGE
    )


def test_empty_blob_is_allowed() -> None:
    plan = begin(request(size=0, sha256=hashlib.sha256(b"").digest()), state())
    assert isinstance(plan, StartUpload)
    up = Upload(plan.record("u0", "alice", NOW))
    refused(up.check_chunk(0, 0), MediaError.CHUNK_OUT_OF_RANGE)
    assert up.check_finish() is FinishPlan.VERIFY


# -- budgets


def test_budget_refills_evenly_and_never_above_capacity() -> None:
    b = ByteBudget.full(1000, NOW, period_ms=1000)
    after = b.take(600, NOW)
    assert isinstance(after, ByteBudget) and after.available(NOW) == 400
    assert after.available(NOW + 300) == pytest.approx(700)
    assert after.available(NOW + 10_000) == 1000
    assert after.take(500, NOW) == pytest.approx(0.1)  # 100 short at 1000 per second
    assert b.take(1001, NOW) == float("inf")
    assert b.available(NOW - 5) == 1000  # a clock going back does not add or take
    assert ByteBudget.full(5, NOW).period_ms == DAY_MS


# -- chunks


def test_chunks_are_checked_against_the_declared_size_and_chunk_size() -> None:
    size, cs = 3 * MIB + 100, 512 * KIB
    up = Upload(record(size=size, chunk=cs))
    assert up.check_chunk(0, cs) is ChunkPlan.WRITE
    assert up.check_chunk(6 * cs, 100) is ChunkPlan.WRITE  # the short last chunk
    refused(up.check_chunk(size, 1), MediaError.CHUNK_OUT_OF_RANGE)
    refused(up.check_chunk(-cs, cs), MediaError.CHUNK_OUT_OF_RANGE)
    refused(up.check_chunk(100, cs), MediaError.CHUNK_MISALIGNED)
    r = refused(up.check_chunk(cs, cs // 2), MediaError.CHUNK_SIZE_MISMATCH)  # size changed
    assert r.data == {"chunk_size": cs, "expected": cs}
    refused(up.check_chunk(cs, cs + 1), MediaError.CHUNK_SIZE_MISMATCH)
    refused(up.check_chunk(6 * cs, 101), MediaError.TOO_MANY_BYTES)  # more than declared
    refused(up.check_chunk(6 * cs, 99), MediaError.CHUNK_SIZE_MISMATCH)


def test_a_held_chunk_is_acknowledged_not_rewritten() -> None:
    up = Upload(record())
    up.chunk_written(0, 512 * KIB, NOW + 5)
    assert up.check_chunk(0, 512 * KIB) is ChunkPlan.DUPLICATE
    assert up.record.touched_ms == NOW + 5
    up.chunk_written(512 * KIB, 512 * KIB, NOW + 1)  # an older clock never moves it back
    assert up.record.touched_ms == NOW + 5


def test_a_corrupt_partial_overlap_is_refused() -> None:
    up = Upload(record(), RangeSet([(100, 200)]))
    refused(up.check_chunk(0, 512 * KIB), MediaError.CHUNK_MISALIGNED)


def test_status_lists_held_ranges_and_expiry() -> None:
    up = Upload(record(), RangeSet([(0, 1 * MIB), (2 * MIB, 3 * MIB)]))
    s = up.status(LIMITS)
    assert s.held == ((0, 1 * MIB), (2 * MIB, 3 * MIB))
    assert (s.upload_id, s.size, s.chunk_size) == ("u1", 3 * MIB, 512 * KIB)
    assert s.expires_ms == NOW + 24 * 3600 * 1000
    assert up.missing() == [(1 * MIB, 2 * MIB)]
    assert not up.expired(s.expires_ms - 1, LIMITS) and up.expired(s.expires_ms, LIMITS)


# -- finish


def test_finish_needs_every_byte_and_names_the_gaps() -> None:
    up = Upload(record(), RangeSet([(0, 1 * MIB)]))
    r = refused(up.check_finish(), MediaError.UPLOAD_INCOMPLETE)
    assert r.data == {"missing": [[1 * MIB, 3 * MIB]], "more": False}
    assert up.phase is UploadPhase.RECEIVING


def test_finish_lists_at_most_64_gaps() -> None:
    size, cs = 200 * 16 * KIB, 16 * KIB
    held = RangeSet((i * cs, (i + 1) * cs) for i in range(0, 200, 2))
    up = Upload(record(size=size, chunk=cs), held)
    r = refused(up.check_finish(), MediaError.UPLOAD_INCOMPLETE)
    assert len(r.data["missing"]) == 64 and r.data["more"] is True


def test_verified_upload_completes_and_a_retried_finish_answers_again() -> None:
    up = Upload(record(), RangeSet([(0, 3 * MIB)]))
    assert up.check_finish() is FinishPlan.VERIFY
    assert up.phase is UploadPhase.FINISHING
    refused(up.check_chunk(0, 512 * KIB), MediaError.UPLOAD_NOT_RECEIVING)
    refused(up.check_finish(), MediaError.UPLOAD_NOT_RECEIVING)
    assert up.verified(True) is None
    assert up.phase is UploadPhase.COMPLETE
    assert up.check_finish() is FinishPlan.DONE
    assert not up.expired(NOW + 10 * DAY_MS, LIMITS)


def test_wrong_hash_fails_the_upload() -> None:
    up = Upload(record(), RangeSet([(0, 3 * MIB)]))
    up.check_finish()
    refused(up.verified(False), MediaError.HASH_MISMATCH)
    assert up.phase is UploadPhase.FAILED
    refused(up.check_chunk(0, 512 * KIB), MediaError.UPLOAD_NOT_RECEIVING)
    refused(up.check_finish(), MediaError.UPLOAD_NOT_RECEIVING)
    with pytest.raises(RuntimeError):
        up.verified(True)


def test_an_interrupted_verification_takes_chunks_again() -> None:
    up = Upload(record(), RangeSet([(0, 3 * MIB)]))
    up.check_finish()
    up.verify_interrupted()
    assert up.phase is UploadPhase.RECEIVING
    assert up.check_finish() is FinishPlan.VERIFY


# -- reads


def test_read_ranges() -> None:
    size = 1000
    assert check_read(0, 100, size, LIMITS, FRAME) == (0, 100)
    assert check_read(950, 100, size, LIMITS, FRAME) == (950, 50)  # cut at the end
    assert check_read(1000, 100, size, LIMITS, FRAME) == (1000, 0)  # done
    refused(check_read(1001, 1, size, LIMITS, FRAME), MediaError.BAD_RANGE)
    refused(check_read(-1, 1, size, LIMITS, FRAME), MediaError.BAD_RANGE)
    refused(check_read(0, 0, size, LIMITS, FRAME), MediaError.BAD_RANGE)
    refused(check_read(0, 512 * KIB + 1, size, LIMITS, FRAME), MediaError.BAD_RANGE)
    r = refused(check_read(0, 64 * KIB, size, LIMITS, 64 * KIB), MediaError.BAD_RANGE)
    assert r.data == {"max": 63 * KIB}  # the answer frame must fit


# -- limits


def test_chunk_ceiling_and_advertised_limits() -> None:
    assert chunk_ceiling(1 * MIB) == 512 * KIB
    assert chunk_ceiling(8 * MIB) == 4 * MIB
    assert chunk_ceiling(1024) == 0
    assert LIMITS.max_chunk_for(8 * MIB) == 512 * KIB  # capped by max_chunk_size
    adv = LIMITS.advertised(1 * MIB)
    assert adv["max_chunk_size"] == 512 * KIB and adv["max_blob_size"] == 100 * MIB
    assert adv["max_download_chunk"] == 512 * KIB and adv["max_uploads"] == 4


@pytest.mark.parametrize(
    "kw",
    [
        {"min_chunk_size": 3000},
        {"max_chunk_size": 3 * KIB},
        {"min_chunk_size": 64 * KIB, "max_chunk_size": 32 * KIB},
        {"max_blob_size": 2 * 1024 * MIB},
        {"max_download_chunk": 5 * 1024 * MIB},
        {"max_uploads_per_user": 0},
        {"free_disk_floor": -1},
        {"upload_ttl": 0},
    ],
)
def test_limits_are_validated(kw: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        MediaLimits(**kw)


def test_refusal_text_defaults_to_the_codes_explanation() -> None:
    assert Refusal(MediaError.HASH_MISMATCH).message == MediaError.HASH_MISMATCH.explanation
    assert Refusal(MediaError.BAD_RANGE).data == {}
    assert all(code.explanation for code in MediaError)
