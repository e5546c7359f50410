"""Media under crashes (issue 12, item 7): a real server process is SIGKILLed twice while
uploads and downloads run (and chat goes on), then started again on the same port and
database. The clients (the client library, reconnecting by themselves) must finish every
upload and download with the right bytes, no partial blob may ever be visible, no
referenced blob may be lost, and the database must pass its integrity check."""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import io
import os
import sys
from pathlib import Path
from typing import Any

from liaotian.client import Backoff, Client, MediaRef, MessageReceived, register
from liaotian.protocol.media import UploadDone

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"
WAIT = 60.0
MIB = 1024 * 1024


def _soak() -> Any:
    spec = importlib.util.spec_from_file_location("crash_soak", REPO / "scripts" / "crash_soak.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("crash_soak", module)  # its dataclasses look themselves up
    spec.loader.exec_module(module)
    return sys.modules["crash_soak"]


def content(n: int, seed: int) -> bytes:
    out = bytearray()
    block = hashlib.sha256(seed.to_bytes(4, "big")).digest()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block * 64
    return bytes(out[:n])


def client(port: int, user: str) -> Client:
    return Client(
        "127.0.0.1",
        port,
        username=user,
        password=PASSWORD,
        backoff=Backoff(base=0.05, cap=0.5),
        request_timeout=WAIT,
    )


def stored_blobs(media_dir: Path) -> dict[str, bytes]:
    """Every complete blob on disk, by name; each must hash to its name."""
    out = {}
    for root, _dirs, files in os.walk(media_dir / "blobs"):
        for name in files:
            data = (Path(root) / name).read_bytes()
            assert hashlib.sha256(data).hexdigest() == name, f"blob {name} is not its hash"
            out[name] = data
    return out


async def test_sigkill_during_uploads_and_downloads(tmp_path: Path) -> None:
    soak = _soak()
    db = str(tmp_path / "media.db")
    srv = soak.ServerProcess(
        db,
        soak.free_port(),
        env={
            "LIAOTIAN_REGISTER_RATE": "1000",
            "LIAOTIAN_REGISTER_BURST": "1000",
            "LIAOTIAN_MEDIA_SYNC_EVERY": str(MIB),
        },
    )
    await srv.start()
    kills: list[int | None] = []
    try:
        for name in ("alice", "bob"):
            await register("127.0.0.1", srv.port, name, PASSWORD)
        uploads = [content(3 * MIB + 1234 * i, seed=i) for i in range(3)]
        shared = content(4 * MIB, seed=9)
        half = asyncio.Event()

        async def crash_when(event: asyncio.Event) -> None:
            await event.wait()
            kills.append(await srv.kill())
            await srv.start()

        def at_half(total_goal: int) -> Any:
            def progress(done: int, total: int) -> None:
                if done >= total_goal:
                    half.set()

            return progress

        async with client(srv.port, "alice") as alice, client(srv.port, "bob") as bob:
            # a blob shared before the crashes: bob downloads it while the server dies
            first = await alice.media.upload(io.BytesIO(shared))
            await alice.media.send("bob", MediaRef.file(first, "shared.bin"))
            async with asyncio.timeout(WAIT):
                async for ev in bob:
                    if isinstance(ev, MessageReceived) and ev.message.media is not None:
                        break
            # crash 1: in the middle of three uploads, with chat going on
            crasher = asyncio.ensure_future(crash_when(half))
            chat = [asyncio.ensure_future(bob.send("alice", f"note {i}")) for i in range(20)]
            results = await asyncio.wait_for(
                asyncio.gather(
                    *[
                        alice.media.upload(
                            io.BytesIO(data),
                            window=2,
                            progress=at_half(int(1.5 * MIB)) if i == 0 else None,
                        )
                        for i, data in enumerate(uploads)
                    ]
                ),
                WAIT,
            )
            await asyncio.wait_for(crasher, WAIT)
            done: list[UploadDone] = list(results)
            assert [d.blob for d in done] == [hashlib.sha256(d).digest() for d in uploads]
            sent = await asyncio.wait_for(asyncio.gather(*chat), WAIT)
            assert len({s.id for s in sent}) == 20  # each note stored once
            # crash 2: in the middle of bob's download of the shared blob
            half.clear()
            crasher = asyncio.ensure_future(crash_when(half))
            out = io.BytesIO()
            await asyncio.wait_for(
                bob.media.download(first, out, window=2, progress=at_half(2 * MIB)), WAIT
            )
            await asyncio.wait_for(crasher, WAIT)
            assert out.getvalue() == shared
            # the uploads are whole blobs: sendable, readable by the recipient
            for d in done:
                await alice.media.send("bob", MediaRef.file(d))
            for d, data in zip(done, uploads, strict=True):
                got = io.BytesIO()
                await bob.media.download(d, got)
                assert got.getvalue() == data
    finally:
        rc = await srv.terminate() if srv.running else None
    assert kills == [-9, -9]
    assert rc == 0
    media = Path(db + ".media")
    blobs = stored_blobs(media)
    for data in (shared, *uploads):
        assert hashlib.sha256(data).hexdigest() in blobs  # no referenced blob lost
    assert os.listdir(media / "partial") == []  # every upload finished
    assert soak.integrity_check(db) == "ok"
