"""TLS on the listener, per-user send limits, and the online backup command."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import sys
import warnings
from pathlib import Path

import liaotian.client as lt
import pytest
import trustme
from liaotian.protocol import ErrorCode
from liaotian.server.testing import run_server

PASSWORD = "correct horse"


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[trustme.CA, str, str]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_path, key_path = tmp_path / "server.pem", tmp_path / "server.key"
    cert.private_key_pem.write_to_path(str(key_path))
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    for extra in cert.cert_chain_pems[1:]:
        with open(cert_path, "ab") as fh:
            fh.write(extra.bytes())
    return ca, str(cert_path), str(key_path)


async def test_tls_listener_serves_verified_clients(tmp_path: Path, tls_files) -> None:
    ca, cert, key = tls_files
    async with run_server(tmp_path, tls_cert=cert, tls_key=key) as srv:
        ctx = ssl.create_default_context()
        ca.configure_trust(ctx)
        await lt.register(srv.host, srv.port, "alice", PASSWORD, ssl=ctx)
        await lt.register(srv.host, srv.port, "bob", PASSWORD, ssl=ctx)
        async with (
            lt.connect(
                srv.host, srv.port, username="bob", password=PASSWORD, device="d", ssl=ctx
            ) as bob,
            lt.connect(
                srv.host, srv.port, username="alice", password=PASSWORD, device="d", ssl=ctx
            ) as alice,
        ):
            sent = await alice.send("bob", "over tls")
            async for event in bob:
                if isinstance(event, lt.MessageReceived):
                    assert event.message.text == "over tls" and event.message.id == sent.id
                    break

        # a client that does not trust the certificate refuses the server
        untrusting = ssl.create_default_context()
        with pytest.raises((ssl.SSLError, OSError, lt.LiaotianError)):
            await lt.register(srv.host, srv.port, "carol", PASSWORD, ssl=untrusting)
        # TLS older than 1.2 is refused by the server
        old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ca.configure_trust(old)
        try:
            with warnings.catch_warnings():  # asking for TLS 1.1 is deprecated: that's the point
                warnings.simplefilter("ignore", DeprecationWarning)
                old.maximum_version = ssl.TLSVersion.TLSv1_1
                old.minimum_version = ssl.TLSVersion.TLSv1
        except (ValueError, ssl.SSLError):
            return  # this OpenSSL cannot even offer TLS 1.1: nothing more to check
        with pytest.raises((ssl.SSLError, OSError, lt.LiaotianError)):
            await lt.register(srv.host, srv.port, "dave", PASSWORD, ssl=old)


async def test_plain_client_cannot_talk_to_a_tls_listener(tmp_path: Path, tls_files) -> None:
    _ca, cert, key = tls_files
    async with run_server(tmp_path, tls_cert=cert, tls_key=key) as srv:
        with pytest.raises((OSError, lt.LiaotianError, asyncio.TimeoutError)):
            await asyncio.wait_for(lt.register(srv.host, srv.port, "eve", PASSWORD), 5)


async def test_per_user_send_rate_limit(tmp_path: Path) -> None:
    """A burst beyond the bucket is refused with RATE_LIMITED and a retry_after; the
    limit is per user, across all of that user's connections."""
    from rawclient import RawClient  # the raw protocol client of this directory

    async with run_server(tmp_path, send_rate=1.0, send_burst=3.0) as srv:
        await lt.register(srv.host, srv.port, "alice", PASSWORD)
        await lt.register(srv.host, srv.port, "bob", PASSWORD)
        phone = await RawClient.connect(srv.host, srv.port)
        laptop = await RawClient.connect(srv.host, srv.port)
        try:
            for c, device in ((phone, "phone"), (laptop, "laptop")):
                await c.hello()
                await c.login("alice", PASSWORD, device)
            await phone.send("bob", "m0")
            await laptop.send("bob", "m1")
            await phone.send("bob", "m2")
            err = await laptop.expect_error(
                laptop.send_msg("bob", "one too many"), ErrorCode.RATE_LIMITED
            )
            assert err.retry_after is not None and 0 < err.retry_after <= 1.0
            page = await phone.history("bob")
            assert [m.text for m in page.messages] == ["m0", "m1", "m2"]
        finally:
            await phone.close()
            await laptop.close()


async def test_client_library_waits_out_a_rate_limit(tmp_path: Path) -> None:
    async with run_server(tmp_path, send_rate=5.0, send_burst=2.0) as srv:
        await lt.register(srv.host, srv.port, "alice", PASSWORD)
        await lt.register(srv.host, srv.port, "bob", PASSWORD)
        async with lt.connect(
            srv.host, srv.port, username="alice", password=PASSWORD, device="d"
        ) as alice:
            sent = [await alice.send("bob", f"m{i}") for i in range(4)]
            assert [s.pos for s in sent] == [1, 2, 3, 4]


async def test_online_backup_while_serving(tmp_path: Path) -> None:
    async with run_server(tmp_path) as srv:
        await lt.register(srv.host, srv.port, "alice", PASSWORD)
        await lt.register(srv.host, srv.port, "bob", PASSWORD)
        async with lt.connect(
            srv.host, srv.port, username="alice", password=PASSWORD, device="d"
        ) as alice:
            for i in range(20):
                await alice.send("bob", f"m{i}")
            dest = tmp_path / "copy.db"
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "liaotian.server",
                "backup",
                str(dest),
                "--db-path",
                srv.config.db_path,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            sends = [asyncio.ensure_future(alice.send("bob", f"during {i}")) for i in range(20)]
            out, err = await asyncio.wait_for(proc.communicate(), 30)
            await asyncio.gather(*sends)
            assert proc.returncode == 0, err.decode()
            assert b"messages=" in out
            refused = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "liaotian.server",
                "backup",
                str(dest),
                "--db-path",
                srv.config.db_path,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            await refused.communicate()
            assert refused.returncode == 1  # never overwrites an existing file
    # the copy opens as a server database with at least the 20 messages sent before it
    async with run_server(tmp_path / "restore", db_path=str(dest)) as copy:
        async with lt.connect(
            copy.host, copy.port, username="alice", password=PASSWORD, device="d"
        ) as alice:
            page = await alice.history("bob", limit=100)
            texts = [m.text for m in page.messages]
            assert texts[:20] == [f"m{i}" for i in range(20)]
            assert 20 <= len(texts) <= 40


async def test_cli_connects_with_a_ca_file(tmp_path: Path, tls_files) -> None:
    ca, cert, key = tls_files
    ca_path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    async with run_server(tmp_path, tls_cert=cert, tls_key=key) as srv:
        base = [
            sys.executable,
            "-m",
            "liaotian.client.cli",
            "--host",
            "127.0.0.1",
            "--port",
            str(srv.port),
            "--state",
            str(tmp_path / "state.json"),
        ]

        async def cli(*args: str) -> tuple[int, str]:
            proc = await asyncio.create_subprocess_exec(
                *base, *args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            )
            out, _ = await asyncio.wait_for(proc.communicate(), 60)
            assert proc.returncode is not None
            return proc.returncode, out.decode()

        code, out = await cli(
            "--ca-file", str(ca_path), "register", "alice", "--password", PASSWORD
        )
        assert code == 0, out
        code, out = await cli("register", "bob", "--password", PASSWORD)  # plain: refused
        assert code == 3, out


async def test_per_user_byte_rate_limit(tmp_path: Path) -> None:
    from rawclient import RawClient

    async with run_server(tmp_path, send_bytes_rate=70_000.0, send_bytes_burst=100_000.0) as srv:
        await lt.register(srv.host, srv.port, "alice", PASSWORD)
        await lt.register(srv.host, srv.port, "bob", PASSWORD)
        c = await RawClient.connect(srv.host, srv.port)
        try:
            await c.hello()
            await c.login("alice", PASSWORD, "d")
            await c.send("bob", "x" * 60_000)  # 60 KB of the 100 KB burst
            err = await c.expect_error(c.send_msg("bob", "y" * 60_000), ErrorCode.RATE_LIMITED)
            assert err.retry_after is not None and 0 < err.retry_after <= 1.0
            await c.send("bob", "small")  # the message budget is untouched, bytes remain
        finally:
            await c.close()
