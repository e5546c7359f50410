"""Media figures for the bench JSON (issue 12), measured against the bench's own server
after the other phases:

* `media_upload_mib_per_s`: one client uploads a blob of `size_mib` (64 MiB by default)
  in chunks of the server's largest size, 4 in flight, from UPLOAD_BEGIN to UPLOAD_DONE
  (durable); the client's hashing beforehand is not counted (reported apart);
* `media_download_mib_per_s`: the same blob downloaded in ranges, 4 in flight, hashed and
  written (to memory) as it arrives, the SHA-256 checked at the end;
* `media_dedup_upload_ms`: the same uploader sending the same content again: UPLOAD_BEGIN
  answered UPLOAD_DONE (one round trip and one indexed read, no bytes). `details` also
  has `dedup_upload_with_hash_ms`, the whole `client.media.upload()` of the same bytes
  again, which hashes them first;
* `chat_p99_ms_under_media`: the runner's 1:1 latency phase while `uploaders` clients
  (a process of their own, `python -m bench.media load ...`) each upload `load_mib` MiB
  blobs one after the other; to compare with the same run's `latency_ms_p99`.

The ceilings the issue asks for, measured in this process on the same bytes (`details`):
`ceiling_sha256_write_mib_per_s`, SHA-256 + write of every chunk to a file (what a
download does at least), and `ceiling_sha256_write_fsync_mib_per_s`, the same with one
fsync at the end (what a durable upload does at least), with each transfer's ratio to its
ceiling. Each figure of the first three is the median of `runs` transfers of fresh content.

    python -m bench.media HOST PORT [--size-mib 64] [--runs 3]      # the transfer figures
    python -m bench.media load HOST PORT --clients 20 --size-mib 5   # the background load
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import io
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from liaotian.client import Client, register
from liaotian.protocol import Message
from liaotian.protocol.media import UploadBegin, UploadDone

__all__ = ["MediaLoad", "ceiling_mib_per_s", "transfers"]

MIB = 1024 * 1024
PASSWORD = "bench media password"


def _data(size: int) -> bytes:
    """Fresh content of `size` bytes (no two runs share a blob: no deduplication)."""
    seed = secrets.token_bytes(32)
    block = hashlib.sha256(seed).digest() * 2048  # 64 KiB
    out = bytearray()
    i = 0
    while len(out) < size:
        out += block
        out[-8:] = i.to_bytes(8, "big")
        i += 1
    return bytes(out[:size])


def ceiling_mib_per_s(data: bytes, chunk: int = 512 * 1024, *, fsync: bool = True) -> float:
    """SHA-256 + pwrite of every chunk (+ one fsync): what a transfer does at least."""
    with tempfile.NamedTemporaryFile(prefix="liaotian-ceiling-") as f:
        view = memoryview(data)
        t0 = time.perf_counter()
        h = hashlib.sha256()
        for off in range(0, len(data), chunk):
            part = view[off : off + chunk]
            h.update(part)
            os.pwrite(f.fileno(), part, off)
        if fsync:
            os.fsync(f.fileno())
        return len(data) / MIB / (time.perf_counter() - t0)


async def _client(host: str, port: int, user: str) -> Client:
    with contextlib.suppress(Exception):  # it exists (a second run against one server)
        await register(host, port, user, PASSWORD)
    c = Client(host, port, username=user, password=PASSWORD, request_timeout=120.0)
    return await c.start()


async def transfers(host: str, port: int, *, size_mib: int = 64, runs: int = 3) -> dict[str, Any]:
    """The upload, download and dedup figures (see the module text)."""
    size = size_mib * MIB
    up: list[float] = []
    down: list[float] = []
    dedup: list[float] = []
    hashing: list[float] = []
    ceilings: list[float] = []
    plain: list[float] = []  # the ceiling without the fsync
    rehash: list[float] = []
    user = f"mb{secrets.token_hex(5)}"
    client = await _client(host, port, user)
    try:
        media = client.media
        chunk = int(media.limits().get("max_chunk_size", 512 * 1024))
        for _ in range(runs):
            data = _data(size)
            t0 = time.perf_counter()
            sha = hashlib.sha256(data).digest()
            hashing.append(time.perf_counter() - t0)
            ceilings.append(ceiling_mib_per_s(data, chunk))
            plain.append(ceiling_mib_per_s(data, chunk, fsync=False))
            reader = _Memory(data)
            t0 = time.perf_counter()
            done = await media._upload_once(
                reader, sha, size, "application/octet-stream", "bench.bin", None, 4, None
            )  # type: ignore[arg-type]
            up.append(size / MIB / (time.perf_counter() - t0))
            assert done.blob == sha
            out = io.BytesIO()
            t0 = time.perf_counter()
            await media.download(done, out, window=4)
            down.append(size / MIB / (time.perf_counter() - t0))
            assert out.getbuffer().nbytes == size
            for _ in range(5):
                t0 = time.perf_counter()
                again = await media._ask(
                    UploadBegin(
                        rid=0,
                        size=size,
                        sha256=sha,
                        media_type="application/octet-stream",
                        chunk_size=chunk,
                    ),
                    Message,
                    retry=True,
                )
                dedup.append((time.perf_counter() - t0) * 1000)
                assert isinstance(again, UploadDone)
            t0 = time.perf_counter()
            again = await media.upload(io.BytesIO(data), media_type="application/octet-stream")
            rehash.append((time.perf_counter() - t0) * 1000)
            assert again.blob == sha
    finally:
        await client.close()
    ceiling = statistics.median(ceilings)
    ceiling_plain = statistics.median(plain)
    upload = statistics.median(up)
    download = statistics.median(down)
    return {
        "media_upload_mib_per_s": round(upload, 1),
        "media_download_mib_per_s": round(download, 1),
        "media_dedup_upload_ms": round(statistics.median(dedup), 3),
        "details": {
            "size_mib": size_mib,
            "runs": runs,
            "chunk_size": chunk,
            "window": 4,
            "upload_mib_per_s": [round(x, 1) for x in up],
            "download_mib_per_s": [round(x, 1) for x in down],
            "dedup_ms": [round(x, 3) for x in dedup],
            "client_sha256_s": [round(x, 3) for x in hashing],
            "dedup_upload_with_hash_ms": [round(x, 1) for x in rehash],
            "ceiling_sha256_write_fsync_mib_per_s": round(ceiling, 1),
            "ceiling_sha256_write_mib_per_s": round(ceiling_plain, 1),
            "upload_ratio_to_ceiling": round(upload / ceiling, 3) if ceiling else None,
            "download_ratio_to_ceiling": (
                round(download / ceiling_plain, 3) if ceiling_plain else None
            ),
        },
    }


class _Memory:
    """client/media.py's reader over bytes in memory (the bench holds the blob)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.name = "bench.bin"

    async def read(self, offset: int, n: int) -> bytes:
        return self.data[offset : offset + n]


# ---------------------------------------------------------------------- background load


async def _load(host: str, port: int, clients: int, size_mib: int) -> None:
    """`clients` users each upload fresh `size_mib` blobs, one after the other, until
    SIGTERM; then print one JSON line: uploads completed, MiB and seconds, errors."""
    size = size_mib * MIB
    users = [await _client(host, port, f"ml{secrets.token_hex(5)}") for _ in range(clients)]
    blobs = [_data(size) for _ in range(2)]
    stats = {"uploads": 0, "errors": 0}
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("uploading", flush=True)
    t0 = time.monotonic()

    async def one(c: Client, k: int) -> None:
        n = 0
        while not stop.is_set():
            data = blobs[(k + n) % 2][:-8] + secrets.token_bytes(8)  # fresh content
            sha = hashlib.sha256(data).digest()
            try:
                await c.media._upload_once(
                    _Memory(data),  # type: ignore[arg-type]
                    sha,
                    size,
                    "application/octet-stream",
                    "load.bin",
                    None,
                    2,
                    None,
                )
            except Exception:  # counted and reported: a load that stopped is no load
                stats["errors"] += 1
                await asyncio.sleep(0.1)
            else:
                stats["uploads"] += 1
            n += 1

    tasks = [asyncio.ensure_future(one(c, k)) for k, c in enumerate(users)]
    await stop.wait()
    seconds = time.monotonic() - t0
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    print(
        json.dumps(
            {
                **stats,
                "clients": clients,
                "mib": stats["uploads"] * size_mib,
                "seconds": round(seconds, 3),
                "mib_per_s": round(stats["uploads"] * size_mib / seconds, 1) if seconds else 0.0,
            }
        ),
        flush=True,
    )


class MediaLoad:
    """The background media load in a process of its own (started, then stopped)."""

    def __init__(self, host: str, port: int, clients: int = 20, size_mib: int = 5) -> None:
        self.args = [
            sys.executable,
            "-m",
            "bench.media",
            "load",
            host,
            str(port),
            "--clients",
            str(clients),
            "--size-mib",
            str(size_mib),
        ]
        self.proc: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 120.0) -> None:
        self.proc = subprocess.Popen(
            self.args, stdout=subprocess.PIPE, text=True, start_new_session=True
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = self.proc.stdout.readline()  # "uploading" once every client is logged in
        if "uploading" not in line or time.monotonic() > deadline:
            self.stop()
            raise RuntimeError(f"media load did not start: {line!r}")

    def stop(self) -> dict[str, Any]:
        """Stop it; what it did while it ran (uploads, MiB/s, errors; `died` if it had
        ended by itself, which would make the phase a measure without load)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return {}
        died = proc.poll() is not None
        if not died:
            os.killpg(proc.pid, signal.SIGTERM)  # its own group: the process and nothing else
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        out: dict[str, Any] = {"died": died}
        if proc.stdout is not None:
            for line in proc.stdout.read().splitlines():
                with contextlib.suppress(ValueError):
                    out.update(json.loads(line))
            proc.stdout.close()
        return out


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="python -m bench.media")
    load = bool(args) and args[0] == "load"
    if load:
        args = args[1:]
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--size-mib", type=int, default=5 if load else 64)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--clients", type=int, default=20)
    a = p.parse_args(args)
    if load:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_load(a.host, a.port, a.clients, a.size_mib))  # until SIGTERM
        return 0
    print(
        json.dumps(
            asyncio.run(transfers(a.host, a.port, size_mib=a.size_mib, runs=a.runs)), indent=2
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
