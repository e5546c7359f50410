"""Server processes of a cluster on loopback, for the cluster tests and the bench.

Each node is `python -m liaotian.server` on port 0 (the port is read from its
"listening on" log line), its own media directory, one PostgreSQL schema shared by all
nodes, NATS subjects under the test's own prefix. Nodes start one after the other: the
first migrates the schema, the others find it done.
"""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def metrics(port: int) -> dict[str, float]:
    """The node's Prometheus samples without labels: name -> value."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    body = (await asyncio.wait_for(reader.read(), 10.0)).decode()
    writer.close()
    out = {}
    for line in body.split("\r\n\r\n", 1)[-1].splitlines():
        name, _, value = line.partition(" ")
        if name and not name.startswith("#") and "{" not in name:
            out[name] = float(value)
    return out


_LISTENING = re.compile(rb"listening on [^ ]+:(\d+)")
START_TIMEOUT = 20.0


class NodeProcess:
    def __init__(self, name: str, args: list[str], log_path: Path) -> None:
        self.name = name
        self.args = args
        self.log_path = log_path
        self.proc: asyncio.subprocess.Process | None = None
        self.port = 0
        self.metrics_port = 0  # its Prometheus endpoint, if given one
        self._drain: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "liaotian.server",
            *self.args,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        assert self.proc.stderr is not None
        log = self.log_path.open("ab")
        try:
            async with asyncio.timeout(START_TIMEOUT):
                while True:
                    line = await self.proc.stderr.readline()
                    if not line:
                        raise RuntimeError(f"node {self.name} exited: see {self.log_path}")
                    log.write(line)
                    m = _LISTENING.search(line)
                    if m:
                        self.port = int(m.group(1))
                        break
        except BaseException:
            log.close()
            raise
        self._drain = asyncio.get_running_loop().create_task(self._keep_log(log))

    async def _keep_log(self, log: Any) -> None:
        """Keep reading its stderr (a full pipe would stall the node) into its log file."""
        assert self.proc is not None and self.proc.stderr is not None
        try:
            while line := await self.proc.stderr.readline():
                log.write(line)
                log.flush()
        finally:
            log.close()

    def kill(self) -> None:
        """SIGKILL: no shutdown, no last commit, no goodbye to clients."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)

    async def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 10.0)
            except TimeoutError:
                self.proc.send_signal(signal.SIGKILL)
                await self.proc.wait()
        if self._drain is not None:
            await asyncio.gather(self._drain, return_exceptions=True)


def node_args(
    name: str, tmp: Path, db_url: str, nats_url: str, prefix: str, **settings: Any
) -> list[str]:
    base: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "db_url": db_url,
        "db_path": str(tmp / f"{name}.db"),  # names the media directory only
        "admin_socket": "off",
        "cluster_nats": nats_url,
        "cluster_node": name,
        "cluster_prefix": prefix,
        "argon2_time_cost": 1,
        "argon2_memory_kib": 8192,
        "argon2_parallelism": 1,
        "register_rate": 1000.0,
        "register_burst": 1000.0,
        "shutdown_grace": 2.0,
        "stats_interval": 0,
        **settings,
    }
    out: list[str] = []
    for k, v in base.items():
        out += ["--" + k.replace("_", "-"), str(v)]
    return out


@asynccontextmanager
async def cluster(
    n: int, tmp: Path, db_url: str, nats_url: str, prefix: str, **settings: Any
) -> AsyncIterator[list[NodeProcess]]:
    nodes = []
    for i in range(n):
        metrics = free_port()
        args = node_args(f"n{i}", tmp, db_url, nats_url, prefix, metrics_port=metrics, **settings)
        nodes.append(NodeProcess(f"n{i}", args, tmp / f"n{i}.log"))
        nodes[-1].metrics_port = metrics
    try:
        for node in nodes:
            await node.start()
        yield nodes
    finally:
        await asyncio.gather(*(node.stop() for node in nodes), return_exceptions=True)
