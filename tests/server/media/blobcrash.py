"""One upload into a blob store, in a child process that the crash tests kill.

    python blobcrash.py ROOT point K     SIGKILL itself just before the K-th disk operation
    python blobcrash.py ROOT stream      write steadily, reporting progress, until killed

Prints "begun" once the partial exists, "chunk I" after each chunk, "finishing" before the
finish and "finished OK CREATED" after it, each line flushed, so the parent knows how far
the upload had come when it died.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from liaotian.server.media.blobs import BlobStore
from mediafixtures import content

UPLOAD_ID = "crash"
POINT = {"size": 3 * 16384 + 100, "chunk": 16384, "sync_every": 16384}
STREAM = {"size": 48 * 65536, "chunk": 65536, "sync_every": 4 * 65536}
DISK_OPS = ("pwrite", "write", "fsync", "fdatasync", "rename", "unlink", "ftruncate", "mkdir")


def die_at(k: int) -> None:
    """Make the K-th call of any disk operation kill the process before it runs."""
    count = [0]

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        def op(*args: Any, **kwargs: Any) -> Any:
            count[0] += 1
            if count[0] == k:
                os.kill(os.getpid(), signal.SIGKILL)
            return fn(*args, **kwargs)

        return op

    for name in DISK_OPS:
        setattr(os, name, wrap(getattr(os, name)))


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main() -> None:
    root, how = sys.argv[1], sys.argv[2]
    shape = POINT if how == "point" else STREAM
    if how == "point":
        die_at(int(sys.argv[3]))
    data = content(shape["size"])
    store = BlobStore(os.path.join(root, "media"), sync_every=shape["sync_every"])
    store.open()
    partial = store.create_partial(
        UPLOAD_ID,
        size=len(data),
        sha256=hashlib.sha256(data).digest(),
        chunk_size=shape["chunk"],
        created_ms=1,
    )
    say("begun")
    chunk = shape["chunk"]
    for i, offset in enumerate(range(0, len(data), chunk)):
        partial.write(offset, data[offset : offset + chunk])
        say(f"chunk {i}")
    say("finishing")
    done = partial.finish()
    say(f"finished {done.ok} {done.created}")


if __name__ == "__main__":
    main()
