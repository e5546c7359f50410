"""Start-up as an operator sees it: the real `liaotian-server` (python -m liaotian.server)
in a subprocess. Every failure is one line on stderr naming the problem and an exit at once
with a non-zero code; no traceback, no process left listening on nothing. One server per
database; --version on both console scripts."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import liaotian.client as lt
import pytest
import trustme
from liaotian.server.app import Server, StartupError
from liaotian.server.config import Config
from liaotian.server.testing import TEST_SETTINGS, run_server

TIMEOUT = 60  # a server that does not exit after a failed start hangs until this
PASSWORD = "correct horse"


def environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("LIAOTIAN_")}


def server_cli(cwd: Path, *args: str) -> tuple[int, list[str], str]:
    """Run `liaotian-server ARGS` to its end: exit code, stderr lines, stdout."""
    proc = subprocess.run(
        [sys.executable, "-m", "liaotian.server", *args],
        cwd=cwd,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    return proc.returncode, proc.stderr.splitlines(), proc.stdout


def one_line(lines: list[str]) -> str:
    assert len(lines) == 1, "\n".join(lines)
    assert "Traceback" not in lines[0]
    assert lines[0].startswith("liaotian-server")
    return lines[0]


@pytest.fixture
def taken_port() -> Iterator[int]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    try:
        yield s.getsockname()[1]
    finally:
        s.close()


def test_a_taken_port_is_one_line_and_an_exit(tmp_path: Path, taken_port: int) -> None:
    """Regression: a traceback, and the process stayed alive (the store's threads)."""
    rc, err, _ = server_cli(tmp_path, "--port", str(taken_port))
    line = one_line(err)
    assert rc == 1
    assert f"127.0.0.1:{taken_port}" in line and "address already in use" in line


def test_an_address_not_on_this_machine(tmp_path: Path) -> None:
    rc, err, _ = server_cli(tmp_path, "--host", "192.0.2.1", "--port", "0")  # TEST-NET-1
    assert rc == 1
    assert "cannot listen on 192.0.2.1:0" in one_line(err)


def test_missing_tls_files_are_named(tmp_path: Path) -> None:
    rc, err, _ = server_cli(
        tmp_path, "--port", "0", "--tls-cert", "nope.pem", "--tls-key", "nope.key"
    )
    assert rc == 1
    line = one_line(err)
    assert "TLS certificate" in line and "nope.pem" in line and "No such file" in line


def test_a_tls_key_of_another_certificate(tmp_path: Path) -> None:
    ca = trustme.CA()
    one, other = ca.issue_cert("127.0.0.1"), ca.issue_cert("127.0.0.1")
    one.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    other.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    rc, err, _ = server_cli(
        tmp_path, "--port", "0", "--tls-cert", "cert.pem", "--tls-key", "key.pem"
    )
    assert rc == 1
    assert "cannot load TLS certificate cert.pem with key key.pem" in one_line(err)


def test_a_database_in_a_missing_directory_is_named(tmp_path: Path) -> None:
    """Regression: sqlite3.OperationalError 'unable to open database file', no path."""
    db = tmp_path / "no" / "such" / "liaotian.db"
    rc, err, _ = server_cli(tmp_path, "--port", "0", "--db-path", str(db))
    assert rc == 1
    line = one_line(err)
    assert str(db) in line and "does not exist" in line
    assert not (tmp_path / "no").exists()


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not sqlite\n" * 100)
    rc, err, _ = server_cli(tmp_path, "--port", "0", "--db-path", "notes.txt")
    assert rc == 1
    line = one_line(err)
    assert "cannot open database notes.txt" in line and "not a database" in line


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--log-level", "bogus"], "log_level"),
        (["--port", "99999"], "port"),
        (["--max-text-len", "-5"], "max_text_len"),
        (["--idle-timeout", "nan"], "idle_timeout"),
    ],
)
def test_settings_out_of_range(tmp_path: Path, args: list[str], named: str) -> None:
    """Regression: a ValueError traceback (log level), or accepted (port, text length)."""
    rc, err, _ = server_cli(tmp_path, *args)
    assert rc == 2
    line = one_line(err)
    assert f"setting {named!r} must be" in line and f"(from {args[0]})" in line
    assert not (tmp_path / "liaotian.db").exists()  # refused before anything was opened


def test_a_config_file_whose_server_is_not_a_table(tmp_path: Path) -> None:
    """Regression: AttributeError: 'int' object has no attribute 'items'."""
    (tmp_path / "bad.toml").write_text("server = 5\n")
    rc, err, _ = server_cli(tmp_path, "--config", "bad.toml")
    assert rc == 2
    line = one_line(err)
    assert "config file bad.toml" in line and "'server' must be a table" in line


def test_backup_without_a_database_says_which_is_missing(tmp_path: Path) -> None:
    """Regression: it printed only 'liaotian-server backup: liaotian.db'."""
    rc, err, _ = server_cli(tmp_path, "backup", "nope.db")
    assert rc == 1
    line = one_line(err)
    assert "no database at liaotian.db to back up" in line and "--db-path" in line
    assert not (tmp_path / "nope.db").exists()
    assert not (tmp_path / "nope.db.partial").exists()


def test_version_on_both_console_scripts(tmp_path: Path) -> None:
    from importlib.metadata import version

    rc, _, out = server_cli(tmp_path, "--version")
    assert rc == 0 and out.strip() == f"liaotian-server {version('liaotian')} (protocol 1)"
    client = subprocess.run(
        [sys.executable, "-m", "liaotian.client.cli", "--version"],
        env=environment(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert client.returncode == 0 and client.stdout.strip() == f"liaotian {version('liaotian')}"


async def test_a_second_server_process_on_the_same_database_refuses_to_start(
    tmp_path: Path,
) -> None:
    """Regression: it started on the live database, and from then on every send through the
    first server failed (UNIQUE constraint failed: messages.id). The first keeps serving;
    `liaotian-server backup` still works beside it."""
    db = str(tmp_path / "liaotian.db")
    first = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "liaotian.server",
        "--port",
        "0",
        "--db-path",
        db,
        "--argon2-time-cost",
        "1",
        "--argon2-memory-kib",
        "8192",
        "--argon2-parallelism",
        "1",
        env=environment(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert first.stderr is not None
        port = 0
        while not port:
            line = (await asyncio.wait_for(first.stderr.readline(), TIMEOUT)).decode()
            assert line, "the first server exited"
            if "listening on 127.0.0.1:" in line:
                port = int(line.split("listening on 127.0.0.1:")[1].split()[0])
        drain = asyncio.ensure_future(first.stderr.read())  # never let its pipe fill
        await lt.register("127.0.0.1", port, "alice", PASSWORD)
        await lt.register("127.0.0.1", port, "bob", PASSWORD)

        rc, err, _ = await asyncio.to_thread(server_cli, tmp_path, "--port", "0", "--db-path", db)
        assert rc == 1
        line = one_line(err)
        assert f"database {db} is in use by another liaotian-server (pid {first.pid})" in line

        async with lt.connect(
            "127.0.0.1", port, username="alice", password=PASSWORD, device="d"
        ) as alice:
            for i in range(3):
                await alice.send("bob", f"m{i}")  # the first server still writes
        rc, err, out = await asyncio.to_thread(
            server_cli, tmp_path, "backup", "copy.db", "--db-path", db
        )
        assert rc == 0, err
        assert "messages=3" in out
    finally:
        if first.returncode is None:
            first.terminate()
        assert await asyncio.wait_for(first.wait(), TIMEOUT) == 0  # a graceful shutdown
    await drain


async def test_two_server_objects_on_one_database(tmp_path: Path) -> None:
    """In one process too; and once the first is stopped, the database is free again."""
    async with run_server(tmp_path) as srv:
        second = Server(srv.config.with_overrides({"port": 0}))
        with pytest.raises(StartupError, match=f"pid {os.getpid()}"):
            await second.start()
        await lt.register(srv.host, srv.port, "alice", PASSWORD)  # the first one serves
    again = Server(Config().with_overrides({**TEST_SETTINGS, "db_path": srv.config.db_path}))
    await again.start()
    await again.shutdown()


async def test_a_failed_start_leaves_no_listener_and_no_store_open(
    tmp_path: Path, taken_port: int
) -> None:
    server = Server(
        Config().with_overrides(
            {**TEST_SETTINGS, "db_path": str(tmp_path / "x.db"), "port": taken_port}
        )
    )
    with pytest.raises(StartupError, match="address already in use"):
        await server.start()
    assert not server.store.is_open and server._listener is None
    assert not (tmp_path / "x.db").exists()  # the port is checked before the database

    # the store opened, then listening failed: the store is closed again
    server = Server(
        Config().with_overrides({**TEST_SETTINGS, "db_path": str(tmp_path / "x.db"), "port": 0})
    )
    real_bind = server._bind

    async def taken_at_listen() -> None:
        raise OSError(98, "Address already in use")

    async def bind_then_fail() -> asyncio.base_events.Server:
        listener = await real_bind()
        listener.start_serving = taken_at_listen  # type: ignore[method-assign]
        return listener

    server._bind = bind_then_fail  # type: ignore[method-assign]
    with pytest.raises(StartupError, match="address already in use"):
        await server.start()
    assert (tmp_path / "x.db").exists()
    assert not server.store.is_open
