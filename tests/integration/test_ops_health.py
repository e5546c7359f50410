"""`liaotian-server health [HOST:PORT]` (issue 16, item 8): exit 0 only when the server
accepts a connection and answers HELLO with WELCOME; otherwise exit 1 with one line."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

import pytest
import trustme
from liaotian.server.ops.health import Unhealthy, check, local_host, parse_address
from liaotian.server.testing import RunningServer, run_server

TIMEOUT = 30.0


async def health(*args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIAOTIAN_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "liaotian.server",
        "health",
        *args,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    return int(port)


async def test_exit_0_when_the_server_answers_and_1_when_nothing_listens(tmp_path: Path) -> None:
    async with run_server(tmp_path) as srv:
        rc, out, err = await health(f"127.0.0.1:{srv.port}")
        assert (rc, err) == (0, "")
        assert out.startswith(f"127.0.0.1:{srv.port}: liaotian/") and "protocol 1" in out
    rc, out, err = await health(f"127.0.0.1:{closed_port()}")
    assert rc == 1 and out == ""
    assert len(err.splitlines()) == 1
    assert err.startswith("liaotian-server health: 127.0.0.1:") and "connection refused" in err


async def test_a_server_that_does_not_answer_hello_is_unhealthy() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)  # takes the connection, says nothing, hangs up
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(Unhealthy, match="connection closed before WELCOME"):
            await asyncio.to_thread(check, "127.0.0.1", port, timeout=5.0)
    finally:
        server.close()


async def test_a_full_server_is_unhealthy(tmp_path: Path) -> None:
    async with run_server(tmp_path, max_connections=1) as srv:
        blocker = socket.create_connection((srv.host, srv.port))
        try:
            await _counted(srv, 1)
            with pytest.raises(Unhealthy, match="closed the connection: 4005"):
                await asyncio.to_thread(check, srv.host, srv.port, timeout=5.0)
        finally:
            blocker.close()


async def _counted(srv: RunningServer, n: int) -> None:
    assert srv.server is not None
    async with asyncio.timeout(5.0):
        while len(srv.server.hub.connections) < n:
            await asyncio.sleep(0.01)


async def test_tls(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(cert_file)
    cert.private_key_pem.write_to_path(key_file)
    async with run_server(tmp_path, tls_cert=str(cert_file), tls_key=str(key_file)) as srv:
        import ssl

        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        line = await asyncio.to_thread(check, srv.host, srv.port, timeout=5.0, tls=ctx)
        assert "protocol 1" in line
        with pytest.raises(Unhealthy):  # plain TCP to a TLS listener
            await asyncio.to_thread(check, srv.host, srv.port, timeout=5.0)


def test_addresses() -> None:
    assert parse_address("example.org:7000", 7420) == ("example.org", 7000)
    assert parse_address("example.org", 7420) == ("example.org", 7420)
    assert parse_address("[::1]:7001", 7420) == ("::1", 7001)
    assert parse_address(":7002", 7420) == ("127.0.0.1", 7002)
    for bad in ("host:0", "host:x", "[::1", "[::1]x"):
        with pytest.raises(ValueError):
            parse_address(bad, 7420)
    assert local_host("0.0.0.0") == "127.0.0.1" and local_host("::") == "::1"
