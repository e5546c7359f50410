"""`liaotian-conformance HOST:PORT`: run SPEC.md's checks against a server.

Exit status: 0 when no MUST check failed (nor a SHOULD check with --strict), 1 when one did,
2 for a usage error or when the server cannot be reached at all.
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import sys
import time
from collections.abc import Sequence

from . import report, runner
from .runner import Options, Result
from .wire import Conn, Target


def _target(text: str, tls: ssl.SSLContext | None) -> Target:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT")
    return Target(host.strip("[]") or "127.0.0.1", int(port), tls)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="liaotian-conformance",
        description="Check a liaotian server against SPEC.md over raw bytes.",
    )
    p.add_argument("server", metavar="HOST:PORT", help="the server to check")
    p.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="SECTION",
        help="run only checks of this SPEC section or its subsections "
        "(e.g. 2, 7.18, 10.4); may be repeated",
    )
    p.add_argument("--strict", action="store_true", help="a failed SHOULD check fails the run too")
    p.add_argument("--junit", metavar="FILE", help="write JUnit XML to FILE")
    p.add_argument(
        "--timeout",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="longest wait for any one expected frame (default 5)",
    )
    p.add_argument(
        "--small-limits-server",
        metavar="HOST:PORT",
        help="a second server started with short timers and tiny limits, for "
        "the checks that need them (see conformance/README.md)",
    )
    p.add_argument("--tls", action="store_true", help="connect with TLS")
    p.add_argument(
        "--ca-file", metavar="PEM", help="CA certificates to verify the server with (implies --tls)"
    )
    p.add_argument("--list", action="store_true", help="list the checks and exit")
    return p


async def _reachable(target: Target, timeout: float) -> str:
    try:
        conn = await Conn.open(target, timeout)
    except (OSError, TimeoutError) as exc:
        return f"cannot connect to {target}: {exc!r}"
    await conn.close()
    return ""


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    tls: ssl.SSLContext | None = None
    if args.tls or args.ca_file:
        tls = ssl.create_default_context(cafile=args.ca_file)
    try:
        target = _target(args.server, tls)
        small = _target(args.small_limits_server, tls) if args.small_limits_server else None
    except argparse.ArgumentTypeError as exc:
        print(f"liaotian-conformance: {exc}", file=sys.stderr)
        return 2
    if not runner.select(tuple(args.only)):
        print(
            f"liaotian-conformance: no check in section(s) {', '.join(args.only)}", file=sys.stderr
        )
        return 2
    if args.list:
        for c in runner.select(tuple(args.only)):
            extra = " (small-limits server)" if c.small else ""
            print(f"§{c.section:<6} {c.level:<6} {c.name}: {c.title}{extra}")
        return 0
    opts = Options(target, small, args.timeout, max(60.0, 12 * args.timeout), tuple(args.only))
    return asyncio.run(_main(opts, args.strict, args.junit))


async def _main(opts: Options, strict: bool, junit_path: str | None) -> int:
    for t in (opts.target, opts.small_target):
        if t is not None and (problem := await _reachable(t, opts.timeout)):
            print(f"liaotian-conformance: {problem}", file=sys.stderr)
            return 2
    start = time.monotonic()

    def show(r: Result) -> None:
        print(report.line(r, strict), flush=True)

    results = await runner.run(opts, show)
    seconds = time.monotonic() - start
    print(report.summary(results, strict, seconds))
    if junit_path:
        with open(junit_path, "wb") as fh:
            fh.write(report.junit(results, strict, seconds, str(opts.target)))
    return 1 if any(r.counts(strict) for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
