"""Micro-benchmark of the message codec on the server's hot path: old vs new, one process.

    python bench/codec_micro.py [--ref b58cbd1] [--repeat 9] [--time 0.2]

Run by hand (no test runs it). The old protocol/ is read from git (`git show REF:protocol/…`)
into a temporary directory and imported as the package `oldproto`, next to the installed
liaotian.protocol; each case builds the same message with each package's own classes.
Old and new alternate within every repeat, so drift hits both alike; the table shows the
median ns per operation over the repeats, and new/old.

decode = decode_message(type, rid, payload, limits) on a payload as unpack_body returns it
(the body's msgpack decoding is the same code in both and is left out); encode = the
message's encode(), the complete frame.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import subprocess
import sys
import tempfile
import timeit
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import msgpack

ROOT = Path(__file__).resolve().parent.parent


def load_old(ref: str, into: Path) -> ModuleType:
    """protocol/ at git revision `ref`, imported as the package `oldproto`."""
    names = subprocess.run(
        ["git", "ls-tree", "--name-only", ref, "protocol/"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    pkg = into / "oldproto"
    pkg.mkdir()
    for name in names:
        if name.endswith(".py"):
            src = subprocess.run(
                ["git", "show", f"{ref}:{name}"], cwd=ROOT, check=True, capture_output=True
            ).stdout
            (pkg / Path(name).name).write_bytes(src)
    sys.path.insert(0, str(into))
    return importlib.import_module("oldproto")


def cases(p: ModuleType) -> dict[str, Callable[[], Any]]:
    """The operations, built with one protocol package `p`."""
    limits = p.DEFAULT_LIMITS
    decode = p.decode_message
    send = msgpack.unpackb(
        msgpack.packb({"to": "bob", "cmid": "c-0001", "text": "hello there, how are you?"})
    )
    send_meta = {**send, "meta": {"reply_to": 17}}
    ack = {"seq": 123456}
    sent = p.Sent(
        rid=12,
        id=987654,
        conv=4321,
        pos=77,
        ts=1_700_000_000_123,
        seq=123457,
        cmid="c-0001",
        duplicate=False,
    )

    def chat(i: int) -> Any:
        return p.ChatMessage(
            id=1000 + i,
            conv=4321,
            pos=70 + i,
            sender="alice",
            to="bob",
            ts=1_700_000_000_000 + i,
            cmid=f"c-{i:04}",
            text="hello there, how are you?",
        )

    updates1 = p.Updates(rid=0, updates=(p.Update(seq=500, kind=1, message=chat(0)),), head=500)
    updates10 = p.Updates(
        rid=0,
        head=509,
        updates=tuple(p.Update(seq=500 + i, kind=1, message=chat(i)) for i in range(10)),
    )
    updates10_wire = msgpack.unpackb(updates10.encode()[4:])[2]
    return {
        "decode SEND": lambda: decode(30, 5, send, limits),
        "decode SEND with meta": lambda: decode(30, 5, send_meta, limits),
        "decode ACK": lambda: decode(34, 0, ack, limits),
        "encode SENT": sent.encode,
        "encode UPDATES, 1 update": updates1.encode,
        "encode UPDATES, 10 updates": updates10.encode,
        "decode UPDATES, 10 updates": lambda: decode(33, 0, updates10_wire, limits),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--ref", default="b58cbd1", help="git revision of the old codec")
    ap.add_argument("--repeat", type=int, default=9, help="repeats per case (median shown)")
    ap.add_argument(
        "--time",
        type=float,
        default=0.2,
        metavar="S",
        help="seconds per measurement (each repeat, each side)",
    )
    args = ap.parse_args()

    import liaotian.protocol as new

    with tempfile.TemporaryDirectory(prefix="codec-micro-") as tmp:
        old = load_old(args.ref, Path(tmp))
        old_cases, new_cases = cases(old), cases(new)
        for name in old_cases:  # same bytes and the same decoded values, or the comparison lies
            a, b = old_cases[name](), new_cases[name]()
            same = a == b if isinstance(a, bytes) else repr(a) == repr(b)
            if not same:
                raise SystemExit(f"{name}: old and new disagree:\n{a!r}\n{b!r}")
        print(
            f"old = {args.ref} (hand-written codecs), new = this tree (compiled codec); "
            f"median of {args.repeat} repeats, Python {sys.version.split()[0]}"
        )
        print(f"{'operation':30} {'old ns/op':>10} {'new ns/op':>10} {'new/old':>8}")
        for name in old_cases:
            timers = {"old": timeit.Timer(old_cases[name]), "new": timeit.Timer(new_cases[name])}
            number = max(1, int(args.time / timers["old"].timeit(1000) * 1000))
            runs: dict[str, list[float]] = {"old": [], "new": []}
            for _ in range(args.repeat):
                for side, timer in timers.items():
                    runs[side].append(timer.timeit(number) / number * 1e9)
            o, n = statistics.median(runs["old"]), statistics.median(runs["new"])
            print(f"{name:30} {o:10.0f} {n:10.0f} {n / o:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
