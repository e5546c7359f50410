"""SIGKILL during an upload, then a restart: the upload is found either complete (the blob
re-verified) or resumable (the ranges its journal names hold the right bytes), and resuming
it stores exactly the right blob; nothing partial is ever under blobs/.

One child process per disk operation of a small upload dies just before that operation
(every crash point of begin, chunks, syncs and finish), and a steadily writing child is
killed from outside at moments the test does not choose.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from liaotian.server.media.blobs import BlobStore
from liaotian.server.media.errors import CorruptPartial, UnknownPartial

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from blobcrash import POINT, STREAM, UPLOAD_ID  # noqa: E402
from mediafixtures import content  # noqa: E402

SCRIPT = str(HERE / "blobcrash.py")


def child(root: Path, *args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(HERE))
    return subprocess.Popen(
        [sys.executable, SCRIPT, str(root), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def blob_files(store: BlobStore) -> list[Path]:
    return [Path(d, f) for d, _, fs in os.walk(store.blob_dir) for f in fs]


def recover_and_resume(root: Path, data: bytes, chunk: int, said: list[str]) -> str:
    """Check what a restarted store finds, resume to the end; say which case it was."""
    store = BlobStore(root / "media")
    store.open()
    digest = hashlib.sha256(data).digest()
    for path in blob_files(store):  # only ever a complete, verified blob
        assert path.name == digest.hex() and path.read_bytes() == data
    try:
        found = store.open_partial(UPLOAD_ID)
    except (UnknownPartial, CorruptPartial):
        assert "begun" not in said, said  # an acknowledged begin is never lost
        store.abort_partial(UPLOAD_ID)
        assert store.partial_ids() == [] and blob_files(store) == []
        return "not begun"
    if found.finished is not None:
        assert found.finished.ok and found.partial is None
        case = "complete"
    else:
        partial = found.partial
        assert partial is not None
        raw = Path(store.partial_dir, f"{UPLOAD_ID}.part").read_bytes()
        for start, end in partial.held:  # what the journal claims is really there
            assert raw[start:end] == data[start:end]
        for start, end in partial.held.missing(len(data)):
            for offset in range(start, end, chunk):
                partial.write(offset, data[offset : min(offset + chunk, end)])
        done = partial.finish()
        assert done.ok
        case = "resumed"
    assert store.partial_ids() == []
    assert [p.name for p in blob_files(store)] == [digest.hex()]
    assert store.verify_blob(digest)
    return case


def test_sigkill_before_every_disk_operation(tmp_path: Path) -> None:
    data = content(POINT["size"])
    seen: dict[str, int] = {}
    for k in range(1, 200):
        root = tmp_path / f"k{k}"
        root.mkdir()
        proc = child(root, "point", str(k))
        out, err = proc.communicate(timeout=60)
        said = out.splitlines()
        if proc.returncode == 0:  # k is past the last operation: the upload went through
            assert said[-1] == "finished True True", (said, err)
            break
        assert proc.returncode == -signal.SIGKILL, err
        case = recover_and_resume(root, data, POINT["chunk"], said)
        seen[case] = seen.get(case, 0) + 1
    else:
        pytest.fail("the upload never completed")
    # every phase was hit: before the begin was durable, mid-upload, and after the rename
    assert set(seen) == {"not begun", "resumed", "complete"}, seen
    assert k > 20, k


@pytest.mark.parametrize("kill_after", ["chunk 3", "chunk 17", "chunk 30", "finishing"])
def test_sigkill_from_outside_while_writing(tmp_path: Path, kill_after: str) -> None:
    data = content(STREAM["size"])
    proc = child(tmp_path, "stream")
    said: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        said.append(line.strip())
        if said[-1] == kill_after:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    proc.stdout.close()
    assert proc.stderr is not None
    proc.stderr.close()
    case = recover_and_resume(tmp_path, data, STREAM["chunk"], said)
    assert case in ("resumed", "complete")
