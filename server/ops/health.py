"""`liaotian-server health [HOST:PORT]`: exit 0 only if the server accepts a connection and
answers HELLO with WELCOME (SPEC.md, the handshake); otherwise one line on stderr and exit 1.

The address defaults to the configured `host`/`port` (a wildcard host is checked on the
loopback address); TLS is used when the configuration has a certificate, or with `--tls`.
The check proves liveness, not identity: the certificate is not verified unless `--cafile`
is given. The connection ends with CLOSE 1000 after the WELCOME.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import ssl
import sys
import time

from liaotian.protocol import (
    SUPPORTED_VERSIONS,
    Close,
    CloseCode,
    Connection,
    ConnectionTerminated,
    Error,
    Hello,
    ProtocolViolation,
    Role,
    Welcome,
)

from ..config import Config

PROG = "liaotian-server health"


class Unhealthy(Exception):
    """The check failed; the text (one line) says how."""


def parse_address(text: str, default_port: int) -> tuple[str, int]:
    """HOST, HOST:PORT, [V6]:PORT or :PORT."""
    host, port = text, str(default_port)
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"bad address {text!r}")
        host, rest = text[1:end], text[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"bad address {text!r}")
            port = rest[1:]
    elif text.count(":") == 1:
        host, port = text.split(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"bad port in {text!r}")
    return host or "127.0.0.1", int(port)


def local_host(host: str) -> str:
    """Where to reach a server listening on `host` from this machine."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


def check(host: str, port: int, *, timeout: float = 5.0, tls: ssl.SSLContext | None = None) -> str:
    """Connect, HELLO, WELCOME, CLOSE; a line describing the server, or Unhealthy."""
    started = time.monotonic()
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        raw = socket.create_connection((host, port), timeout=timeout)
    except TimeoutError:
        raise Unhealthy(f"{where}: no connection within {timeout:g} s") from None
    except OSError as exc:
        raise Unhealthy(f"{where}: cannot connect: {_reason(exc)}") from None
    sock = raw
    try:
        if tls is not None:
            try:
                sock = tls.wrap_socket(raw, server_hostname=host)
            except (OSError, ssl.SSLError) as exc:
                raise Unhealthy(f"{where}: TLS handshake failed: {_reason(exc)}") from None
        conn = Connection(Role.CLIENT)
        conn.send(Hello(rid=conn.next_rid(), versions=SUPPORTED_VERSIONS, client="liaotian-health"))
        welcome = _exchange(sock, conn, where, started + timeout)
        conn.send(Close(rid=0, code=CloseCode.NORMAL, reason="health check"))
        with contextlib.suppress(OSError):
            sock.sendall(conn.data_to_send())
    finally:
        sock.close()  # (a TLS socket took the raw one's descriptor over)
        raw.close()
    ms = (time.monotonic() - started) * 1000
    return f"{where}: {welcome.server} speaks protocol {welcome.version} ({ms:.1f} ms)"


def _exchange(sock: socket.socket, conn: Connection, where: str, deadline: float) -> Welcome:
    try:
        sock.sendall(conn.data_to_send())
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            sock.settimeout(left)
            data = sock.recv(65536)
            if not data:
                conn.receive_eof()
            else:
                conn.receive_data(data)
            while (event := conn.next_event()) is not None:
                if isinstance(event, Welcome):
                    return event
                if isinstance(event, Error):
                    raise Unhealthy(
                        f"{where}: HELLO refused with ERROR {event.code} ({event.message})"
                    )
                if isinstance(event, ConnectionTerminated):
                    if event.code is None:
                        raise Unhealthy(f"{where}: connection closed before WELCOME")
                    raise Unhealthy(
                        f"{where}: server closed the connection: {event.code} {event.reason}"
                    )
                if isinstance(event, ProtocolViolation):
                    raise Unhealthy(f"{where}: not a liaotian server ({event.message})")
    except TimeoutError:
        raise Unhealthy(f"{where}: no WELCOME within the timeout") from None
    except OSError as exc:
        raise Unhealthy(f"{where}: {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
    return str(text).lower()


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Exit 0 if a liaotian server accepts a connection and answers "
        "HELLO with WELCOME; otherwise print why and exit 1.",
    )
    p.add_argument(
        "address",
        nargs="?",
        metavar="HOST:PORT",
        help="default: host and port of the configuration",
    )
    p.add_argument("--config", metavar="FILE", help="TOML configuration file")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds (default: 5)")
    p.add_argument(
        "--tls",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="speak TLS (default: when the configuration has tls_cert)",
    )
    p.add_argument("--cafile", help="verify the server's certificate against these CAs")
    args = p.parse_args(argv)
    try:
        config = Config.load(file=args.config)
        if args.address:
            host, port = parse_address(args.address, config.port)
        else:
            host, port = local_host(config.host), config.port
    except (OSError, ValueError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    use_tls = bool(config.tls_cert) if args.tls is None else args.tls
    ctx = None
    if use_tls or args.cafile:
        ctx = ssl.create_default_context(cafile=args.cafile)
        if not args.cafile:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
    try:
        print(check(host, port, timeout=args.timeout, tls=ctx))
    except Unhealthy as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    return 0
