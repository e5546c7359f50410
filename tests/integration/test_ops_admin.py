"""`liaotian-server admin` (issue 16, item 7): commands through the running server's Unix
socket (created 0600 beside the database), and the same commands on a stopped server's
database. A disabled user cannot log in (2002, as a wrong password) and is disconnected
(4002); its token is dead (2006); enabled again, it logs in."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from clientpool import Clients
from liaotian.protocol import Auth, Login
from liaotian.server.app import StartupError
from liaotian.server.ops import admin_cli
from liaotian.server.ops.admin import AdminError
from liaotian.server.testing import RunningServer, run_server
from rawclient import PASSWORD

TIMEOUT = 30.0
NEW_PASSWORD = "another-password-2"


async def admin(srv: RunningServer, command: str, **args: Any) -> Any:
    """A command as `liaotian-server admin` runs it: the socket if a server answers, else
    the database."""
    return await admin_cli.run(srv.config, command, args)


def cheap_hash(password: str) -> str:
    return PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(password)


async def cli(srv: RunningServer, *args: str, stdin: bytes = b"") -> tuple[int, str, str]:
    """The real command line, in a subprocess (the in-process server keeps serving)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIAOTIAN_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "liaotian.server",
        "admin",
        "--db-path",
        srv.config.db_path,
        "--config",
        str(Path(srv.config.db_path).parent / "cheap.toml"),
        *args,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin), TIMEOUT)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
def cheap_config(tmp_path: Path) -> None:
    (tmp_path / "cheap.toml").write_text(
        "argon2_time_cost = 1\nargon2_memory_kib = 8192\nargon2_parallelism = 1\n"
    )


async def test_the_socket_is_private_and_beside_the_database(tmp_path: Path) -> None:
    async with run_server(tmp_path) as srv:
        path = srv.config.db_path + ".admin"
        st = os.stat(path)
        assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
        status = await admin(srv, "status")
        assert status["listening"].endswith(f":{srv.port}") and status["pid"] == os.getpid()
        assert status["database"] == os.path.abspath(srv.config.db_path)
    assert not os.path.exists(path)  # removed at shutdown


async def test_a_disabled_user_is_kicked_and_cannot_log_in(
    tmp_path: Path, clients: Clients
) -> None:
    async with run_server(tmp_path) as srv:
        alice = await clients.user(srv, "alice")
        await clients.user(srv, "bob")
        token = alice.token
        assert token
        result = await admin(srv, "disable", user="alice")
        assert result["connections_closed"] == 1 and result["devices_signed_out"] == 1
        await alice.expect_close(4002)
        other = await clients.anonymous(srv)
        await other.expect_error(
            Login(rid=other.rid(), username="alice", password=PASSWORD, device="d1"), 2002
        )
        await other.expect_error(Auth(rid=other.rid(), token=token), 2006)
        users = {u["username"]: u for u in await admin(srv, "users")}
        assert users["alice"]["disabled"] and not users["bob"]["disabled"]
        assert users["bob"]["connections"] == 1 and users["alice"]["connections"] == 0

        await admin(srv, "enable", user="alice")
        await other.login("alice")  # the device keeps its position: nothing to resync
        with pytest.raises(AdminError, match="no user 'carol'"):
            await admin(srv, "disable", user="carol")


async def test_a_disabled_accounts_right_password_counts_as_a_failed_login(
    tmp_path: Path, clients: Clients
) -> None:
    """The right password of a disabled account fails as a wrong one and is throttled as
    one: guessing at it gains nothing, and nothing tells it from a wrong password."""
    async with run_server(tmp_path) as srv:
        await clients.user(srv, "alice")
        await admin(srv, "disable", user="alice")
        other = await clients.anonymous(srv)
        free = srv.config.login_free_failures
        for i in range(free):
            login = Login(rid=other.rid(), username="alice", password=PASSWORD, device=f"d{i}")
            await other.expect_error(login, 2002)
        login = Login(rid=other.rid(), username="alice", password=PASSWORD, device="d")
        await other.expect_error(login, 2007)  # THROTTLED, as after as many wrong ones


async def test_a_disabled_user_stays_disabled_across_a_restart(
    tmp_path: Path, clients: Clients
) -> None:
    async with run_server(tmp_path) as srv:
        await clients.register(srv, "alice")
        await admin(srv, "disable", user="alice")
        await srv.restart()
        other = await clients.anonymous(srv)
        await other.expect_error(
            Login(rid=other.rid(), username="alice", password=PASSWORD, device="d1"), 2002
        )


async def test_reset_password_revoke_kick_and_sessions(tmp_path: Path, clients: Clients) -> None:
    async with run_server(tmp_path) as srv:
        alice = await clients.user(srv, "alice")
        alice2 = await clients.user(srv, "alice", "d2", register=False)
        bob = await clients.user(srv, "bob")

        sessions = await admin(srv, "sessions", user="bob")
        assert [(s["user"], s["device"], s["state"]) for s in sessions] == [
            ("bob", "d1", "authenticated")
        ]
        await admin(srv, "kick", conn=sessions[0]["conn"])
        await bob.expect_close(1000)
        with pytest.raises(AdminError, match="no open connection"):
            await admin(srv, "kick", conn=sessions[0]["conn"])

        devices = await admin(srv, "devices", user="alice")
        assert {(d["device"], d["online"]) for d in devices} == {("d1", True), ("d2", True)}
        await admin(srv, "revoke", user="alice", device="d2")
        await alice2.expect_close(4002)
        assert [d["device"] for d in await admin(srv, "devices", user="alice")] == ["d1"]

        result = await admin(
            srv,
            "reset_password",
            user="alice",
            password_hash=cheap_hash(NEW_PASSWORD),
            sign_out=True,
        )
        assert result["connections_closed"] == 1
        await alice.expect_close(4002)
        other = await clients.anonymous(srv)
        await other.expect_error(
            Login(rid=other.rid(), username="alice", password=PASSWORD, device="d1"), 2002
        )
        await other.login("alice", NEW_PASSWORD)

        bob2 = await clients.user(srv, "bob", register=False)
        await admin(srv, "kick", user="bob", reconnect=True)
        await bob2.expect_close(1001)


async def test_checkpoint_and_backup_through_the_socket(tmp_path: Path, clients: Clients) -> None:
    async with run_server(tmp_path) as srv:
        alice = await clients.user(srv, "alice")
        await clients.user(srv, "bob")
        await alice.send("bob", "kept")
        result = await admin(srv, "checkpoint")
        assert not result["busy"] and result["wal_bytes_after"] == 0
        await alice.send("bob", "still served after the checkpoint")
        dest = tmp_path / "copy.db"
        result = await admin(srv, "backup", dest=str(dest))
        assert result["messages"] == 2 and dest.exists()
        assert stat.S_IMODE(dest.stat().st_mode) == 0o600


async def test_commands_on_a_stopped_servers_database(tmp_path: Path, clients: Clients) -> None:
    async with run_server(tmp_path) as srv:
        await clients.register(srv, "alice", "bob")
        a = await clients.user(srv, "alice", register=False)
        await a.close_gracefully()
        await srv.stop()
        assert not os.path.exists(srv.config.db_path + ".admin")
        users = await admin(srv, "users")
        assert [u["username"] for u in users] == ["alice", "bob"]
        assert "connections" not in users[0]  # nobody is connected to a stopped server
        for command in ("status", "sessions", "kick"):
            with pytest.raises(AdminError, match=f"{command} needs a running server"):
                await admin(srv, command, conn=1)
        await admin(srv, "disable", user="bob")
        await admin(
            srv,
            "reset_password",
            user="alice",
            password_hash=cheap_hash(NEW_PASSWORD),
            sign_out=False,
        )
        await admin(srv, "revoke", user="alice", device="d1")
        assert await admin(srv, "devices", user="alice") == []
        await admin(srv, "checkpoint")
        assert (await admin(srv, "backup", dest=str(tmp_path / "b.db")))["schema_version"] > 0
        await srv.start()
        c = await clients.anonymous(srv)
        await c.expect_error(
            Login(rid=c.rid(), username="bob", password=PASSWORD, device="d1"), 2002
        )
        await c.login("alice", NEW_PASSWORD)


async def test_a_running_server_without_its_socket_is_named(tmp_path: Path) -> None:
    async with run_server(tmp_path, admin_socket="off") as srv:
        with pytest.raises(
            AdminError,
            match=r"in use by another liaotian-server .*admin_socket "
            r"= off",
        ):
            await admin(srv, "users")


@pytest.mark.usefixtures("cheap_config")
async def test_the_command_line(tmp_path: Path, clients: Clients) -> None:
    async with run_server(tmp_path) as srv:
        await clients.register(srv, "alice")
        rc, out, err = await cli(srv, "users")
        assert rc == 0, err
        header, row = out.splitlines()
        assert header.split()[:3] == ["id", "username", "created"] and "alice" in row
        rc, out, err = await cli(
            srv, "reset-password", "alice", stdin=NEW_PASSWORD.encode() + b"\n"
        )
        assert rc == 0, err
        assert "user=alice" in out
        c = await clients.anonymous(srv)
        await c.login("alice", NEW_PASSWORD)
        rc, out, err = await cli(srv, "disable", "nobody")
        assert (rc, out) == (1, "")
        assert err == "liaotian-server admin: no user 'nobody'\n"
        rc, out, err = await cli(srv, "reset-password", "alice", stdin=b"short\n")
        assert rc == 2 and "a password has 8 to" in err
        rc, out, err = await cli(srv, "--json", "status")
        assert rc == 0 and '"users_online": 1' in out


async def test_a_socket_left_by_a_dead_server_is_replaced(tmp_path: Path) -> None:
    path = str(tmp_path / "liaotian.db.admin")
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(path)  # bound, never listening, closed: what a killed server leaves
    dead.close()
    async with run_server(tmp_path) as srv:
        assert (await admin(srv, "status"))["pid"] == os.getpid()


async def test_a_file_in_the_sockets_place_stops_the_start(tmp_path: Path) -> None:
    (tmp_path / "liaotian.db.admin").write_text("not a socket")
    with pytest.raises(StartupError, match=r"admin socket path .* is not a socket"):
        async with run_server(tmp_path):
            pass
    async with run_server(tmp_path, admin_socket=str(tmp_path / "other.sock")) as srv:
        assert (await admin(srv, "status"))["pid"] == os.getpid()
