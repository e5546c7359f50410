"""ReadAhead: a download's ranges read `count` at a time, the next window read while the
client takes this one; anything it cannot answer is read as asked."""

from __future__ import annotations

import asyncio

from liaotian.server.media.readahead import ReadAhead

BLOB = bytes(range(256)) * 40  # 10,240 bytes
SHA = b"s" * 32


class Disk:
    def __init__(self, blob: bytes = BLOB) -> None:
        self.blob = blob
        self.calls: list[tuple[int, int, int]] = []

    async def read_many(self, sha: bytes, offset: int, length: int, count: int) -> list[bytes]:
        assert sha == SHA
        self.calls.append((offset, length, count))
        await asyncio.sleep(0)
        out = []
        for k in range(count):
            at = offset + k * length
            if k and at >= len(self.blob):
                break
            out.append(self.blob[at : at + length])
        return out


async def download(ahead: ReadAhead, key: object, step: int, window: int) -> bytes:
    """What the client does: `window` ranges in flight, in order."""
    size = len(BLOB)
    offsets = list(range(0, size, step))
    got: dict[int, bytes] = {}
    for i in range(0, len(offsets), window):
        batch = offsets[i : i + window]
        parts = await asyncio.gather(
            *(ahead.read(key, SHA, o, min(step, size - o), size) for o in batch)
        )
        got.update(zip(batch, parts, strict=True))
    return b"".join(got[o] for o in offsets)


async def test_a_download_takes_a_quarter_of_the_hops() -> None:
    disk = Disk()
    ahead = ReadAhead(disk.read_many, count=4)
    assert await download(ahead, 1, 512, 4) == BLOB
    assert len(disk.calls) <= 6  # 20 ranges: 5 windows (and no more than one extra)
    assert all(count == 4 for _o, _n, count in disk.calls)
    assert ahead._held == 0  # every window taken whole is let go


async def test_two_connections_do_not_share_windows() -> None:
    disk = Disk()
    ahead = ReadAhead(disk.read_many, count=4)
    a, b = await asyncio.gather(download(ahead, "a", 1024, 4), download(ahead, "b", 1024, 2))
    assert a == b == BLOB


async def test_a_range_asked_again_or_out_of_step_is_read_as_asked() -> None:
    disk = Disk()
    ahead = ReadAhead(disk.read_many, count=4)
    assert await ahead.read(1, SHA, 0, 100, len(BLOB)) == BLOB[:100]
    assert await ahead.read(1, SHA, 0, 100, len(BLOB)) == BLOB[:100]  # a retry
    assert await ahead.read(1, SHA, 150, 100, len(BLOB)) == BLOB[150:250]  # not on a step
    assert await ahead.read(1, SHA, 250, 7, len(BLOB)) == BLOB[250:257]  # another length
    assert [c[0] for c in disk.calls] == [0, 0, 150, 250]


async def test_held_bytes_stay_under_the_bound() -> None:
    disk = Disk()
    ahead = ReadAhead(disk.read_many, count=4, max_bytes=4 * 512)
    for key in range(10):  # ten connections that each read one range and go away
        assert await ahead.read(key, SHA, 0, 512, len(BLOB)) == BLOB[:512]
        assert ahead._held <= 4 * 512 or len(ahead._windows) == 1
    ahead.forget(9)
    assert ahead._held == 0


async def test_the_end_of_the_blob_and_a_failed_read() -> None:
    disk = Disk(BLOB[:1000])
    ahead = ReadAhead(disk.read_many, count=4)
    assert await ahead.read(1, SHA, 768, 232, 1000) == BLOB[768:1000]  # the last range

    async def broken(sha: bytes, offset: int, length: int, count: int) -> list[bytes]:
        raise FileNotFoundError("collected")

    gone = ReadAhead(broken, count=4)
    for _ in range(2):
        try:
            await gone.read(1, SHA, 0, 100, 1000)
        except FileNotFoundError:
            pass
        else:
            raise AssertionError("the read's error is the request's")
