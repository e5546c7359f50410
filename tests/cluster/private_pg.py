"""A PostgreSQL server of a test's own, to restart under load (the shared one at
127.0.0.1:5432 serves other tests and sessions: it is never stopped or restarted).

initdb into a new directory under /tmp, pg_ctl start on a free loopback port (TCP only,
its socket in its own directory), restart with `-m fast` or `-m immediate`, stop with
`-m immediate` and remove the directory. PostgreSQL refuses to run as root: as root the
programs run as the `postgres` account (runuser), which owns the directory.

`need_binaries()` skips the test, saying why, when the programs (LIAOTIAN_PG_BIN, default
/usr/lib/postgresql/15/bin) or, as root, the postgres account or runuser are missing.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from proxy import free_port

BIN = Path(os.environ.get("LIAOTIAN_PG_BIN", "/usr/lib/postgresql/15/bin"))
ACCOUNT = "postgres"  # who runs the server when the tests run as root


def need_binaries() -> None:
    for prog in ("initdb", "pg_ctl", "postgres"):
        if not (BIN / prog).exists():
            pytest.skip(f"PostgreSQL's {prog} is not in {BIN} (set LIAOTIAN_PG_BIN)")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(ACCOUNT)
        except KeyError:
            pytest.skip(f"running as root and there is no {ACCOUNT} account to run PostgreSQL")
        if shutil.which("runuser") is None:
            pytest.skip("running as root and runuser is missing (to run PostgreSQL)")


class PrivatePostgres:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="lt-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.started = False

    def _cmd(self, *args: str) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", ACCOUNT, "--", *args]
        return list(args)

    async def _run(self, *args: str) -> None:
        proc = await asyncio.create_subprocess_exec(
            *self._cmd(*args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        _, err = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({proc.returncode}): {err.decode()[-2000:]}")

    def _options(self) -> str:
        return (
            f"-p {self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={self.dir} -c max_connections=50"
        )

    async def start(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.dir, ACCOUNT)
        await self._run(
            str(BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
            "-E", "UTF8", "--no-sync",
        )  # fmt: skip
        await self._run(
            str(BIN / "pg_ctl"), "-D", str(self.data), "-o", self._options(),
            "-l", str(self.dir / "log"), "-w", "start",
        )  # fmt: skip
        self.started = True

    async def restart(self, mode: str) -> None:
        """pg_ctl restart -m `mode` (fast: sessions ended, a clean shutdown; immediate:
        every process killed, crash recovery on start)."""
        await self._run(
            str(BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-o", self._options(),
            "-l", str(self.dir / "log"), "-w", "restart",
        )  # fmt: skip

    async def close(self) -> None:
        try:
            if self.started:
                await self._run(
                    str(BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"
                )
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
