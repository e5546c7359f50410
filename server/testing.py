"""Run a real server inside a test: its own temporary database, an ephemeral port.

    async with run_server(tmp_path) as srv:
        ... connect to srv.host, srv.port ...
        await srv.restart()   # graceful stop and start on the same port and database

Password hashing is made cheap (argon2 time_cost=1, 8 MiB) so tests stay fast, and
registration is not throttled per address (every test registers its users from 127.0.0.1);
every other setting is the production default unless overridden.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from .app import Server
from .config import Config

TEST_SETTINGS: dict[str, Any] = {
    "host": "127.0.0.1",
    "port": 0,
    "argon2_time_cost": 1,
    "argon2_memory_kib": 8192,
    "argon2_parallelism": 1,
    "shutdown_grace": 5.0,
    "register_rate": 1000.0,
    "register_burst": 1000.0,
}


class RunningServer:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.server: Server | None = None
        self.host = config.host
        self.port = config.port

    async def start(self) -> None:
        self.server = Server(self.config)
        await self.server.start()
        self.port = self.server.port
        self.config = self.config.with_overrides({"port": self.port})

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.shutdown()
            self.server = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()


@asynccontextmanager
async def run_server(
    tmp_path: os.PathLike[str] | str, **overrides: Any
) -> AsyncIterator[RunningServer]:
    settings = {
        **TEST_SETTINGS,
        "db_path": os.path.join(os.fspath(tmp_path), "liaotian.db"),
        **overrides,
    }
    srv = RunningServer(Config().with_overrides(settings))
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()
