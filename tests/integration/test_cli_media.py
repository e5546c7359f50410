"""Two CLI users exchange a photo, a voice note, a file and a clipped song track (issue 12,
"done when"): `send-*`, `history` and `listen` show them readably, `download` saves them;
a `download` goes on after the server process is killed in the middle of it."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import sys
from pathlib import Path
from typing import Any

from cliproc import CLI
from liaotian.server.testing import run_server
from mediaclient import content, png, wav

REPO = Path(__file__).resolve().parents[2]

PASSWORD = "correct horse battery"


async def test_two_cli_users_exchange_media(tmp_path: Path) -> None:
    (tmp_path / "srv").mkdir()
    async with run_server(tmp_path / "srv") as srv:
        env = {"LIAOTIAN_PASSWORD": PASSWORD}
        alice = CLI(srv.host, srv.port, tmp_path / "alice", **env)
        bob = CLI(srv.host, srv.port, tmp_path / "bob", **env)
        for cli, name in ((alice, "alice"), (bob, "bob")):
            assert (await cli.run("register", name))[0] == 0
            assert (await cli.run("login", name))[0] == 0
        listener = await bob.start("listen", "--unread", "0")
        files = alice.home
        (files / "beach.png").write_bytes(png(1200, 800))
        (files / "memo.wav").write_bytes(wav(3.0, rate=4000))
        (files / "notes.txt").write_bytes(content(700_000, seed=4))
        (files / "song.wav").write_bytes(wav(100.0, rate=2000))
        (files / "art.png").write_bytes(png(200, 200, seed=3))
        for args in (
            ("send-image", "bob", "beach.png", "--text", "the beach"),
            ("send-voice", "bob", "memo.wav"),
            ("send-file", "bob", "notes.txt"),
            (
                "send-track",
                "bob",
                "song.wav",
                "--title",
                "Moon River",
                "--artist",
                "Audrey",
                "--clip",
                "0:30-1:00",
                "--cover",
                "art.png",
            ),
        ):
            code, out, err = await alice.run(*args)
            assert code == 0, (args, out, err)
            assert out.startswith("sent #")
        code, out, err = await alice.run("send-track", "bob", "song.wav", "--clip", "90-120")
        assert code == 1 and "BAD_CLIP" in err
        for line in (
            "[image 1200x800 beach.png] the beach (#1)",
            "[voice 0:03] (#2)",
            "[file notes.txt, 683.6 KiB] (#3)",
            "[track Moon River - Audrey (0:30-1:00 of 1:40)] (#4)",
        ):
            await listener.wait_for(line)
        await listener.interrupt()
        code, out, _ = await bob.run("history", "alice")
        assert code == 0
        assert "#1 " in out and "alice -> bob: [image 1200x800 beach.png] the beach" in out
        assert "[track Moon River - Audrey (0:30-1:00 of 1:40)]" in out
        # downloads: by message position, to the sender's file name or a path given
        code, out, err = await bob.run("download", "--with", "alice", "--pos", "3")
        assert code == 0, err
        assert (bob.home / "notes.txt").read_bytes() == (files / "notes.txt").read_bytes()
        code, out, err = await bob.run("download", "--with", "alice", "--pos", "3")
        assert code == 2 and "exists" in err  # never overwrites by a name the sender chose
        code, _, err = await bob.run("download", "--with", "alice", "--pos", "1", "b.png")
        assert code == 0 and (bob.home / "b.png").read_bytes() == (files / "beach.png").read_bytes()
        code, _, err = await bob.run(
            "download", "--with", "alice", "--pos", "1", "--thumb", "t.jpg"
        )
        assert code == 0 and (bob.home / "t.jpg").read_bytes()[:3] == b"\xff\xd8\xff"
        code, _, err = await bob.run("download", "--with", "alice", "--pos", "4", "s.wav")
        assert code == 0 and (bob.home / "s.wav").read_bytes() == (files / "song.wav").read_bytes()
        code, _, err = await bob.run("download", "--with", "alice", "--pos", "2", "v.wav")
        assert code == 0 and (bob.home / "v.wav").read_bytes() == (files / "memo.wav").read_bytes()
        code, _, err = await bob.run("download", "00" * 32, "x.bin")
        assert code == 1 and "UNKNOWN_BLOB" in err


def _soak() -> Any:
    """scripts/crash_soak.py: its ServerProcess runs the server as a process of its own."""
    spec = importlib.util.spec_from_file_location("crash_soak", REPO / "scripts" / "crash_soak.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("crash_soak", module)  # its dataclasses look themselves up
    spec.loader.exec_module(module)
    return sys.modules["crash_soak"]


async def _grown(path: Path, at_least: int, proc: Any) -> int:
    """Wait until the file holds `at_least` bytes (the download is under way)."""
    async with asyncio.timeout(60):
        while True:
            n = path.stat().st_size if path.exists() else 0
            if n >= at_least:
                return n
            assert proc.proc.returncode is None, (proc.out, proc.err)
            await asyncio.sleep(0.002)


async def test_a_cli_download_resumes_after_the_server_is_killed(tmp_path: Path) -> None:
    """`liaotian download` of a 48 MiB file: the server process is SIGKILLed while the
    download is under way (the CLI is paused right then, so the kill lands in the middle
    whatever the machine's speed) and started again; the same command finishes from the
    bytes it had, with the right file."""
    soak = _soak()
    srv = soak.ServerProcess(str(tmp_path / "media.db"), soak.free_port())
    await srv.start()
    try:
        env = {"LIAOTIAN_PASSWORD": PASSWORD}
        alice = CLI("127.0.0.1", srv.port, tmp_path / "alice", **env)
        bob = CLI("127.0.0.1", srv.port, tmp_path / "bob", **env)
        for cli, name in ((alice, "alice"), (bob, "bob")):
            assert (await cli.run("register", name))[0] == 0
            assert (await cli.run("login", name))[0] == 0
        data = content(48 << 20, seed=7)
        (alice.home / "big.bin").write_bytes(data)
        code, out, err = await alice.run("send-file", "bob", "big.bin")
        assert code == 0, (out, err)
        dl = await bob.start("download", "--with", "alice", "--pos", "1", "got.bin")
        part = bob.home / "got.bin.part"
        await _grown(part, 1 << 20, dl)
        os.kill(dl.proc.pid, signal.SIGSTOP)  # the download stands still mid-way
        try:
            had = part.stat().st_size
            assert 0 < had < len(data)
            assert await srv.kill() == -9
            await srv.start()
        finally:
            os.kill(dl.proc.pid, signal.SIGCONT)
        assert await dl.finish(timeout=120) == 0, (dl.out, dl.err)
        assert dl.out[-1] == f"saved {len(data)} bytes to got.bin"
        assert (bob.home / "got.bin").read_bytes() == data
        assert not part.exists()
    finally:
        if srv.running:
            await srv.terminate()
