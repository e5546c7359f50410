"""Run the `liaotian` CLI (and example scripts) as real processes against a test server.

Processes run with a temporary HOME (so sessions land in HOME/.config/liaotian, the
default place), the server's address in LIAOTIAN_HOST/LIAOTIAN_PORT and no inherited
LIAOTIAN_USER / XDG_CONFIG_HOME. They are started with asyncio's subprocess API so the
in-process server keeps running while a command waits for it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

WAIT = 30.0  # seconds: generous upper bound for one command or one expected line


class Proc:
    """A running process whose output lines are collected as they come."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.out: list[str] = []
        self.err: list[str] = []
        assert proc.stdout is not None and proc.stderr is not None
        self._readers = [
            asyncio.ensure_future(self._pump(proc.stdout, self.out)),
            asyncio.ensure_future(self._pump(proc.stderr, self.err)),
        ]
        self._changed = asyncio.Event()

    async def _pump(self, stream: asyncio.StreamReader, into: list[str]) -> None:
        while line := await stream.readline():
            into.append(line.decode(errors="replace").rstrip("\n"))
            self._changed.set()
        self._changed.set()

    async def wait_for(self, text: str, *, stderr: bool = False, timeout: float = WAIT) -> str:
        """The first line (stdout, or stderr) containing `text`, waiting for it."""
        lines = self.err if stderr else self.out
        async with asyncio.timeout(timeout):
            while True:
                for line in lines:
                    if text in line:
                        return line
                if all(r.done() for r in self._readers):  # both pipes closed: it ended
                    code = await self.proc.wait()
                    raise AssertionError(
                        f"process ended ({code}) without {text!r}: out={self.out} err={self.err}"
                    )
                self._changed.clear()
                await self._changed.wait()

    async def interrupt(self, timeout: float = WAIT) -> int:
        """SIGINT (Ctrl-C), then the exit status."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGINT)
        return await self.finish(timeout)

    async def finish(self, timeout: float = WAIT) -> int:
        async with asyncio.timeout(timeout):
            code = await self.proc.wait()
            await asyncio.gather(*self._readers)
        return code

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
        await self.proc.wait()
        for r in self._readers:
            r.cancel()


class CLI:
    """`liaotian ARGS...` as `python -m liaotian.client.cli ARGS...` in a clean environment."""

    def __init__(self, host: str, port: int, home: Path, **env: str) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.home = home
        self.env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("LIAOTIAN_USER", "LIAOTIAN_PASSWORD", "XDG_CONFIG_HOME")
        }
        self.env.update(
            {
                "HOME": str(home),
                "LIAOTIAN_HOST": host,
                "LIAOTIAN_PORT": str(port),
                "PYTHONUNBUFFERED": "1",
                **env,
            }
        )

    @property
    def config_dir(self) -> Path:
        return self.home / ".config" / "liaotian"

    async def start(self, *args: str, argv0: Sequence[str] | None = None) -> Proc:
        cmd = list(argv0) if argv0 is not None else [sys.executable, "-m", "liaotian.client.cli"]
        proc = await asyncio.create_subprocess_exec(
            *cmd,
            *args,
            env=self.env,
            cwd=self.home,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return Proc(proc)

    async def run(self, *args: str, argv0: Sequence[str] | None = None) -> tuple[int, str, str]:
        p = await self.start(*args, argv0=argv0)
        code = await p.finish()
        return code, "\n".join(p.out), "\n".join(p.err)
